//! Write transactions that behave the same on PostgreSQL and SQLite.
//!
//! ## Guarantees
//! - **No write fails because another one is writing.** On SQLite,
//!   [`begin_write`] first queues, in arrival order, for the one writer
//!   slot of the database file in this process, then starts the
//!   transaction with `BEGIN IMMEDIATE`, so it holds the database's write
//!   lock before it reads anything. A deferred `BEGIN` would read first
//!   and then try to upgrade, and SQLite answers such an upgrade with
//!   `SQLITE_BUSY` at once (its busy handler is not called, to avoid a
//!   deadlock) or, in WAL mode, with `SQLITE_BUSY_SNAPSHOT` when another
//!   writer committed meanwhile. The queue is fair, unlike SQLite's busy
//!   handler (which polls, so a waiter can lose to later arrivals for
//!   seconds); the busy handler (`OMS_SQLITE_BUSY_TIMEOUT_MS`) is left for
//!   writers outside the queue (single-statement writes, other programs).
//! - **Bounded waits.** A writer that waits longer than
//!   [`WRITE_QUEUE_TIMEOUT`] for its slot, or finds the file still locked
//!   after [`WRITE_ATTEMPTS`] `BEGIN IMMEDIATE`s, gets an error that
//!   [`is_busy`] recognises: HTTP answers it with 503 and `Retry-After`,
//!   consumers retry their batch.
//! - On PostgreSQL the same call is a plain `BEGIN`: row locks, taken by
//!   the statements themselves, order concurrent writers.
//!
//! Every transaction that writes goes through [`begin_write`]; read-only
//! work may use the pool or a plain `begin()`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use sea_orm::prelude::async_trait;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnAcquireErr, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, ExecResult, IntoActiveModel, Iterable,
    QueryFilter, QueryOrder, QueryResult, QuerySelect, RuntimeErr, Select, SqliteTransactionMode,
    Statement, TransactionOptions, TransactionTrait, TryInsertResult,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// `query` with `FOR UPDATE` on PostgreSQL, so that the rows it reads stay
/// locked until the transaction ends; unchanged on SQLite, whose writer
/// holds the whole database from `BEGIN IMMEDIATE` on. Order the query by
/// primary key: one global lock order keeps instances from deadlocking.
pub fn for_update<E: EntityTrait>(query: Select<E>, conn: &impl ConnectionTrait) -> Select<E> {
    if conn.get_database_backend() == DbBackend::Postgres {
        query.lock_exclusive()
    } else {
        query
    }
}

/// The most values one statement binds. SQLite refuses a statement with
/// more than 32,766, PostgreSQL one with more than 65,535; a batch's
/// statements stay far below both whatever the batch holds (200 orders of
/// 100 lines are 20,000 reservation lines), because every multi-row
/// statement is cut into pieces of [`rows_per_statement`] rows and every
/// list of keys into pieces of this many. Below this, a batch is still one
/// statement per table and kind.
pub const MAX_BOUND_VALUES: usize = 10_000;

/// How many rows of `E` one multi-row statement carries at most: as many
/// as bind at most [`MAX_BOUND_VALUES`] values, one per column.
pub fn rows_per_statement<E: EntityTrait>() -> usize {
    (MAX_BOUND_VALUES / <E::Column as Iterable>::iter().count().max(1)).max(1)
}

/// `rows` in order, in pieces that fit one statement of `E`
/// ([`rows_per_statement`]): one piece unless the batch is very large.
pub fn statement_chunks<E: EntityTrait, T>(rows: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let size = rows_per_statement::<E>();
    let mut rows = rows.into_iter();
    std::iter::from_fn(move || {
        let chunk: Vec<T> = rows.by_ref().take(size).collect();
        (!chunk.is_empty()).then_some(chunk)
    })
}

/// `keys` in pieces of at most [`MAX_BOUND_VALUES`], for `IN (…)` lists.
pub fn key_chunks<K>(keys: &[K]) -> std::slice::Chunks<'_, K> {
    keys.chunks(MAX_BOUND_VALUES)
}

/// The rows of `E` whose `key` is among `ids`, in key order, locked until
/// the transaction ends ([`for_update`]): one statement for a whole batch
/// (one per [`MAX_BOUND_VALUES`] keys, taken in key order, so the lock
/// order stays global).
///
/// # Errors
/// The database error.
pub async fn find_many_for_update<E: EntityTrait, K: Into<sea_orm::Value> + Copy + Ord>(
    conn: &impl ConnectionTrait,
    key: E::Column,
    ids: &[K],
) -> Result<Vec<E::Model>, DbErr> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in key_chunks(&ids) {
        let query = E::find()
            .filter(key.is_in(chunk.iter().copied()))
            .order_by_asc(key);
        rows.extend(for_update(query, conn).all(conn).await?);
    }
    Ok(rows)
}

