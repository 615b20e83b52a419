//! order-svc's database: entities, repositories and migrations.

pub mod migrations;
