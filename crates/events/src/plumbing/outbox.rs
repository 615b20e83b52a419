//! The transactional outbox: events are written to the `outbox_messages`
//! table in the same database transaction as the state change that causes
//! them, and the [`OutboxRelay`] publishes them to Kafka afterwards.
//!
//! ## Guarantees
//! - **Atomicity**: an event exists if and only if its transaction committed.
//! - **At-least-once publication**: the relay marks rows published only after
//!   the broker acknowledged them (`acks=all`, idempotent producer). A crash
//!   between the two republishes those rows; consumers absorb the duplicates
//!   through their inbox.
//! - **Per-key order**: rows are published in id order, and the idempotent
//!   producer keeps that order per partition. Ids follow commit order per
//!   aggregate as long as a transaction writes (and so locks) its aggregate
//!   row before it writes its outbox row.
//! - **Low latency without polling**: [`Outbox::commit`] wakes the relay of
//!   this process as soon as the transaction commits. A slow timer
//!   ([`RelaySettings::idle_poll`]) only catches rows committed by other
//!   processes sharing the database, or left by a crash.
//! - **One relay at a time** per PostgreSQL database (a session-level
//!   advisory lock on a connection the relay keeps), so that instances of
//!   one service never interleave their publications. SQLite is
//!   single-process by design.
//! - **No transaction waits for the broker**: a round reads the pending
//!   rows, publishes them, and marks them published in one statement.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sea_orm::sea_query::Expr;
use sea_orm::sqlx::{self, PgConnection};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RuntimeErr,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::database::{WriteTransaction, begin_write};
use super::kafka::KafkaSettings;
use super::storage::outbox_message;
use super::trace::TraceContext;
use crate::envelope::{Envelope, Event};
use crate::topics::{Topic, TopicNames, headers};

/// Wakes the relay of this process; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RelayWaker(Arc<Notify>);

impl RelayWaker {
    /// Tells the relay that new rows were committed. A wake that arrives
    /// while the relay is busy is remembered, never lost.
    pub fn wake(&self) {
        self.0.notify_one();
    }

    async fn woken(&self) {
        self.0.notified().await;
    }
}

/// Writes events into the outbox of one service.
#[derive(Debug, Clone)]
pub struct Outbox {
    producer: Arc<str>,
    waker: RelayWaker,
}

impl Outbox {
    /// An outbox for the service named `producer` (it becomes each
    /// envelope's `producer`).
    pub fn new(producer: impl Into<String>) -> Self {
        Self {
            producer: Arc::from(producer.into()),
            waker: RelayWaker::default(),
        }
    }

    /// The service name.
    pub fn producer(&self) -> &str {
        &self.producer
    }

    /// The waker shared with this outbox's relay.
    pub fn waker(&self) -> RelayWaker {
        self.waker.clone()
    }

    /// An envelope for an event caused by a request rather than by another event.
    pub fn envelope(&self, event: impl Into<Event>) -> Envelope {
        Envelope::new(event, &*self.producer)
    }

    /// An envelope for an event caused by `cause`.
    pub fn envelope_caused_by(&self, event: impl Into<Event>, cause: &Envelope) -> Envelope {
        Envelope::caused_by(event, &*self.producer, cause)
    }

    /// Writes `envelope` through `conn`, with the trace context of the current
    /// span. Call it with the transaction that writes the state change.
    ///
    /// # Errors
    /// The database error; the caller's transaction should then roll back.
    pub async fn enqueue<C: ConnectionTrait>(
        &self,
        conn: &C,
        envelope: &Envelope,
    ) -> Result<(), DbErr> {
        Self::enqueue_many(conn, vec![PendingEvent::traced(envelope.clone())]).await
    }

