//! inventory-svc's database: entities, repository functions and migrations.
//! Every repository function takes a connection, so it works inside the
//! transaction that also writes the outbox.

pub mod entities;
pub mod migrations;
pub mod products;
pub mod reservations;
