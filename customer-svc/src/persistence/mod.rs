//! customer-svc's database: entities, repository functions and migrations.
//! Every repository function takes a connection, so it works inside the
//! transaction that also writes the outbox.

pub mod credit;
pub mod customers;
pub mod entities;
pub mod keys;
pub mod migrations;
pub mod refresh_tokens;
