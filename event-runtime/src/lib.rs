//! # event-runtime: how events move, and what each piece guarantees
//!
//! The contract (what an event is) is the `events` crate; this crate moves
//! events between the services' databases and Kafka. Every service uses
//! the same pieces:
//!
//! | piece | guarantee | condition |
//! |---|---|---|
//! | [`outbox::Outbox`] | a state change and the events it causes commit together, or neither does | the caller writes both through the same database transaction |
//! | [`outbox::OutboxRelay`] | **at-least-once publication**: every committed outbox row is published, in commit order per key; a crash between publishing and marking republishes the rows (duplicates, never loss) | the aggregate row is written *before* its outbox row in the transaction, so that two transactions on one aggregate allocate outbox ids in commit order; on PostgreSQL one relay per database publishes at a time (advisory lock) |
//! | [`consumer::EventConsumer`] | **at-least-once delivery, effectively-once effects**: a record's effect and its `event_id` in the inbox commit in one transaction, and ids already in the inbox are skipped; or, for a handler that decides by the state it keeps (the saga and its participants), that state makes a second delivery change nothing; offsets are stored only after that commit | the handler writes every effect through the transaction it is given; without an inbox, every decision is recorded where every later event of the aggregate finds it |
//! | per-key order | records of one key are applied in partition order | keys map to one partition (the producer's default partitioner) and a consumer handles a partition's batch in order |
//! | [dead letters](consumer) | a record that cannot be decoded, breaks its schema, or that the handler rejects as permanent goes to `<topic>.dlq` with the reason in its headers, and the partition keeps flowing; transient errors (database or broker down) are retried with back-off and never skipped | the handler classifies its errors ([`handler::HandlerError`]) |
//!
//! There are no Kafka transactions: they cannot span the database, and the
//! outbox, with the inbox or the handler's own state, gives effectively-once
//! effects without them.
//!
//! ## Layout
//! - [`kafka`]: client settings, the idempotent producer, topic creation.
//! - [`database`]: write transactions that queue instead of failing on
//!   SQLite (`BEGIN IMMEDIATE`), and which database errors are worth a retry.
//! - [`storage`]: the `outbox_messages` and `inbox_messages` tables, their
//!   entities and the migration every service includes.
//! - [`outbox`]: writing events in a transaction, and the relay.
//! - [`group_commit`]: concurrent writes sharing one transaction, each
//!   caller with its own answer.
//! - [`handler`]: what a service implements to consume: [`EventHandler`],
//!   [`Emitter`], [`HandlerError`], and [`Tracked`] rows that a set-based
//!   batch saves with one statement per table and kind.
//! - [`consumer`]: the batched consumer that drives a handler: the inbox,
//!   offsets, dead letters.
//! - [`participant`]: the participant side of the order saga (hold,
//!   release with its tombstone, finish), once for inventory-svc and
//!   customer-svc, each supplying its resource; [`hold_records`]: the
//!   record each keeps of an order; [`hold_table`]: the queries of their
//!   records' tables.
//! - [`validation`]: every event checked against its JSON Schema on receipt.
//! - [`trace`]: W3C trace context into and out of Kafka headers.

#![forbid(unsafe_code)]

pub mod consumer;
pub mod database;
pub mod group_commit;
pub mod handler;
pub mod hold_records;
pub mod hold_table;
pub mod kafka;
pub mod outbox;
pub mod participant;
pub mod retention;
pub mod storage;
pub mod trace;
pub mod validation;

pub use consumer::{ConsumerHealth, ConsumerSettings, EventConsumer, MAX_RECORD_BYTES};
pub use database::{
    MAX_BOUND_VALUES, WriteTransaction, begin_write, find_many_for_update, for_update, insert_new,
    key_chunks, rows_per_statement, save_columns, statement_chunks,
};
pub use group_commit::{GroupCommit, GroupCommitSettings, GroupWriter};
pub use handler::{Changes, Emitter, EventHandler, HandlerError, ReceivedRecord, Tracked};
pub use hold_records::{HoldRecord, HoldRecords, Phase, PhaseNames};
pub use hold_table::{HoldColumn, HoldTable};
pub use kafka::{KafkaSettings, ensure_topics};
pub use outbox::{
    Outbox, OutboxRelay, PendingEvent, RelayHealth, RelaySettings, RelayWaker, RowFailure,
};
pub use participant::{
    DEFAULT_SAGA_DEADLINE, FinishedBy, Holdings, ManualRelease, Participant, ParticipantHandler,
    TOMBSTONE_REASON, expire_holds, placed_order, release_by_hand,
};
pub use retention::{Retention, RetentionSettings, delete_before};
pub use storage::{
    OutboxParkingMigration, OutboxPendingIndexMigration, PlumbingMigration, later_migrations,
};
