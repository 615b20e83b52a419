//! The transactional outbox: events are written to the `outbox_messages`
//! table in the same database transaction as the state change that causes
//! them, and the [`OutboxRelay`] publishes them to Kafka afterwards.
//!
//! ## Guarantees
//! - **Atomicity**: an event exists if and only if its transaction committed.
//! - **At-least-once publication**: the relay marks rows published (or
//!   deletes them, [`RelaySettings::delete_published`]) only after
//!   the broker acknowledged them (`acks=all`, idempotent producer). A crash
//!   between the two republishes those rows; consumers absorb the duplicates
//!   (through their inbox, or by the state they keep).
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
//!   rows, publishes them, and marks what the broker acknowledged in one
//!   statement; what went out is never sent again because others failed.
//! - **No head-of-line block**: a row that fails for its own reasons (its
//!   topic is unknown to this version, or the broker refuses the record
//!   itself: too large, invalid, not authorized) is counted, and after
//!   [`RelaySettings::max_attempts`] set aside (`parked_at`, its error in
//!   `last_error`, metric `oms_outbox_parked_total`, an error log line).
//!   The later rows of its key wait behind it, so per-key order holds;
//!   every other key flows. Operators list and retry set-aside rows with
//!   `oms outbox list|retry` ([`OutboxRelay::parked`],
//!   [`OutboxRelay::retry_parked`]). An outage, whole or partial (a broker
//!   or a partition's leader away, a request timed out, not enough
//!   replicas), counts against no row, even while other rows go out.
//! - **A fatally failed producer is replaced**: after a round with
//!   failures the relay asks librdkafka for a fatal error (an idempotent
//!   producer that lost its sequence state never sends again) and builds a
//!   new producer. Readiness reports a relay that had rows waiting and
//!   published none for [`RelaySettings::stall_after`] ([`RelayHealth`]);
//!   every failed round is counted in `oms_outbox_relay_retries_total`.
//! - **Records a CloudEvents consumer reads as they are**: each record also
//!   carries the CloudEvents Kafka binding's binary-mode headers, mapped
//!   from its envelope ([`events::cloudevents`]); its value is the envelope.
//! - **Traced by OpenTelemetry's messaging conventions**: each round that
//!   publishes is a `send` span (kind producer, `messaging.system`,
//!   `messaging.batch.message_count`, `messaging.client.id`) linked to the
//!   spans that wrote its rows.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use sea_orm::sea_query::Expr;
use sea_orm::sqlx::{self, PgConnection};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RuntimeErr,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::database::{WriteTransaction, begin_write, key_chunks, statement_chunks};
use super::kafka::KafkaSettings;
use super::storage::outbox_message;
use super::trace::TraceContext;
use events::cloudevents::Attributes;
use events::envelope::{Envelope, Event};
use events::topics::{Topic, TopicNames, headers};

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

    /// Writes `events` through `conn` with one statement ([`statement_chunks`]
    /// of them), in order (their
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
        let rows: Vec<outbox_message::ActiveModel> = events
            .into_iter()
            .map(|pending| {
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
            })
            .collect();
        for chunk in statement_chunks::<outbox_message::Entity, _>(rows) {
            outbox_message::Entity::insert_many(chunk)
                .exec_without_returning(conn)
                .await?;
        }
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
    /// Failed attempts after which a row is set aside (default 10). Only
    /// failures that are the row's own count: its topic is unknown, or the
    /// broker refused the record itself; an outage, whole or of one
    /// partition, counts for no row.
    pub max_attempts: i32,
    /// How long the relay may have pending rows and publish none before
    /// readiness reports it stalled (default 60 s, `OMS_STALL_AFTER_SECS`).
    pub stall_after: Duration,
    /// Delete rows once the broker acknowledged them, instead of marking
    /// them published for retention to delete later (default false; the
    /// services delete unless `OMS_OUTBOX_RETENTION_HOURS` keeps them). A
    /// delete writes no new row version and no index entry, where a mark
    /// writes both and retention's delete comes on top.
    pub delete_published: bool,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_poll: Duration::from_secs(1),
            max_attempts: 10,
            stall_after: Duration::from_secs(60),
            delete_published: false,
        }
    }
}

/// What one round of the relay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// This many rows were published and marked; none failed.
    Published(usize),
    /// Some rows were published and marked, others failed (and were
    /// counted, and set aside after [`RelaySettings::max_attempts`]).
    Partial {
        /// Published and marked.
        published: usize,
        /// Not published.
        failed: usize,
    },
    /// Nothing was pending.
    Empty,
    /// Another relay on the same database holds the lock.
    Busy,
}

