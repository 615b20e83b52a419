//! Integration tests of the `events` crate: the contract (schemas, JSON
//! round trips) and, with the `plumbing` feature, the outbox, relay,
//! consumer, inbox and dead letters against a real Kafka and PostgreSQL.

mod contract;
#[cfg(feature = "plumbing")]
mod helpers;
#[cfg(feature = "plumbing")]
mod plumbing;
