//! Migrations, one file per step, run at start-up on PostgreSQL and SQLite alike.

use event_runtime::{PlumbingMigration, later_migrations};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

mod m20261122_000002_create_inventory_tables;
mod m20261202_000001_product_catalog_version;
mod m20261203_000001_product_prices;
mod m20261207_000001_reservation_deadline;

/// Every migration of inventory-svc, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations: Vec<Box<dyn MigrationTrait>> = vec![
            Box::new(PlumbingMigration),
            Box::new(m20261122_000002_create_inventory_tables::Migration),
            Box::new(m20261202_000001_product_catalog_version::Migration),
        ];
        migrations.extend(later_migrations());
        migrations.push(Box::new(m20261203_000001_product_prices::Migration));
        migrations.push(Box::new(m20261207_000001_reservation_deadline::Migration));
        migrations
    }
}