/// Publishes outbox rows to Kafka. See the [module docs](self) for guarantees.
pub struct OutboxRelay {
    db: DatabaseConnection,
    lease: RelayLease,
    producer: std::sync::Mutex<FutureProducer>,
    kafka: KafkaSettings,
    client_id: String,
    topics: TopicNames,
    waker: RelayWaker,
    settings: RelaySettings,
    health: RelayHealth,
}

/// Whether a relay makes progress, for readiness; cheap to clone.
#[derive(Debug, Clone)]
pub struct RelayHealth {
    started: std::time::Instant,
    /// Milliseconds after `started` of the last round that left nothing
    /// unpublished behind (an empty round, a full success, or another
    /// relay's turn).
    last_progress_ms: Arc<std::sync::atomic::AtomicU64>,
    stall_after: Duration,
}

impl RelayHealth {
    fn new(stall_after: Duration) -> Self {
        Self {
            started: std::time::Instant::now(),
            last_progress_ms: Arc::default(),
            stall_after,
        }
    }

    fn progressed(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_progress_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
    }

    /// `None` while the relay keeps up; otherwise why it does not.
    pub fn stalled(&self) -> Option<String> {
        let last = Duration::from_millis(
            self.last_progress_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        let since = self.started.elapsed().saturating_sub(last);
        (since > self.stall_after).then(|| {
            format!(
                "the outbox relay has published nothing for {} s while rows wait",
                since.as_secs()
            )
        })
    }
}

/// Why one row was not published.
#[derive(Debug, Clone)]
pub struct RowFailure {
    /// In words.
    pub error: String,
    /// Whether the failure is the row's own (its topic is unknown, or the
    /// broker refused the record itself), not the broker's or network's.
    pub own: bool,
}

/// Broker errors that are about one record or its topic, not about the
/// cluster being unreachable.
fn is_row_specific(error: &KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::UnknownTopicOrPartition
                | Code::UnknownTopic
                | Code::UnknownPartition
                | Code::InvalidTopic
                | Code::MessageSizeTooLarge
                | Code::MessageBatchTooLarge
                | Code::InvalidMessage
                | Code::InvalidMessageSize
                | Code::InvalidRecord
                | Code::TopicAuthorizationFailed
        )
    )
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
        let client_id = format!("{}-relay", outbox.producer());
        Ok(Self {
            db,
            lease: RelayLease::default(),
            producer: std::sync::Mutex::new(kafka.producer(&client_id)?),
            kafka: kafka.clone(),
            client_id,
            topics: kafka.topics.clone(),
            waker: outbox.waker(),
            health: RelayHealth::new(settings.stall_after),
            settings,
        })
    }

    /// Whether this relay makes progress (for readiness).
    pub fn health(&self) -> RelayHealth {
        self.health.clone()
    }

    fn producer(&self) -> FutureProducer {
        self.producer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the producer when librdkafka reports a fatal error (an
    /// idempotent producer that lost its sequence state can never send
    /// again); the new one starts a new producer id.
    fn rebuild_producer_if_fatal(&self) {
        let producer = self.producer();
        let Some((code, reason)) = producer.client().fatal_error() else {
            return;
        };
        tracing::error!(
            ?code,
            reason,
            "the relay's producer failed fatally; building a new one"
        );
        metrics::counter!("oms_outbox_producer_rebuilt_total").increment(1);
        match self.kafka.producer(&self.client_id) {
            Ok(fresh) => {
                *self
                    .producer
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
            }
            Err(error) => tracing::error!(error = %error, "could not build a new producer"),
        }
    }

    /// Publishes until `shutdown` is cancelled. Rows still pending then stay
    /// in the table and are published by the next start.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let pause = match self.try_execute().await {
                Ok(RelayOutcome::Published(n)) => {
                    failures = 0;
                    if n as u64 >= self.settings.batch_size {
                        continue;
                    }
                    None
                }
                Ok(RelayOutcome::Empty | RelayOutcome::Busy) => {
                    failures = 0;
                    None
                }
                Ok(RelayOutcome::Partial { published, failed }) => {
                    failures = failures.saturating_add(1);
                    metrics::counter!("oms_outbox_relay_retries_total").increment(1);
                    let delay = backoff(failures);
                    tracing::warn!(
                        published,
                        failed,
                        retry_in_ms = delay.as_millis() as u64,
                        "outbox relay round published only part of its rows"
                    );
                    Some(delay)
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    metrics::counter!("oms_outbox_relay_retries_total").increment(1);
                    let delay = backoff(failures);
                    tracing::warn!(
                        error = format!("{error:#}"),
                        retry_in_ms = delay.as_millis() as u64,
                        "outbox relay round failed"
                    );
                    Some(delay)
                }
            };
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
            self.health.progressed();
            return Ok(RelayOutcome::Busy);
        }
        let rows = Self::pending(&self.db, self.settings.batch_size).await?;
        if rows.is_empty() {
            self.health.progressed();
            return Ok(RelayOutcome::Empty);
        }
        let results = self.publish(&rows).instrument(self.send_span(&rows)).await;
        let mut acknowledged = Vec::with_capacity(rows.len());
        let mut failed = Vec::new();
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => acknowledged.push(row.id),
                Err(failure) => failed.push((row, failure)),
            }
        }
        let txn = begin_write(&self.db).await?;
        if self.settings.delete_published {
            Self::delete_published(&*txn, acknowledged.iter().copied()).await?;
        } else {
            Self::mark_published(&*txn, acknowledged.iter().copied()).await?;
        }
        let mut parked = 0;
        for (row, failure) in &failed {
            // Only an error about the record itself counts against it: with
            // one broker or one partition's leader away, the rows of the
            // other partitions go out while these time out, through no fault
            // of their own (a partial outage, however long, sets none aside).
            let counts = failure.own;
            if Self::record_failure(&*txn, row, failure, counts, self.settings.max_attempts).await?
            {
                parked += 1;
                tracing::error!(
                    outbox_id = row.id,
                    event_id = %row.event_id,
                    topic = row.topic,
                    key = row.message_key,
                    error = failure.error,
                    "outbox row set aside after repeated failures; later rows of its key wait \
                     behind it (`oms outbox list`, `oms outbox retry`)"
                );
            }
        }
        txn.commit().await?;
        metrics::counter!("oms_outbox_published_total").increment(acknowledged.len() as u64);
        if parked > 0 {
            metrics::counter!("oms_outbox_parked_total").increment(parked);
        }
        if failed.is_empty() {
            self.health.progressed();
            return Ok(RelayOutcome::Published(acknowledged.len()));
        }
        self.rebuild_producer_if_fatal();
        let first = &failed[0].1.error;
        if acknowledged.is_empty() {
            anyhow::bail!("no row of the round was published: {first}");
        }
        tracing::warn!(error = first, "some outbox rows were not published");
        Ok(RelayOutcome::Partial {
            published: acknowledged.len(),
            failed: failed.len(),
        })
    }

    /// The span of one round's publication, by OpenTelemetry's messaging
    /// conventions for a batch sent to several topics: `send`, kind
    /// producer, linked to the span that wrote each row (the records'
    /// `traceparent` still names the writer, so consumers join its trace).
    fn send_span(&self, rows: &[outbox_message::Model]) -> tracing::Span {
        let span = tracing::info_span!(
            "publish_outbox",
            otel.name = "send",
            otel.kind = "producer",
            messaging.system = "kafka",
            messaging.operation.type = "send",
            messaging.operation.name = "send",
            messaging.batch.message_count = rows.len(),
            messaging.client.id = %self.client_id,
        );
        for row in rows {
            let written_by = TraceContext {
                traceparent: row.traceparent.clone(),
                tracestate: row.tracestate.clone(),
            };
            if let Some(context) = written_by.span_context() {
                span.add_link(context);
            }
        }
        span
    }

    /// Counts a failed attempt of `row` (when `counts`), keeps its error,
    /// and sets it aside once it reached `max_attempts`. Returns whether it
    /// was set aside now.
    async fn record_failure<C: ConnectionTrait>(
        conn: &C,
        row: &outbox_message::Model,
        failure: &RowFailure,
        counts: bool,
        max_attempts: i32,
    ) -> Result<bool, DbErr> {
        let attempts = row.attempts + i32::from(counts);
        let park = attempts >= max_attempts;
        let error: String = failure.error.chars().take(1000).collect();
        outbox_message::Entity::update_many()
            .col_expr(outbox_message::Column::Attempts, Expr::value(attempts))
            .col_expr(outbox_message::Column::LastError, Expr::value(error))
            .col_expr(
                outbox_message::Column::ParkedAt,
                Expr::value(park.then(Utc::now)),
            )
            .filter(outbox_message::Column::Id.eq(row.id))
            .exec(conn)
            .await?;
        Ok(park)
    }

    /// The oldest unpublished rows, in publication order, but for those
    /// that wait behind a row of their key set aside.
    ///
    /// Set-aside rows are rare, so the relay asks first whether there are
    /// any, and only then filters the rows behind them: PostgreSQL planned
    /// the one statement that did both as a loop over every pending row
    /// for each pending row, 6.5 ms a round at 140 rows (`EXPLAIN
    /// ANALYZE` during `oms bench --rate 600`).
    ///
    /// # Errors
    /// The database error.
    pub async fn pending<C: ConnectionTrait>(
        conn: &C,
        limit: u64,
    ) -> Result<Vec<outbox_message::Model>, DbErr> {
        let any_parked = outbox_message::Entity::find()
            .select_only()
            .column(outbox_message::Column::Id)
            .filter(outbox_message::Column::PublishedAt.is_null())
            .filter(outbox_message::Column::ParkedAt.is_not_null())
            .limit(1)
            .into_tuple::<i64>()
            .one(conn)
            .await?
            .is_some();
        let mut pending = outbox_message::Entity::find()
            .filter(outbox_message::Column::PublishedAt.is_null())
            .filter(outbox_message::Column::ParkedAt.is_null());
        if any_parked {
            pending = pending.filter(Expr::cust(
                "NOT EXISTS (SELECT 1 FROM outbox_messages AS parked \
                 WHERE parked.parked_at IS NOT NULL AND parked.published_at IS NULL \
                 AND parked.message_key = outbox_messages.message_key \
                 AND parked.id < outbox_messages.id)",
            ));
        }
        pending
            .order_by_asc(outbox_message::Column::Id)
            .limit(limit)
            .all(conn)
            .await
    }

    /// The rows set aside, oldest first.
    ///
    /// # Errors
    /// The database error.
    pub async fn parked<C: ConnectionTrait>(conn: &C) -> Result<Vec<outbox_message::Model>, DbErr> {
        outbox_message::Entity::find()
            .filter(outbox_message::Column::PublishedAt.is_null())
            .filter(outbox_message::Column::ParkedAt.is_not_null())
            .order_by_asc(outbox_message::Column::Id)
            .all(conn)
            .await
    }

    /// Puts set-aside rows back in line (all, or those with `ids`), with
    /// their attempts reset; returns how many. The relay publishes them,
    /// and the rows of their keys that waited behind them, in id order.
    ///
    /// # Errors
    /// The database error.
    pub async fn retry_parked<C: ConnectionTrait>(
        conn: &C,
        ids: Option<&[i64]>,
    ) -> Result<u64, DbErr> {
        let update = || {
            outbox_message::Entity::update_many()
                .col_expr(
                    outbox_message::Column::ParkedAt,
                    Expr::value(Option::<chrono::DateTime<Utc>>::None),
                )
                .col_expr(outbox_message::Column::Attempts, Expr::value(0))
                .filter(outbox_message::Column::PublishedAt.is_null())
                .filter(outbox_message::Column::ParkedAt.is_not_null())
        };
        let Some(ids) = ids else {
            return Ok(update().exec(conn).await?.rows_affected);
        };
        let mut retried = 0;
        for chunk in key_chunks(ids) {
            retried += update()
                .filter(outbox_message::Column::Id.is_in(chunk.iter().copied()))
                .exec(conn)
                .await?
                .rows_affected;
        }
        Ok(retried)
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

    /// Sends `rows` to the broker, in order, and waits for every answer;
    /// returns each row's result, in the same order. Does not mark them:
    /// that is the caller's next step. When a row cannot even be queued,
    /// the later rows of its key are not sent this round (per-key order).
    pub async fn publish(&self, rows: &[outbox_message::Model]) -> Vec<Result<(), RowFailure>> {
        let producer = self.producer();
        let mut refused_keys = std::collections::HashSet::new();
        let mut deliveries = Vec::with_capacity(rows.len());
        for row in rows {
            if refused_keys.contains(row.message_key.as_str()) {
                deliveries.push(Err(RowFailure {
                    error: "an earlier row of its key was not sent".into(),
                    own: false,
                }));
                continue;
            }
            let sent = self.send(&producer, row);
            if sent.is_err() {
                refused_keys.insert(row.message_key.as_str());
            }
            deliveries.push(sent);
        }
        join_all(deliveries.into_iter().map(|delivery| async move {
            match delivery {
                Err(failure) => Err(failure),
                Ok(delivery) => match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((error, _))) => Err(RowFailure {
                        own: is_row_specific(&error),
                        error: format!("the broker did not take it: {error}"),
                    }),
                    Err(_) => Err(RowFailure {
                        error: "its delivery was cancelled".into(),
                        own: false,
                    }),
                },
            }
        }))
        .await
    }

    fn send(
        &self,
        producer: &FutureProducer,
        row: &outbox_message::Model,
    ) -> Result<rdkafka::producer::DeliveryFuture, RowFailure> {
        let topic = self.topic_name(&row.topic).map_err(|error| RowFailure {
            error: format!("{error:#}"),
            own: true,
        })?;
        let cloud_event = Attributes::of_record(row.payload.as_bytes(), &row.message_key);
        if cloud_event.is_none() {
            // Rows are written from envelopes only; one that is not is
            // still published, as it is, for its consumers to dead-letter.
            tracing::warn!(
                outbox_id = row.id,
                "outbox row holds no event envelope; published without CloudEvents headers"
            );
        }
        let record_headers = record_headers(
            &row.event_type,
            u32::try_from(row.schema_version).unwrap_or_default(),
            cloud_event.as_ref(),
            &TraceContext {
                traceparent: row.traceparent.clone(),
                tracestate: row.tracestate.clone(),
            },
        );
        let record = FutureRecord::to(&topic)
            .key(row.message_key.as_str())
            .payload(row.payload.as_str())
            .headers(record_headers);
        producer
            .send_result(record)
            .map_err(|(error, _)| RowFailure {
                own: is_row_specific(&error),
                error: format!("could not queue it: {error}"),
            })
    }

    /// Marks rows published.
    ///
    /// # Errors
    /// The database error.
    pub async fn mark_published<C: ConnectionTrait>(
        conn: &C,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<(), DbErr> {
        let ids: Vec<i64> = ids.into_iter().collect();
        let now = Utc::now();
        for chunk in key_chunks(&ids) {
            outbox_message::Entity::update_many()
                .col_expr(outbox_message::Column::PublishedAt, Expr::value(now))
                .filter(outbox_message::Column::Id.is_in(chunk.iter().copied()))
                .exec(conn)
                .await?;
        }
        Ok(())
    }

    /// Deletes published rows.
    ///
    /// # Errors
    /// The database error.
    pub async fn delete_published<C: ConnectionTrait>(
        conn: &C,
        ids: impl IntoIterator<Item = i64>,
    ) -> Result<(), DbErr> {
        let ids: Vec<i64> = ids.into_iter().collect();
        for chunk in key_chunks(&ids) {
            outbox_message::Entity::delete_many()
                .filter(outbox_message::Column::Id.is_in(chunk.iter().copied()))
                .exec(conn)
                .await?;
        }
        Ok(())
    }

    fn topic_name(&self, logical: &str) -> anyhow::Result<String> {
        Topic::ALL
            .into_iter()
            .find(|t| t.base_name() == logical)
            .map(|t| self.topics.name(t))
            .ok_or_else(|| anyhow::anyhow!("outbox row names unknown topic {logical:?}"))
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

/// The headers of an event record, as the relay sends them: its type, its
/// schema version, its CloudEvents attributes (binary mode, see
/// [`events::cloudevents`]) and, when it has one, its trace context. Tests
/// that publish records use the same function.
pub fn record_headers(
    event_type: &str,
    schema_version: u32,
    cloud_event: Option<&Attributes>,
    trace: &TraceContext,
) -> OwnedHeaders {
    let version = schema_version.to_string();
    let mut record_headers = OwnedHeaders::new_with_capacity(12)
        .insert(Header {
            key: headers::EVENT_TYPE,
            value: Some(event_type),
        })
        .insert(Header {
            key: headers::SCHEMA_VERSION,
            value: Some(version.as_str()),
        });
    for (key, value) in cloud_event
        .iter()
        .flat_map(|attributes| attributes.headers())
    {
        record_headers = record_headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    if let Some(traceparent) = &trace.traceparent {
        record_headers = record_headers.insert(Header {
            key: headers::TRACEPARENT,
            value: Some(traceparent.as_str()),
        });
    }
    if let Some(tracestate) = &trace.tracestate {
        record_headers = record_headers.insert(Header {
            key: headers::TRACESTATE,
            value: Some(tracestate.as_str()),
        });
    }
    record_headers
}
