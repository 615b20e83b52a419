//! Migrations, run at start-up on PostgreSQL and SQLite alike.

use events::plumbing::PlumbingMigration;
use sea_orm_migration::{MigrationTrait, MigratorTrait};

/// Every migration of customer-svc, in order.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(PlumbingMigration)]
    }
}
