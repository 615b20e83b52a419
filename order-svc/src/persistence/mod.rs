//! order-svc's database: entities, repository functions and migrations.
//! Every repository function takes a connection, so it works inside the
//! transaction that also writes the outbox.

pub mod catalog_copy;
pub mod entities;
pub mod idempotency;
pub mod migrations;
pub mod orders;