    /// Writes `events` through `conn` with one statement, in order (their
    /// outbox ids, and so their publication order, follow the slice).
    ///
    /// # Errors
    /// The database error; the caller's transaction should then roll back.
    pub async fn enqueue_many<C: ConnectionTrait>(
        conn: &C,
        events: Vec<PendingEvent>,
    ) -> Result<(), DbErr> {
        if events.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        outbox_message::Entity::insert_many(events.into_iter().map(|pending| {
            let PendingEvent { envelope, trace } = pending;
            outbox_message::ActiveModel {
                event_id: Set(envelope.event_id),
                topic: Set(envelope.event.topic().base_name().to_owned()),
                message_key: Set(envelope.key().to_string()),
                event_type: Set(envelope.event.event_type().to_owned()),
                schema_version: Set(envelope.event.schema_version() as i32),
                payload: Set(String::from_utf8(envelope.to_bytes()).expect("JSON is UTF-8")),
                traceparent: Set(trace.traceparent),
                tracestate: Set(trace.tracestate),
                created_at: Set(now),
                published_at: Set(None),
                ..Default::default()
            }
        }))
        .exec_without_returning(conn)
        .await?;
        Ok(())
    }

    /// Commits `txn` and wakes the relay, so that the events it wrote are
    /// published at once.
    ///
    /// # Errors
    /// The commit's error; nothing was published then.
    pub async fn commit(&self, txn: WriteTransaction) -> Result<(), DbErr> {
        txn.commit().await?;
        self.waker.wake();
        Ok(())
    }
}

/// An event waiting to be written to the outbox, with the trace context of
/// the span that caused it.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// The event.
    pub envelope: Envelope,
    /// Where it was caused, for the record's `traceparent`.
    pub trace: TraceContext,
}

impl PendingEvent {
    /// `envelope`, traced to the current span.
    pub fn traced(envelope: Envelope) -> Self {
        Self {
            envelope,
            trace: TraceContext::current(),
        }
    }
}

/// How the relay batches and paces itself.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// Rows published per round (default 500).
    pub batch_size: u64,
    /// How often an idle relay looks for rows it was not woken for (default 1 s).
    pub idle_poll: Duration,
    /// How long published rows are kept before they are deleted (default 1 h).
    pub retention: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_poll: Duration::from_secs(1),
            retention: Duration::from_secs(3600),
        }
    }
}

/// What one round of the relay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// This many rows were published and marked.
    Published(usize),
    /// Nothing was pending.
    Empty,
    /// Another relay on the same database holds the lock.
    Busy,
}

/// Publishes outbox rows to Kafka. See the [module docs](self) for guarantees.
pub struct OutboxRelay {
    db: DatabaseConnection,
    lease: RelayLease,
    producer: FutureProducer,
    topics: TopicNames,
    waker: RelayWaker,
    settings: RelaySettings,
}

/// Key of the PostgreSQL advisory lock that keeps one relay per database.
const RELAY_LOCK_KEY: i64 = 0x6f6d_735f_7265_6c61;

/// The right to publish: on PostgreSQL a session-level advisory lock, held
/// on a connection of the pool that the relay keeps for itself (it is not
/// in a transaction, so it blocks nothing). The connection is checked at
/// every round; if it broke, the lock went with it and is taken again
/// before anything is published. SQLite is single-process by design
/// (the service holds a lock file), so it needs none.
#[derive(Default)]
struct RelayLease {
    connection: tokio::sync::Mutex<Option<PgConnection>>,
}

impl RelayLease {
    /// Whether this relay may publish now.
    async fn hold(&self, db: &DatabaseConnection) -> Result<bool, DbErr> {
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(true);
        }
        let mut connection = self.connection.lock().await;
        if let Some(held) = connection.as_mut() {
            if sqlx::query("SELECT 1").execute(&mut *held).await.is_ok() {
                return Ok(true);
            }
            tracing::warn!("the relay's lock connection broke; taking the lock again");
            *connection = None;
        }
        let mut fresh = db
            .get_postgres_connection_pool()
            .acquire()
            .await
            .map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(e.into())))?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK_KEY)
            .fetch_one(&mut *fresh)
            .await
            .map_err(|e| DbErr::Query(RuntimeErr::SqlxError(e.into())))?;
        if locked {
            // Out of the pool, so that the lock ends with the relay (the
            // connection closes when it is dropped) instead of staying on a
            // pooled session that somebody else borrows.
            *connection = Some(fresh.detach());
        }
        Ok(locked)
    }
}

