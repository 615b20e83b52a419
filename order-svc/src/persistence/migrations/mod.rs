//! Migrations, one file per step, run at start-up on PostgreSQL and SQLite alike.

use event_runtime::{PlumbingMigration, later_migrations};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261122_000002_create_order_tables;
mod m20261202_000001_catalog_copy_version;
mod m20261202_000002_idempotency_expiry_index;
mod m20261207_000001_decided_at_index;

/// Every migration of order-svc, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations: Vec<Box<dyn MigrationTrait>> = vec![
            Box::new(PlumbingMigration),
            Box::new(m20261122_000002_create_order_tables::Migration),
            Box::new(m20261202_000001_catalog_copy_version::Migration),
            Box::new(m20261202_000002_idempotency_expiry_index::Migration),
        ];
        migrations.extend(later_migrations());
        // After the shared ones, which databases in use have applied.
        migrations.push(Box::new(m20261207_000001_decided_at_index::Migration));
        migrations
    }
}