/// Inserts decisions about keys that had none, with one statement. When
/// another writer decided one of the same keys meanwhile (a row that did
/// not exist could not be locked), nothing of the caller's transaction may
/// commit: the error is transient, and the retried batch finds the other
/// decision.
///
/// # Errors
/// The database error, or [`DbErr::Custom`] when a key was taken.
pub async fn insert_new<A>(
    conn: &impl ConnectionTrait,
    rows: Vec<<A::Entity as EntityTrait>::Model>,
    key: <A::Entity as EntityTrait>::Column,
) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    let wanted = rows.len();
    let mut inserted = 0;
    for chunk in statement_chunks::<A::Entity, _>(rows) {
        inserted +=
            match A::Entity::insert_many(chunk.into_iter().map(IntoActiveModel::into_active_model))
                .on_conflict_do_nothing_on([key])
                .exec_with_returning_keys(conn)
                .await?
            {
                TryInsertResult::Inserted(keys) => keys.len(),
                TryInsertResult::Conflicted | TryInsertResult::Empty => 0,
            };
    }
    if inserted < wanted {
        return Err(DbErr::Custom(WRITE_CONFLICT_MESSAGE.to_owned()));
    }
    Ok(())
}

/// Saves `columns` of existing (locked) rows, one statement for all
/// ([`statement_chunks`] of them)
/// (`INSERT … ON CONFLICT (key) DO UPDATE`, on PostgreSQL and SQLite).
///
/// # Errors
/// The database error.
pub async fn save_columns<A>(
    conn: &impl ConnectionTrait,
    rows: Vec<<A::Entity as EntityTrait>::Model>,
    key: <A::Entity as EntityTrait>::Column,
    columns: impl IntoIterator<Item = <A::Entity as EntityTrait>::Column>,
) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    let on_conflict = OnConflict::column(key).update_columns(columns).to_owned();
    for chunk in statement_chunks::<A::Entity, _>(rows) {
        A::Entity::insert_many(chunk.into_iter().map(IntoActiveModel::into_active_model))
            .on_conflict(on_conflict.clone())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// How many times [`begin_write`] tries `BEGIN IMMEDIATE` on SQLite, each
/// attempt waiting up to the connection's busy timeout.
pub const WRITE_ATTEMPTS: u32 = 3;

/// The longest a SQLite writer waits for its turn in this process.
pub const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// The message of [`insert_new`]'s error when another writer won a key.
const WRITE_CONFLICT_MESSAGE: &str =
    "another writer decided a key of this batch meanwhile; retrying";

/// The message of the error a writer gets when its turn did not come.
const QUEUE_TIMEOUT_MESSAGE: &str = "database is locked: no turn to write within the queue timeout";

/// A transaction that writes: derefs to the [`DatabaseTransaction`] and is
/// a connection of its own, so repository functions take `&txn` as they
/// are. On SQLite it also holds this process's writer slot of the
/// database until it is committed, rolled back or dropped.
pub struct WriteTransaction {
    txn: DatabaseTransaction,
    _turn: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for WriteTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTransaction")
            .field("backend", &self.txn.get_database_backend())
            .finish_non_exhaustive()
    }
}

impl WriteTransaction {
    /// Commits, then lets the next writer in.
    ///
    /// # Errors
    /// The commit's error; nothing was written then.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }

    /// Rolls back, then lets the next writer in.
    ///
    /// # Errors
    /// The database error.
    pub async fn rollback(self) -> Result<(), DbErr> {
        self.txn.rollback().await
    }
}

impl std::ops::Deref for WriteTransaction {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for WriteTransaction {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }

    fn is_mock_connection(&self) -> bool {
        self.txn.is_mock_connection()
    }
}