impl OutboxRelay {
    /// A relay for `outbox`'s rows in `db`.
    ///
    /// # Errors
    /// When the producer cannot be created.
    pub fn new(
        db: DatabaseConnection,
        kafka: &KafkaSettings,
        outbox: &Outbox,
        settings: RelaySettings,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            db,
            lease: RelayLease::default(),
            producer: kafka.producer(&format!("{}-relay", outbox.producer()))?,
            topics: kafka.topics.clone(),
            waker: outbox.waker(),
            settings,
        })
    }

    /// Publishes until `shutdown` is cancelled. Rows still pending then stay
    /// in the table and are published by the next start.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        let mut last_cleanup = tokio::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let pause = match self.try_execute().await {
                Ok(RelayOutcome::Published(n)) => {
                    failures = 0;
                    metrics::counter!("oms_outbox_published_total").increment(n as u64);
                    if n as u64 >= self.settings.batch_size {
                        continue;
                    }
                    None
                }
                Ok(RelayOutcome::Empty | RelayOutcome::Busy) => {
                    failures = 0;
                    None
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let delay = backoff(failures);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        retry_in_ms = delay.as_millis() as u64,
                        "outbox relay round failed"
                    );
                    Some(delay)
                }
            };
            if last_cleanup.elapsed() >= Duration::from_secs(60) {
                last_cleanup = tokio::time::Instant::now();
                if let Err(error) = self.housekeeping().await {
                    tracing::warn!(error = format!("{error:#}"), "outbox housekeeping failed");
                }
            }
            let wait = pause.unwrap_or(self.settings.idle_poll);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.waker.woken(), if pause.is_none() => {}
                _ = tokio::time::sleep(wait) => {
                    if pause.is_none() {
                        self.report_backlog().await;
                    }
                }
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// One round: publish the oldest pending rows and mark them published.
    /// No transaction is open while the relay waits for the broker: it
    /// reads the rows, publishes them, then marks them in one statement.
    ///
    /// # Errors
    /// Database or broker errors; nothing is marked then, and the next
    /// round publishes the same rows again.
    pub async fn try_execute(&self) -> anyhow::Result<RelayOutcome> {
        if !self.lease.hold(&self.db).await? {
            return Ok(RelayOutcome::Busy);
        }
        let rows = Self::pending(&self.db, self.settings.batch_size).await?;
        if rows.is_empty() {
            return Ok(RelayOutcome::Empty);
        }
        self.publish(&rows).await?;
        let txn = begin_write(&self.db).await?;
        Self::mark_published(&*txn, rows.iter().map(|r| r.id)).await?;
        txn.commit().await?;
        Ok(RelayOutcome::Published(rows.len()))
    }

    /// The oldest unpublished rows, in publication order.
    ///
    /// # Errors
    /// The database error.
    pub async fn pending<C: ConnectionTrait>(
        conn: &C,
        limit: u64,
    ) -> Result<Vec<outbox_message::Model>, DbErr> {
        outbox_message::Entity::find()
            .filter(outbox_message::Column::PublishedAt.is_null())
            .order_by_asc(outbox_message::Column::Id)
            .limit(limit)
            .all(conn)
            .await
    }

    /// How many rows wait to be published.
    ///
    /// # Errors
    /// The database error.
    pub async fn backlog<C: ConnectionTrait>(conn: &C) -> Result<u64, DbErr> {
        outbox_message::Entity::find()
            .filter(outbox_message::Column::PublishedAt.is_null())
            .count(conn)
            .await
    }

    /// Sends `rows` to the broker, in order, and waits until every one is
    /// acknowledged. Does not mark them: that is the caller's next step.
    ///
    /// # Errors
    /// The first delivery error; some rows may have been delivered anyway.
    pub async fn publish(&self, rows: &[outbox_message::Model]) -> anyhow::Result<()> {
        let mut deliveries = Vec::with_capacity(rows.len());
        for row in rows {
            let topic = self.topic_name(&row.topic)?;
            let version = row.schema_version.to_string();
            let mut record_headers = OwnedHeaders::new_with_capacity(4)
                .insert(Header {
                    key: headers::EVENT_TYPE,
                    value: Some(row.event_type.as_str()),
                })
                .insert(Header {
                    key: headers::SCHEMA_VERSION,
                    value: Some(version.as_str()),
                });
            if let Some(traceparent) = &row.traceparent {
                record_headers = record_headers.insert(Header {
                    key: headers::TRACEPARENT,
                    value: Some(traceparent.as_str()),
                });
            }
            if let Some(tracestate) = &row.tracestate {
                record_headers = record_headers.insert(Header {
                    key: headers::TRACESTATE,
                    value: Some(tracestate.as_str()),
                });
            }
            let record = FutureRecord::to(&topic)
                .key(row.message_key.as_str())
                .payload(row.payload.as_str())
                .headers(record_headers);
            let delivery = self.producer.send_result(record).map_err(|(error, _)| {
                anyhow::anyhow!("could not enqueue event {}: {error}", row.event_id)
            })?;
            deliveries.push((row.event_id, delivery));
        }
        let mut first_error = None;
        for (event_id, result) in join_all(
            deliveries
                .into_iter()
                .map(|(id, d)| async move { (id, d.await) }),
        )
        .await
        {
            let error = match result {
                Ok(Ok(_)) => continue,
                Ok(Err((error, _))) => {
                    anyhow::anyhow!("delivery of event {event_id} failed: {error}")
                }
                Err(_) => anyhow::anyhow!("delivery of event {event_id} was cancelled"),
            };
            first_error.get_or_insert(error);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Marks rows published.
    ///
    /// # Errors
    /// The database error.
    pub async fn mark_published<C: ConnectionTrait>(
        conn: &C,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<(), DbErr> {
        outbox_message::Entity::update_many()
            .col_expr(outbox_message::Column::PublishedAt, Expr::value(Utc::now()))
            .filter(outbox_message::Column::Id.is_in(ids))
            .exec(conn)
            .await?;
        Ok(())
    }

    fn topic_name(&self, logical: &str) -> anyhow::Result<String> {
        Topic::ALL
            .into_iter()
            .find(|t| t.base_name() == logical)
            .map(|t| self.topics.name(t))
            .ok_or_else(|| anyhow::anyhow!("outbox row names unknown topic {logical:?}"))
    }

    async fn housekeeping(&self) -> Result<(), DbErr> {
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.settings.retention)
                .unwrap_or(chrono::Duration::hours(1));
        let txn = begin_write(&self.db).await?;
        let deleted = outbox_message::Entity::delete_many()
            .filter(outbox_message::Column::PublishedAt.lt(cutoff))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        if deleted.rows_affected > 0 {
            tracing::debug!(
                rows = deleted.rows_affected,
                "deleted published outbox rows"
            );
        }
        Ok(())
    }

    async fn report_backlog(&self) {
        if let Ok(backlog) = Self::backlog(&self.db).await {
            metrics::gauge!("oms_outbox_backlog").set(backlog as f64);
        }
    }
}

/// Exponential back-off from 100 ms, capped at 5 s.
pub(crate) fn backoff(failures: u32) -> Duration {
    let millis = 100u64.saturating_mul(1u64 << failures.min(6).saturating_sub(1));
    Duration::from_millis(millis.min(5_000))
}
