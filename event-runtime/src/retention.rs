//! Retention: the plumbing's tables do not grow for ever.
//!
//! ## Guarantees
//! - **Inbox rows are kept for [`RetentionSettings::inbox`]** (default 8
//!   days, `OMS_INBOX_RETENTION_HOURS`), longer than the broker keeps
//!   records (7 days by default), so a record that can still be delivered
//!   or replayed still finds its inbox row and is skipped. Shorten it only
//!   together with the topics' `retention.ms`.
//! - **Published outbox rows are kept for [`RetentionSettings::outbox`]**
//!   (default 1 hour) for operators, then deleted, where the relay keeps
//!   them (the services' relays delete each row once published unless
//!   `OMS_OUTBOX_RETENTION_HOURS` is set); rows not yet published (or set
//!   aside) are never deleted.
//! - **Bounded work**: rows go in batches of [`RetentionSettings::batch`]
//!   (one short statement each, over an index on the time column), so a
//!   large backlog of old rows never holds a long transaction or a lock
//!   that the hot path waits on. The task runs apart from the relay and the
//!   consumers, so a draining backlog does not postpone it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio_util::sync::CancellationToken;

/// How long the plumbing keeps what it no longer needs.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// Inbox rows older than this are deleted (default 8 days).
    pub inbox: Duration,
    /// Published outbox rows older than this are deleted (default 1 hour).
    pub outbox: Duration,
    /// How often the task looks (default 60 s).
    pub interval: Duration,
    /// Rows deleted per statement (default 5,000).
    pub batch: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            inbox: Duration::from_secs(8 * 24 * 3600),
            outbox: Duration::from_secs(3600),
            interval: Duration::from_secs(60),
            batch: 5_000,
        }
    }
}

/// Deletes the rows of `table` whose `time_column` is before `cutoff`,
/// `batch` rows per statement until none is left; returns how many. Each statement stands alone: no transaction
/// spans the batches.
///
/// # Errors
/// The database error; the batches before it stay deleted.
pub async fn delete_before(
    conn: &impl ConnectionTrait,
    table: &str,
    time_column: &str,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let backend = conn.get_database_backend();
    // The row's physical id: one index look-up per batch, whatever the key.
    let row_id = if backend == DbBackend::Postgres {
        "ctid"
    } else {
        "rowid"
    };
    let sql = format!(
        "DELETE FROM {table} WHERE {row_id} IN \
         (SELECT {row_id} FROM {table} WHERE {time_column} < $1 LIMIT $2)"
    );
    let mut total = 0;
    loop {
        let deleted = conn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql.as_str(),
                [
                    cutoff.into(),
                    i64::try_from(batch).unwrap_or(i64::MAX).into(),
                ],
            ))
            .await?
            .rows_affected();
        total += deleted;
        if deleted < batch {
            return Ok(total);
        }
    }
}

/// Deletes old inbox and published outbox rows of one database.
pub struct Retention {
    db: DatabaseConnection,
    settings: RetentionSettings,
}

impl Retention {
    /// Retention of `db`'s plumbing tables.
    pub fn new(db: DatabaseConnection, settings: RetentionSettings) -> Self {
        Self { db, settings }
    }

    /// One pass; returns how many inbox and outbox rows were deleted.
    ///
    /// # Errors
    /// The database error.
    pub async fn prune(&self) -> Result<(u64, u64), DbErr> {
        let now = Utc::now();
        let age = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        let inbox = delete_before(
            &self.db,
            "inbox_messages",
            "processed_at",
            now - age(self.settings.inbox),
            self.settings.batch,
        )
        .await?;
        let outbox = delete_before(
            &self.db,
            "outbox_messages",
            "published_at",
            now - age(self.settings.outbox),
            self.settings.batch,
        )
        .await?;
        if inbox + outbox > 0 {
            tracing::debug!(inbox, outbox, "deleted rows past their retention");
        }
        metrics::counter!("oms_retention_deleted_total", "table" => "inbox_messages")
            .increment(inbox);
        metrics::counter!("oms_retention_deleted_total", "table" => "outbox_messages")
            .increment(outbox);
        Ok((inbox, outbox))
    }

    /// Prunes every [`RetentionSettings::interval`] until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.prune().await {
                tracing::warn!(error = %error, "retention pass failed; trying again later");
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.interval) => {}
            }
        }
    }
}
