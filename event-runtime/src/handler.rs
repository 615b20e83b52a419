//! The API a service implements to consume events: [`EventHandler`] (load,
//! apply, save: set-based), the [`Emitter`] it causes events with, and
//! [`HandlerError`], which says whether a refused event is dead-lettered or
//! retried. The machinery that drives it (batches, inbox, offsets, dead
//! letters) is in [`super::consumer`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use sea_orm::{DatabaseTransaction, DbErr};

use super::database::is_permanent;
use super::outbox::{Outbox, PendingEvent};
use events::envelope::{Envelope, Event};

/// Why a handler could not apply an event.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event can never be applied (it contradicts the handler's rules):
    /// it goes to the dead-letter topic and the partition moves on.
    #[error("{0:#}")]
    Permanent(anyhow::Error),
    /// Something the handler depends on is unavailable: the batch is retried
    /// with back-off, never skipped.
    #[error("{0:#}")]
    Transient(anyhow::Error),
}

impl HandlerError {
    /// A permanent error with a message.
    pub fn permanent(message: impl std::fmt::Display) -> Self {
        Self::Permanent(anyhow::anyhow!("{message}"))
    }
}

impl From<DbErr> for HandlerError {
    /// A database error is permanent when the data breaks a rule of the
    /// database ([`is_permanent`]), transient otherwise: retrying is always
    /// safe (the batch's transaction rolled back), skipping a record that a
    /// retry could apply never is.
    fn from(error: DbErr) -> Self {
        if is_permanent(&error) {
            Self::Permanent(error.into())
        } else {
            Self::Transient(error.into())
        }
    }
}

/// Where a record came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRecord {
    /// The broker's topic name (with prefix).
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// What runs once a batch's transaction committed.
pub(super) type AfterCommit = Box<dyn FnOnce() + Send>;

/// Collects the events a handler causes while it applies a batch; the
/// consumer writes them to the outbox with one statement, in the batch's
/// transaction, after [`EventHandler::save`].
pub struct Emitter<'a> {
    pub(super) outbox: &'a Outbox,
    pub(super) cause: &'a Envelope,
    pub(super) pending: &'a mut Vec<PendingEvent>,
    pub(super) after_commit: &'a mut Vec<AfterCommit>,
}

impl Emitter<'_> {
    /// Emits an event caused by the one being applied; returns its envelope
    /// (for example to record it in a timeline). It is published after the
    /// commit.
    pub fn emit(&mut self, event: impl Into<Event>) -> Envelope {
        let envelope = self.outbox.envelope_caused_by(event, self.cause);
        self.pending.push(PendingEvent::traced(envelope.clone()));
        envelope
    }

    /// Runs `action` once the batch's transaction committed, and never when
    /// it rolled back (a batch can be applied more than once before one
    /// attempt commits): for what must count only what happened, such as
    /// a metric of the decisions a batch made.
    pub fn once_committed(&mut self, action: impl FnOnce() + Send + 'static) {
        self.after_commit.push(Box::new(action));
    }
}

/// A service's reaction to events, **set-based**: for each batch the
/// consumer calls [`load`](Self::load) once with every new event, then
/// [`apply`](Self::apply) for each event in partition order (in memory, by
/// the service's pure domain rules), then [`save`](Self::save) once. So a
/// batch of N records costs a handful of statements whatever N is: the
/// inbox insert (if it keeps one), one read per table in `load`, one write per table in
/// `save`, and the outbox insert. The consumer supplies de-duplication,
/// batching, retries and dead letters.
pub trait EventHandler: Send + Sync + 'static {
    /// What `load` read and `apply` changes: the rows a batch touches.
    type Batch: Send;

    /// Whether this handler reacts to events of `event_type` at all. It is
    /// asked before a record is decoded (from its `event_type` header), so
    /// that unwanted records cost nothing; they are not recorded in the
    /// inbox (their offsets are still committed).
    fn wants(&self, event_type: &str) -> bool {
        let _ = event_type;
        true
    }

    /// Reads every row the batch's events touch, locking those it may
    /// change in one global order (by primary key), so that two instances
    /// never deadlock. `events` are wanted, and new where the consumer
    /// keeps an inbox.
    ///
    /// # Errors
    /// Database errors (the batch is retried).
    fn load(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> impl Future<Output = Result<Self::Batch, DbErr>> + Send;

    /// Applies one event to the batch, in memory, and emits what it causes.
    /// An event it rejects must leave `batch` as it found it.
    ///
    /// # Errors
    /// [`HandlerError::Permanent`] to dead-letter the record,
    /// [`HandlerError::Transient`] to retry the batch later.
    fn apply(
        &self,
        batch: &mut Self::Batch,
        event: &Envelope,
        emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError>;

    /// Writes what the batch changed, one statement per table.
    ///
    /// # Errors
    /// Database errors (the batch is retried).
    fn save(
        &self,
        txn: &DatabaseTransaction,
        batch: Self::Batch,
    ) -> impl Future<Output = Result<(), DbErr>> + Send;
}

/// Rows a batch read, and which of them it changed or added: what a set-based
/// handler saves with one update and one insert per table.
#[derive(Debug, Clone)]
pub struct Tracked<K, V> {
    rows: BTreeMap<K, V>,
    changed: BTreeSet<K>,
    added: BTreeSet<K>,
}

impl<K: Ord, V> Default for Tracked<K, V> {
    fn default() -> Self {
        Self {
            rows: BTreeMap::new(),
            changed: BTreeSet::new(),
            added: BTreeSet::new(),
        }
    }
}

/// What a batch changed in one table, by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes<K, V> {
    /// Rows that were not in the database.
    pub added: Vec<(K, V)>,
    /// Rows that were, and changed.
    pub changed: Vec<(K, V)>,
}

impl<K: Ord + Copy, V> Tracked<K, V> {
    /// The rows as read from the database.
    pub fn loaded(rows: impl IntoIterator<Item = (K, V)>) -> Self {
        Self {
            rows: rows.into_iter().collect(),
            ..Self::default()
        }
    }

    /// A row.
    pub fn get(&self, key: K) -> Option<&V> {
        self.rows.get(&key)
    }

    /// A row, to change: it will be saved.
    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        let row = self.rows.get_mut(&key)?;
        self.changed.insert(key);
        Some(row)
    }

    /// A row that is not in the database yet: it will be inserted.
    pub fn add(&mut self, key: K, row: V) {
        self.rows.insert(key, row);
        self.added.insert(key);
    }

    /// The rows to insert and the rows to update, each in key order (the
    /// lock order).
    pub fn into_changes(mut self) -> Changes<K, V> {
        let mut take = |keys: &BTreeSet<K>| -> Vec<(K, V)> {
            keys.iter()
                .filter_map(|&key| self.rows.remove(&key).map(|row| (key, row)))
                .collect()
        };
        let added = take(&self.added);
        let changed = take(&self.changed);
        Changes { added, changed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracked_rows_split_into_added_and_changed() {
        let mut rows = Tracked::loaded([(1, "one"), (2, "two"), (3, "three")]);
        if let Some(row) = rows.get_mut(3) {
            *row = "THREE";
        }
        assert!(rows.get_mut(9).is_none(), "an unknown key is not a change");
        rows.add(0, "zero");
        assert_eq!(rows.get(2), Some(&"two"));
        assert_eq!(
            rows.into_changes(),
            Changes {
                added: vec![(0, "zero")],
                changed: vec![(3, "THREE")],
            }
        );
    }
}
