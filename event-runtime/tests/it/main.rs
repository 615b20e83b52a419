//! Integration tests of the runtime against a real Kafka broker and
//! PostgreSQL or SQLite: outbox, relay, consumer, inbox, dead letters,
//! trace propagation and retention.

mod helpers;
mod relay_and_consumer;
