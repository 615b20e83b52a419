//! Migrations, one file per step, run at start-up on PostgreSQL and SQLite alike.

use event_runtime::{PlumbingMigration, later_migrations};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261122_000002_create_customer_tables;
mod m20261201_000003_credentials;
mod m20261207_000001_credit_reservation_deadline;

/// Every migration of customer-svc, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations: Vec<Box<dyn MigrationTrait>> = vec![
            Box::new(PlumbingMigration),
            Box::new(m20261122_000002_create_customer_tables::Migration),
        ];
        migrations.extend(later_migrations());
        migrations.push(Box::new(m20261201_000003_credentials::Migration));
        migrations.push(Box::new(
            m20261207_000001_credit_reservation_deadline::Migration,
        ));
        migrations
    }
}
