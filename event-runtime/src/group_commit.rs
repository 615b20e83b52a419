//! Group commit: concurrent writes share one transaction.
//!
//! ## Guarantees
//! - **Each caller gets its own answer.** [`GroupCommit::submit`] returns
//!   when the transaction that holds the caller's item committed (`Ok`) or
//!   did not (`Err`). When a group fails, each of its items is written
//!   again alone, so one item that breaks a constraint fails only its own
//!   caller, and every other caller still gets `Ok`.
//! - **Atomic per item, durable when answered.** An item's rows and the
//!   events it causes ([`Outbox::enqueue_many`]) commit together; `Ok`
//!   means committed.
//! - **No added latency when idle.** The writer takes the first waiting
//!   item, then whatever else is already queued (up to
//!   [`GroupCommitSettings::max_items`]), and commits the lot at once: a
//!   lone request is written immediately, and under load a group grows by
//!   itself while the previous one commits.
//! - **Bounded.** At most [`GroupCommitSettings::queue`] items wait;
//!   further callers wait for room (back-pressure), so memory stays flat.
//!
//! The writers run as tasks ([`GroupCommitSettings::writers`]); they end
//! when every handle is dropped. Items of different groups may commit in
//! either order: group only writes that do not depend on each other (new
//! orders), never changes to one aggregate.

use std::future::Future;
use std::sync::Arc;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::database::begin_write;
use super::outbox::Outbox;

/// Writes a group of items in the transaction it is given: one
/// statement per table for the whole group, ideally.
pub trait GroupWriter: Send + Sync + 'static {
    /// What a caller submits.
    type Item: Send + Sync + 'static;

    /// Writes `items` through `txn`.
    ///
    /// # Errors
    /// The database error; the transaction then rolls back.
    fn write(
        &self,
        txn: &DatabaseTransaction,
        items: &[Self::Item],
    ) -> impl Future<Output = Result<(), DbErr>> + Send;
}

/// How large groups get, and how many commit at once.
#[derive(Debug, Clone, Copy)]
pub struct GroupCommitSettings {
    /// Most items committed in one transaction (default 256).
    pub max_items: usize,
    /// Most items waiting for a writer (default 4096).
    pub queue: usize,
    /// Writers, each committing its own group while the next one forms
    /// (default 1; [`GroupCommitSettings::for_backend`] gives PostgreSQL 2,
    /// SQLite 1, since SQLite has one writer anyway).
    pub writers: usize,
}

impl Default for GroupCommitSettings {
    fn default() -> Self {
        Self {
            max_items: 256,
            queue: 4096,
            writers: 1,
        }
    }
}

impl GroupCommitSettings {
    /// The defaults, with as many writers as `db` usefully commits at once:
    /// two on PostgreSQL (one group waits for its WAL flush while the other
    /// writes), one on SQLite.
    pub fn for_backend(db: &DatabaseConnection) -> Self {
        let writers = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => 2,
            _ => 1,
        };
        Self {
            writers,
            ..Self::default()
        }
    }
}

struct Job<T> {
    item: T,
    answer: oneshot::Sender<Result<(), DbErr>>,
}

/// A handle to submit items to a group-committing writer; cheap to clone.
pub struct GroupCommit<T> {
    jobs: mpsc::Sender<Job<T>>,
}

impl<T> Clone for GroupCommit<T> {
    fn clone(&self) -> Self {
        Self {
            jobs: self.jobs.clone(),
        }
    }
}

impl<T> std::fmt::Debug for GroupCommit<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> GroupCommit<T> {
    /// Starts the writer task. Call from within a Tokio runtime.
    pub fn start<W: GroupWriter<Item = T>>(
        db: DatabaseConnection,
        outbox: Outbox,
        writer: W,
        settings: GroupCommitSettings,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(settings.queue.max(1));
        let queue = Arc::new(Mutex::new(queue));
        let writer = Arc::new(writer);
        for _ in 0..settings.writers.max(1) {
            tokio::spawn(run(
                db.clone(),
                outbox.clone(),
                writer.clone(),
                queue.clone(),
                settings.max_items.max(1),
            ));
        }
        Self { jobs }
    }

    /// Writes `item` in the next group; returns once it committed.
    ///
    /// # Errors
    /// The database error of the item's own transaction, or
    /// [`DbErr::Custom`] when the writer has stopped (shutdown).
    pub async fn submit(&self, item: T) -> Result<(), DbErr> {
        let (answer, answered) = oneshot::channel();
        self.jobs
            .send(Job { item, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn stopped() -> DbErr {
    DbErr::Custom("the group-commit writer has stopped".into())
}

async fn run<W: GroupWriter>(
    db: DatabaseConnection,
    outbox: Outbox,
    writer: Arc<W>,
    queue: Arc<Mutex<mpsc::Receiver<Job<W::Item>>>>,
    max_items: usize,
) {
    let mut jobs = Vec::with_capacity(max_items);
    // A writer holds the queue only while it forms its group, so that the
    // next group forms while this one commits.
    while queue.lock().await.recv_many(&mut jobs, max_items).await > 0 {
        let (items, answers): (Vec<_>, Vec<_>) =
            jobs.drain(..).map(|job| (job.item, job.answer)).unzip();
        metrics::histogram!("oms_group_commit_items").record(items.len() as f64);
        match write_group(&db, &outbox, &*writer, &items).await {
            Ok(()) => {
                for answer in answers {
                    let _ = answer.send(Ok(()));
                }
            }
            Err(error) if items.len() == 1 => {
                let _ = answers.into_iter().next().map(|a| a.send(Err(error)));
            }
            Err(error) => {
                tracing::debug!(items = items.len(), error = %error, "group failed; writing its items one by one");
                for (item, answer) in items.iter().zip(answers) {
                    let result =
                        write_group(&db, &outbox, &*writer, std::slice::from_ref(item)).await;
                    let _ = answer.send(result);
                }
            }
        }
    }
}

async fn write_group<W: GroupWriter>(
    db: &DatabaseConnection,
    outbox: &Outbox,
    writer: &W,
    items: &[W::Item],
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    writer.write(&txn, items).await?;
    outbox.commit(txn).await
}