/// Begins a transaction that will write: on SQLite after this process's
/// earlier writers of the same file, with `BEGIN IMMEDIATE` (see the
/// [module docs](self)); a plain `BEGIN` on PostgreSQL.
///
/// # Errors
/// The database error; [`is_busy`] tells whether SQLite stayed locked.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTransaction, DbErr> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(WriteTransaction {
            txn: db.begin().await?,
            _turn: None,
        });
    }
    let queue = writer_queue(db);
    let turn = tokio::time::timeout(WRITE_QUEUE_TIMEOUT, queue.acquire_owned())
        .await
        .map_err(|_| DbErr::Custom(QUEUE_TIMEOUT_MESSAGE.to_owned()))?
        .map_err(|_| DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))?;
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let mut attempt = 1;
    loop {
        match db.begin_with_options(options).await {
            Ok(txn) => {
                return Ok(WriteTransaction {
                    txn,
                    _turn: Some(turn),
                });
            }
            Err(error) if is_busy(&error) && attempt < WRITE_ATTEMPTS => {
                tracing::debug!(attempt, error = %error, "database locked by another writer; trying again");
                metrics::counter!("oms_database_busy_retries_total").increment(1);
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The queue of this process's writers of `db`'s file, keyed by the file
/// name its URL gives. Not canonicalised (that would be a file-system call
/// per write): a service holds its file's lock, so only one pool of this
/// process writes to a file anyway.
fn writer_queue(db: &DatabaseConnection) -> Arc<Semaphore> {
    static QUEUES: LazyLock<Mutex<HashMap<PathBuf, Arc<Semaphore>>>> =
        LazyLock::new(Mutex::default);
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_owned();
    let mut queues = QUEUES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    queues
        .entry(file)
        .or_insert_with(|| Arc::new(Semaphore::new(1)))
        .clone()
}

/// Whether `error` says that SQLite's database was locked by another
/// connection (`SQLITE_BUSY`, `SQLITE_LOCKED` and their extended codes):
/// retrying later can succeed.
pub fn is_busy(error: &DbErr) -> bool {
    matches!(error, DbErr::Custom(message) if message == QUEUE_TIMEOUT_MESSAGE)
        || sqlite_primary_code(error)
            .is_some_and(|code| matches!(code, SQLITE_BUSY | SQLITE_LOCKED))
}

/// Whether `error` means the database could not be reached or had no free
/// connection in time: worth retrying later, and no fault of the request.
pub fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(ConnAcquireErr::Timeout | ConnAcquireErr::ConnectionClosed) => {
            true
        }
        DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e.as_ref(),
                sea_orm::sqlx::Error::Io(_)
                    | sea_orm::sqlx::Error::PoolTimedOut
                    | sea_orm::sqlx::Error::PoolClosed
                    | sea_orm::sqlx::Error::WorkerCrashed
            )
        }
        _ => false,
    }
}

/// Whether retrying `error` can never help: the data breaks a rule of the
/// database (PostgreSQL's SQLSTATE classes 22 *data exception* and 23
/// *integrity constraint violation*; SQLite's constraint, too-big,
/// mismatch and range errors), a value read back cannot be decoded, or our
/// own code refused it ([`DbErr::Custom`], except the two waits above and a
/// lost write race). Everything else (connections, serialization failures,
/// deadlocks, locks, resources) is transient: retried, never skipped.
pub fn is_permanent(error: &DbErr) -> bool {
    use sea_orm::sqlx::Error as SqlxError;
    if is_busy(error) || is_unavailable(error) {
        return false;
    }
    match error {
        DbErr::Custom(message) => message != WRITE_CONFLICT_MESSAGE,
        DbErr::Type(_)
        | DbErr::Json(_)
        | DbErr::TryIntoErr { .. }
        | DbErr::ConvertFromU64(_)
        | DbErr::AttrNotSet(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                SqlxError::Database(database) => {
                    if database
                        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                        .is_some()
                    {
                        sqlite_primary_code(error).is_some_and(|code| {
                            matches!(
                                code,
                                SQLITE_TOOBIG | SQLITE_CONSTRAINT | SQLITE_MISMATCH | SQLITE_RANGE
                            )
                        })
                    } else {
                        database
                            .code()
                            .is_some_and(|state| state.starts_with("22") || state.starts_with("23"))
                    }
                }
                SqlxError::ColumnDecode { .. }
                | SqlxError::Decode(_)
                | SqlxError::Encode(_)
                | SqlxError::TypeNotFound { .. } => true,
                _ => false,
            }
        }
        _ => false,
    }
}

const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_TOOBIG: i64 = 18;
const SQLITE_CONSTRAINT: i64 = 19;
const SQLITE_MISMATCH: i64 = 20;
const SQLITE_RANGE: i64 = 25;

/// The primary SQLite result code of a database error (the low byte of the
/// extended code sqlx reports).
fn sqlite_primary_code(error: &DbErr) -> Option<i64> {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = error
    else {
        return None;
    };
    let sea_orm::sqlx::Error::Database(database) = e.as_ref() else {
        return None;
    };
    database
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .and_then(|_| database.code())
        .and_then(|code| code.parse::<i64>().ok())
        .map(|extended| extended & 0xff)
}

/// Whether `error` is a unique-constraint violation (a key taken), on
/// PostgreSQL or SQLite.
pub fn is_unique_violation(error: &DbErr) -> bool {
    matches!(
        error.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}
