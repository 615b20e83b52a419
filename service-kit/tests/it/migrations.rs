//! Migrations when several instances of a service start at once on one
//! PostgreSQL database (a release rolling out, an autoscaler adding pods):
//! they take turns under an advisory lock, so every instance starts and
//! every migration is applied once.

use std::time::Duration;

use futures::future::join_all;
use sea_orm::{ConnectionTrait, Database, Statement};
use sea_orm_migration::MigratorTrait;
use service_kit::database::{DatabaseSettings, SqliteDurability, connect_and_migrate};
use testkit::TestDatabase;

use crate::helpers::Migrator;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_all_start_and_migrate_once() {
    let database = TestDatabase::create().await;
    // A pool of one: the lock must not wait for a connection of the pool
    // that the migrations need.
    let settings = DatabaseSettings {
        max_connections: 1,
        sqlite_busy_timeout: Duration::from_secs(5),
        sqlite_durability: SqliteDurability::Full,
    };
    let starts = (0..6).map(|_| connect_and_migrate::<Migrator>(&database.url, &settings));
    for (instance, started) in join_all(starts).await.into_iter().enumerate() {
        if let Err(error) = started {
            panic!("instance {instance} did not start: {error:#}");
        }
    }

    let db = Database::connect(&database.url).await.unwrap();
    let applied = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM seaql_migrations",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(applied, Migrator::migrations().len() as i64);
    let locks_left = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(locks_left, 0, "the migration lock ends with the start");
}
