//! The batched, at-least-once event consumer with inbox de-duplication and
//! dead letters.
//!
//! ## Guarantees
//! - **At-least-once delivery**: a record's offset is stored (and later
//!   committed) only after the database transaction that applied it has
//!   committed, or after it was written to the dead-letter topic. A crash
//!   anywhere before that re-delivers the record.
//! - **Effectively-once effects**: duplicates from the outbox relay, from a
//!   rebalance or from an operator's replay change nothing. With
//!   [`ConsumerSettings::deduplicate`] the handler's writes and the
//!   record's `event_id` in `inbox_messages` commit in one transaction, and
//!   an id that is already there is skipped. Without it the handler itself
//!   decides every event by the state it keeps (the saga and its
//!   participants, whose records of an order every later event finds, and
//!   the projections, which never go back in time), and no inbox row is
//!   written.
//! - **Per-key order**: a batch holds records in the order the partitions
//!   delivered them; the handler applies them in that order, in memory,
//!   between one set-based load and one set-based save, in one transaction
//!   (see [`EventHandler`]).
//! - **Dead letters**: a record that is not JSON, not an envelope, of an
//!   unknown type or version, breaks its JSON Schema, arrived on a topic
//!   other than its type's (`WRONG_TOPIC`: a participant's reply is
//!   believed only from that participant's topic), or that the handler
//!   rejects with [`HandlerError::Permanent`] is written to `<topic>.dlq`
//!   with its original key, value and headers plus `dlq.*` headers naming
//!   the original topic, partition, offset, consumer group, error code,
//!   error and time. The records after it keep flowing. A record larger
//!   than [`ConsumerSettings::max_record_bytes`] (the broker checks only
//!   the compressed size) is dead-lettered with `RECORD_TOO_LARGE`, and a
//!   dead letter that would not fit leaves out the original's value and
//!   headers and names its size (`dlq.original_bytes`) and coordinates:
//!   no record is too big to set aside.
//! - **Permanent errors are dead-lettered, transient ones retried.** A
//!   database error is permanent when the data breaks one of the
//!   database's rules ([`is_permanent`]:
//!   data exceptions, constraint violations, undecodable values, our own
//!   refusals); the batch is then applied one record at a time, and the
//!   record that the database refuses twice on its own is dead-lettered
//!   with `DATABASE_REJECTED` and the database's message. When the
//!   database or broker is unavailable, or a transaction lost a race
//!   (serialization failure, deadlock, a lock wait, a key another
//!   instance took), the batch is rolled back and retried with exponential
//!   back-off until it succeeds or the consumer is shut down. Every retry
//!   is counted
//!   (`oms_consumer_batch_retries_total{messaging_consumer_group_name}`),
//!   and a batch that takes longer than [`ConsumerSettings::stall_after`]
//!   makes [`ConsumerHealth::stalled`] (and so `/readyz`) name the group.
//!
//! ## Telemetry
//! Each record is handled in a span that follows OpenTelemetry's messaging
//! conventions (`process <topic>`, kind consumer, `messaging.system`,
//! `messaging.destination.name`, `messaging.destination.partition.id`,
//! `messaging.kafka.offset`, `messaging.consumer.group.name`,
//! `messaging.message.id`), child of the trace context in the record's
//! headers. Metrics carry the same names as labels, dots made underscores
//! (Prometheus allows no dots): `messaging_consumer_group_name`,
//! `messaging_destination_name`, `messaging_destination_partition_id`.
//!
//! ## Batching
//! The consumer waits for one record, then takes whatever else is already
//! buffered, up to [`ConsumerSettings::max_batch`], and applies the lot in one
//! transaction with a handful of statements: one multi-row inbox insert that
//! returns the ids that are new (when the consumer keeps an inbox), the
//! handler's `load` and `save`, and one multi-row outbox insert. Under load one commit carries many events; when
//! idle, a single record is applied at once. When a handler rejects one record
//! permanently, the transaction is rolled back and the batch re-applied
//! without it, so one poison record costs one extra round, not a savepoint
//! per record; only a database refusal, which names no record, costs one
//! round per record of its batch.
//!
//! Records whose `event_type` header names a type the handler does not
//! want are skipped before they are decoded; a record without the header
//! is decoded (and dead-lettered if it is not a valid event).
//!
//! The consumer uses the classic consumer-group protocol.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use sea_orm::ActiveValue::Set;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, TryInsertResult};
use tokio_util::sync::CancellationToken;

use super::database::{begin_write, is_permanent, statement_chunks};
use super::handler::{Emitter, EventHandler, HandlerError, ReceivedRecord};
use super::kafka::KafkaSettings;
use super::outbox::{Outbox, backoff};
use super::storage::inbox_message;
use super::trace::TraceContext;
use super::validation;
use events::envelope::Envelope;
use events::topics::{Topic, headers};

/// Which group a consumer joins, what it reads, and how it batches.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Kafka consumer group id.
    pub group_id: String,
    /// Name under which processed events are recorded in the inbox.
    pub inbox_name: String,
    /// Logical topics to subscribe to.
    pub topics: Vec<Topic>,
    /// Most records applied in one transaction (default 200).
    pub max_batch: usize,
    /// Record each event in the inbox and skip those already there (default
    /// true). Turn it off only for a handler that is idempotent by the state
    /// it keeps: a projection (an upsert that never goes back in time; then
    /// replaying the topic rebuilds it, which the inbox would prevent), or a
    /// handler whose records of an aggregate every later event finds, such
    /// as the saga's participants (then the inbox row would only repeat that
    /// record, at a write per event).
    pub deduplicate: bool,
    /// Apply only records an operator re-drove (those with an
    /// `oms.replayed_at` header, from `oms replay --copy-to` or `oms dlq
    /// redrive`) and skip live traffic (default false): for projections that
    /// the hot path writes itself and that exist only to be rebuilt.
    /// Such a consumer fetches at most once a second (or per MiB), so a
    /// re-driven record is applied within about a second.
    pub replayed_only: bool,
    /// The largest record (key, value and headers) the consumer accepts
    /// (default [`MAX_RECORD_BYTES`]); a larger one is dead-lettered with
    /// `RECORD_TOO_LARGE`, its value left out.
    pub max_record_bytes: usize,
    /// How long one batch may take, retries included, before
    /// [`ConsumerHealth::stalled`] reports the consumer stuck (default 60 s).
    pub stall_after: Duration,
}

/// The largest record a consumer accepts by default: librdkafka's default
/// `message.max.bytes`, so that a dead letter of an accepted record always
/// fits. The broker checks the compressed size only, so a record that
/// decompresses to more can arrive.
pub const MAX_RECORD_BYTES: usize = 1_000_000;

/// Room kept in a dead letter for its `dlq.*` headers and the protocol's
/// own overhead.
const DEAD_LETTER_OVERHEAD: usize = 16 * 1024;

impl ConsumerSettings {
    /// Settings for `group_id` reading `topics`; the inbox name is the group id.
    pub fn new(group_id: impl Into<String>, topics: &[Topic]) -> Self {
        let group_id = group_id.into();
        Self {
            inbox_name: group_id.clone(),
            group_id,
            topics: topics.to_vec(),
            max_batch: 200,
            deduplicate: true,
            replayed_only: false,
            max_record_bytes: MAX_RECORD_BYTES,
            stall_after: Duration::from_secs(60),
        }
    }
}

/// Whether a consumer gets through its batches, for readiness; cheap to
/// clone. A batch that takes longer than
/// [`ConsumerSettings::stall_after`], retries included (the database or
/// broker away, a lock held elsewhere), makes [`stalled`](Self::stalled)
/// name the consumer's group until the batch is done.
#[derive(Debug, Clone)]
pub struct ConsumerHealth {
    group: String,
    stall_after: Duration,
    batch_started: Arc<Mutex<Option<Instant>>>,
}

impl ConsumerHealth {
    fn new(group: String, stall_after: Duration) -> Self {
        Self {
            group,
            stall_after,
            batch_started: Arc::default(),
        }
    }

    fn batch_started(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.batch_started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// `None` while batches get done; otherwise why not.
    pub fn stalled(&self) -> Option<String> {
        let started = (*self.batch_started())?;
        let taken = started.elapsed();
        (taken > self.stall_after).then(|| {
            format!(
                "consumer group {} has worked on one batch for {} s",
                self.group,
                taken.as_secs()
            )
        })
    }
}

/// Publishes consumer lag per partition from librdkafka's statistics
/// (`oms_consumer_lag`, labelled with the OpenTelemetry messaging attribute
/// names, dots made underscores).
struct LagReporter {
    group: String,
}

impl ClientContext for LagReporter {
    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in statistics.topics {
            for (partition, p) in stats.partitions {
                if partition < 0 {
                    continue;
                }
                // A partition this instance does not consume (never had, or
                // lost in a rebalance) reports -1: it owes nothing there, and
                // a stale figure would outlive the rebalance (dashboards
                // take the max over instances).
                metrics::gauge!(
                    "oms_consumer_lag",
                    "messaging_consumer_group_name" => self.group.clone(),
                    "messaging_destination_name" => topic.clone(),
                    "messaging_destination_partition_id" => partition.to_string()
                )
                .set(p.consumer_lag.max(0) as f64);
            }
        }
    }
}

impl ConsumerContext for LagReporter {}

/// A record that could not be applied, and why.
struct Rejection {
    code: &'static str,
    reason: String,
}

enum BatchFailure {
    /// The handler refused the record at `index`.
    Refused {
        index: usize,
        error: anyhow::Error,
    },
    /// A statement of the batch broke a rule of the database; which record
    /// caused it is found by applying the records one at a time.
    Permanent(anyhow::Error),
    Transient(anyhow::Error),
}

impl From<DbErr> for BatchFailure {
    fn from(error: DbErr) -> Self {
        if is_permanent(&error) {
            Self::Permanent(error.into())
        } else {
            Self::Transient(error.into())
        }
    }
}

/// Signals that shutdown interrupted a batch; its offsets were not stored.
struct Interrupted;

/// Consumes events and applies them with a handler. See the [module docs](self).
pub struct EventConsumer<H> {
    consumer: StreamConsumer<LagReporter>,
    dead_letters: FutureProducer,
    db: DatabaseConnection,
    outbox: Outbox,
    handler: H,
    settings: ConsumerSettings,
    kafka: KafkaSettings,
    health: ConsumerHealth,
}

impl<H: EventHandler> EventConsumer<H> {
    /// Joins the group and subscribes. Records are read from the earliest
    /// offset when the group has none committed.
    ///
    /// # Errors
    /// When the client cannot be created or the subscription is refused.
    pub fn new(
        db: DatabaseConnection,
        kafka: &KafkaSettings,
        outbox: Outbox,
        settings: ConsumerSettings,
        handler: H,
    ) -> anyhow::Result<Self> {
        let client_id = format!("{}-{}", outbox.producer(), settings.group_id);
        let mut config = kafka.client_config(&client_id);
        if settings.replayed_only {
            // It skips all live traffic: one fetch a second (or per MiB)
            // instead of one per relay round, as a rebuild is not in a hurry.
            config
                .set("fetch.wait.max.ms", "1000")
                .set("fetch.min.bytes", "1048576");
        }
        let consumer: StreamConsumer<LagReporter> = config
            .set("group.id", &settings.group_id)
            .set("group.protocol", "classic")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("statistics.interval.ms", "5000")
            // librdkafka prefetches up to 64 MiB per consumer by default: a
            // lagging service would hold that much per group. 16 MiB is
            // still thousands of batches.
            .set("queued.max.messages.kbytes", "16384")
            .create_with_context(LagReporter {
                group: settings.group_id.clone(),
            })?;
        let names: Vec<String> = settings
            .topics
            .iter()
            .map(|t| kafka.topics.name(*t))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        consumer.subscribe(&names)?;
        Ok(Self {
            consumer,
            dead_letters: kafka.producer(&format!("{client_id}-dlq"))?,
            db,
            outbox,
            handler,
            health: ConsumerHealth::new(settings.group_id.clone(), settings.stall_after),
            settings,
            kafka: kafka.clone(),
        })
    }

    /// Whether this consumer gets through its batches (for readiness).
    pub fn health(&self) -> ConsumerHealth {
        self.health.clone()
    }

    /// Consumes until `shutdown` is cancelled, then commits the stored
    /// offsets and leaves the group. A batch interrupted by shutdown is not
    /// committed and will be delivered again.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        let group = self.settings.group_id.clone();
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = self.consumer.recv() => received,
            };
            let mut batch = Vec::with_capacity(self.settings.max_batch);
            match first {
                Ok(message) => batch.push(message.detach()),
                Err(error) => {
                    tracing::warn!(group, error = %error, "consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
            while batch.len() < self.settings.max_batch {
                match self.consumer.recv().now_or_never() {
                    Some(Ok(message)) => batch.push(message.detach()),
                    Some(Err(error)) => {
                        tracing::warn!(group, error = %error, "consumer error");
                        break;
                    }
                    None => break,
                }
            }
            *self.health.batch_started() = Some(Instant::now());
            let processed = self.process_batch(&batch, &shutdown).await;
            *self.health.batch_started() = None;
            if processed.is_err() {
                break;
            }
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => tracing::warn!(group, error = %error, "final offset commit failed"),
        }
        self.consumer.unsubscribe();
        tracing::info!(group, "consumer stopped");
    }

    async fn process_batch(
        &self,
        batch: &[OwnedMessage],
        shutdown: &CancellationToken,
    ) -> Result<(), Interrupted> {
        let records: Vec<ReceivedRecord> = batch
            .iter()
            .map(|m| ReceivedRecord {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
            })
            .collect();
        let mut rejections: BTreeMap<usize, Rejection> = BTreeMap::new();
        let decoded: Vec<Option<Envelope>> = batch
            .iter()
            .enumerate()
            .map(|(index, message)| {
                let unwanted = header_value(message, headers::EVENT_TYPE)
                    .is_some_and(|event_type| !self.handler.wants(event_type));
                let live = self.settings.replayed_only
                    && header_value(message, headers::REPLAYED_AT).is_none();
                if unwanted || live {
                    return None;
                }
                let size = record_size(message);
                if size > self.settings.max_record_bytes {
                    rejections.insert(
                        index,
                        Rejection {
                            code: "RECORD_TOO_LARGE",
                            reason: format!(
                                "the record holds {size} bytes; at most {} are accepted",
                                self.settings.max_record_bytes
                            ),
                        },
                    );
                    return None;
                }
                let decoded = validation::decode(message.payload())
                    .map_err(|error| Rejection {
                        code: error.code(),
                        reason: error.to_string(),
                    })
                    .and_then(|envelope| self.on_its_own_topic(message, envelope));
                decoded
                    .map_err(|rejection| {
                        rejections.insert(index, rejection);
                    })
                    .ok()
            })
            .collect();
        let emitted = self
            .apply_isolating_failures(&records, batch, &decoded, &mut rejections, shutdown)
            .await?;
        if emitted > 0 {
            self.outbox.waker().wake();
        }
        for (&index, rejection) in &rejections {
            let mut failures = 0u32;
            while let Err(error) = self.dead_letter(&batch[index], rejection).await {
                failures = failures.saturating_add(1);
                let delay = backoff(failures);
                metrics::counter!("oms_consumer_batch_retries_total", "messaging_consumer_group_name" => self.settings.group_id.clone())
                    .increment(1);
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not write dead letter; retrying"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return Err(Interrupted),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
        self.store_offsets(&records);
        Ok(())
    }

    /// `envelope` if its record came from the topic its type is published
    /// to: a reply is believed only from its participant's topic, so a
    /// record forged onto another topic (say a CreditReserved on the
    /// inventory topic) is set aside with `WRONG_TOPIC`.
    fn on_its_own_topic(
        &self,
        message: &OwnedMessage,
        envelope: Envelope,
    ) -> Result<Envelope, Rejection> {
        let own = envelope.event.topic();
        match self.kafka.topics.parse(message.topic()) {
            Some(arrived_on) if arrived_on != own => Err(Rejection {
                code: "WRONG_TOPIC",
                reason: format!(
                    "{} is published on {}, not on {}",
                    envelope.event.event_type(),
                    self.kafka.topics.name(own),
                    message.topic()
                ),
            }),
            _ => Ok(envelope),
        }
    }

    /// Applies the wanted records of the batch, all in one transaction while
    /// that succeeds. A record the handler refuses is set aside and the rest
    /// applied again. When a statement breaks a rule of the database, the
    /// records are applied one at a time, in order (so per-key order holds),
    /// and one that fails that way twice on its own is set aside with
    /// `DATABASE_REJECTED`. Transient failures are retried with back-off.
    /// Returns how many events the handler emitted.
    async fn apply_isolating_failures(
        &self,
        records: &[ReceivedRecord],
        batch: &[OwnedMessage],
        decoded: &[Option<Envelope>],
        rejections: &mut BTreeMap<usize, Rejection>,
        shutdown: &CancellationToken,
    ) -> Result<usize, Interrupted> {
        let wanted: Vec<usize> = decoded
            .iter()
            .enumerate()
            .filter(|(index, envelope)| {
                envelope
                    .as_ref()
                    .is_some_and(|e| self.handler.wants(e.event.event_type()))
                    && !rejections.contains_key(index)
            })
            .map(|(index, _)| index)
            .collect();
        let mut groups = std::collections::VecDeque::from([wanted]);
        let mut strikes: HashMap<usize, u32> = HashMap::new();
        let mut failures = 0u32;
        let mut emitted = 0;
        while let Some(group) = groups.front_mut() {
            let error = match self.apply(records, batch, decoded, group).await {
                Ok(n) => {
                    emitted += n;
                    groups.pop_front();
                    failures = 0;
                    continue;
                }
                Err(BatchFailure::Refused { index, error }) => {
                    self.set_aside(records, index, "HANDLER_REJECTED", &error, rejections);
                    group.retain(|&i| i != index);
                    continue;
                }
                Err(BatchFailure::Permanent(error)) if group.len() > 1 => {
                    tracing::warn!(
                        group = self.settings.group_id,
                        records = group.len(),
                        error = format!("{error:#}"),
                        "the database refused a batch; applying its records one at a time"
                    );
                    let singles: Vec<Vec<usize>> = group.iter().map(|&i| vec![i]).collect();
                    groups.pop_front();
                    for single in singles.into_iter().rev() {
                        groups.push_front(single);
                    }
                    continue;
                }
                Err(BatchFailure::Permanent(error)) => {
                    let index = group[0];
                    let strike = strikes.entry(index).or_default();
                    *strike += 1;
                    if *strike >= 2 {
                        self.set_aside(records, index, "DATABASE_REJECTED", &error, rejections);
                        groups.pop_front();
                        continue;
                    }
                    error
                }
                Err(BatchFailure::Transient(error)) => error,
            };
            failures = failures.saturating_add(1);
            let delay = backoff(failures);
            metrics::counter!("oms_consumer_batch_retries_total", "messaging_consumer_group_name" => self.settings.group_id.clone())
                .increment(1);
            tracing::warn!(
                group = self.settings.group_id,
                records = batch.len(),
                retry_in_ms = delay.as_millis() as u64,
                error = format!("{error:#}"),
                "batch failed; retrying"
            );
            tokio::select! {
                _ = shutdown.cancelled() => return Err(Interrupted),
                _ = tokio::time::sleep(delay) => {}
            }
        }
        Ok(emitted)
    }

    fn set_aside(
        &self,
        records: &[ReceivedRecord],
        index: usize,
        code: &'static str,
        error: &anyhow::Error,
        rejections: &mut BTreeMap<usize, Rejection>,
    ) {
        tracing::warn!(
            topic = records[index].topic,
            partition = records[index].partition,
            offset = records[index].offset,
            code,
            error = format!("{error:#}"),
            "event cannot be applied; dead-lettering it"
        );
        rejections.insert(
            index,
            Rejection {
                code,
                reason: format!("{error:#}"),
            },
        );
    }

    /// Applies the records at `wanted` in one transaction; returns how many
    /// events the handler emitted.
    async fn apply(
        &self,
        records: &[ReceivedRecord],
        batch: &[OwnedMessage],
        decoded: &[Option<Envelope>],
        wanted: &[usize],
    ) -> Result<usize, BatchFailure> {
        let started = Instant::now();
        let wanted = wanted.to_vec();
        let wanted_count = wanted.len();
        if wanted.is_empty() {
            // Nothing for this handler (skipped or dead letters): no transaction.
            return Ok(0);
        }
        let mut phases = Phases::start(&self.settings.group_id);
        let txn = begin_write(&self.db).await?;
        phases.lap("begin");
        let fresh = if self.settings.deduplicate {
            let fresh = self
                .record_in_inbox(&txn, records, decoded, &wanted)
                .await?;
            let duplicates = wanted.len() - fresh.len();
            if duplicates > 0 {
                metrics::counter!("oms_events_duplicate_total", "messaging_consumer_group_name" => self.settings.group_id.clone())
                    .increment(duplicates as u64);
                tracing::debug!(duplicates, "duplicate events skipped");
            }
            fresh
        } else {
            wanted
        };
        let envelopes: Vec<&Envelope> = fresh
            .iter()
            .filter_map(|&index| decoded[index].as_ref())
            .collect();
        phases.lap("inbox");
        let mut state = self.handler.load(&txn, &envelopes).await?;
        phases.lap("load");
        let mut pending = Vec::new();
        let mut after_commit = Vec::new();
        for (&index, envelope) in fresh.iter().zip(&envelopes) {
            let record = &records[index];
            // OpenTelemetry's messaging conventions: a consumer span named
            // `process <topic>`, with the attributes every tracing backend
            // knows; our own ids beside them.
            let span = tracing::info_span!(
                "handle_event",
                otel.name = %format_args!("process {}", record.topic),
                otel.kind = "consumer",
                messaging.system = "kafka",
                messaging.operation.type = "process",
                messaging.operation.name = "process",
                messaging.destination.name = %record.topic,
                messaging.destination.partition.id = %record.partition,
                messaging.kafka.offset = record.offset,
                messaging.consumer.group.name = %self.settings.group_id,
                messaging.message.id = %envelope.event_id,
                event_type = envelope.event.event_type(),
                event_id = %envelope.event_id,
                correlation_id = %envelope.correlation_id,
                order_id = tracing::field::Empty,
                product_id = tracing::field::Empty,
            );
            span.record(
                envelope.event.topic().key(),
                tracing::field::display(envelope.key()),
            );
            trace_context(&batch[index]).set_as_parent_of(&span);
            let mut emitter = Emitter {
                outbox: &self.outbox,
                cause: envelope,
                pending: &mut pending,
                after_commit: &mut after_commit,
            };
            let result = span.in_scope(|| self.handler.apply(&mut state, envelope, &mut emitter));
            match result {
                Ok(()) => {}
                Err(HandlerError::Permanent(error)) => {
                    txn.rollback().await?;
                    return Err(BatchFailure::Refused { index, error });
                }
                Err(HandlerError::Transient(error)) => {
                    txn.rollback().await?;
                    return Err(BatchFailure::Transient(error));
                }
            }
        }
        phases.lap("apply");
        self.handler.save(&txn, state).await?;
        phases.lap("save");
        let emitted = pending.len();
        Outbox::enqueue_many(&*txn, pending).await?;
        phases.lap("outbox");
        txn.commit().await?;
        phases.lap("commit");
        for action in after_commit {
            action();
        }
        metrics::counter!("oms_events_processed_total", "messaging_consumer_group_name" => self.settings.group_id.clone())
            .increment(wanted_count as u64);
        metrics::histogram!("oms_batch_duration_seconds", "messaging_consumer_group_name" => self.settings.group_id.clone())
            .record(started.elapsed().as_secs_f64());
        Ok(emitted)
    }

    /// Records the `wanted` events in the inbox with one statement; returns
    /// those that were not there already (the first of any repeated id), in
    /// batch order.
    async fn record_in_inbox<C: ConnectionTrait>(
        &self,
        conn: &C,
        records: &[ReceivedRecord],
        decoded: &[Option<Envelope>],
        wanted: &[usize],
    ) -> Result<Vec<usize>, DbErr> {
        let mut first_of: HashMap<events::ids::EventId, usize> =
            HashMap::with_capacity(wanted.len());
        let mut rows = Vec::with_capacity(wanted.len());
        let now = Utc::now();
        for &index in wanted {
            let Some(envelope) = &decoded[index] else {
                continue;
            };
            if first_of.contains_key(&envelope.event_id) {
                continue;
            }
            first_of.insert(envelope.event_id, index);
            let record = &records[index];
            rows.push(inbox_message::ActiveModel {
                consumer: Set(self.settings.inbox_name.clone()),
                event_id: Set(envelope.event_id),
                topic: Set(record.topic.clone()),
                partition: Set(record.partition),
                offset: Set(record.offset),
                event_type: Set(envelope.event.event_type().to_owned()),
                processed_at: Set(now),
            });
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let mut inserted = Vec::with_capacity(rows.len());
        for chunk in statement_chunks::<inbox_message::Entity, _>(rows) {
            match inbox_message::Entity::insert_many(chunk)
                .on_conflict_do_nothing_on([
                    inbox_message::Column::Consumer,
                    inbox_message::Column::EventId,
                ])
                .exec_with_returning_keys(conn)
                .await?
            {
                TryInsertResult::Inserted(keys) => inserted.extend(keys),
                TryInsertResult::Conflicted | TryInsertResult::Empty => {}
            }
        }
        let mut fresh: Vec<usize> = inserted
            .iter()
            .filter_map(|(_, id)| first_of.get(id).copied())
            .collect();
        fresh.sort_unstable();
        Ok(fresh)
    }

    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        rejection: &Rejection,
    ) -> anyhow::Result<()> {
        let original = message.topic();
        let dlq_topic = self
            .kafka
            .topics
            .parse(original)
            .map(|t| self.kafka.topics.dead_letter(t))
            .unwrap_or_else(|| format!("{original}{}", events::topics::DEAD_LETTER_SUFFIX));
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let failed_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let size = record_size(message);
        let copied = size + rejection.reason.len() + DEAD_LETTER_OVERHEAD
            <= self.settings.max_record_bytes.max(MAX_RECORD_BYTES);
        let size_text = size.to_string();
        let mut dlq_headers = OwnedHeaders::new();
        if !copied {
            dlq_headers = dlq_headers.insert(Header {
                key: headers::DLQ_ORIGINAL_BYTES,
                value: Some(size_text.as_str()),
            });
        }
        if let Some(original_headers) = message.headers().filter(|_| copied) {
            for header in original_headers
                .iter()
                .filter(|h| !h.key.starts_with("dlq."))
            {
                dlq_headers = dlq_headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
        for (key, value) in [
            (headers::DLQ_ORIGINAL_TOPIC, original),
            (headers::DLQ_ORIGINAL_PARTITION, partition.as_str()),
            (headers::DLQ_ORIGINAL_OFFSET, offset.as_str()),
            (headers::DLQ_CONSUMER_GROUP, self.settings.group_id.as_str()),
            (headers::DLQ_ERROR_CODE, rejection.code),
            (headers::DLQ_ERROR, rejection.reason.as_str()),
            (headers::DLQ_FAILED_AT, failed_at.as_str()),
        ] {
            dlq_headers = dlq_headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> =
            FutureRecord::to(&dlq_topic).headers(dlq_headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload().filter(|_| copied) {
            record = record.payload(payload);
        }
        self.dead_letters
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(error, _)| anyhow::anyhow!("could not write to {dlq_topic}: {error}"))?;
        metrics::counter!(
            "oms_dead_letters_total",
            "messaging_destination_name" => original.to_owned(),
            "messaging_consumer_group_name" => self.settings.group_id.clone(),
            "error_type" => rejection.code
        )
        .increment(1);
        tracing::warn!(
            topic = original,
            partition = message.partition(),
            offset = message.offset(),
            dlq_topic,
            code = rejection.code,
            reason = rejection.reason,
            "record dead-lettered"
        );
        Ok(())
    }

    fn store_offsets(&self, records: &[ReceivedRecord]) {
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for record in records {
            let entry = next
                .entry((record.topic.as_str(), record.partition))
                .or_insert(0);
            *entry = (*entry).max(record.offset + 1);
        }
        let mut list = TopicPartitionList::with_capacity(next.len());
        for ((topic, partition), offset) in next {
            if let Err(error) = list.add_partition_offset(topic, partition, Offset::Offset(offset))
            {
                tracing::warn!(error = %error, "invalid offset");
            }
        }
        // Fails only for partitions revoked meanwhile: their new owner
        // re-delivers the records, and the inbox or the handler's state
        // absorbs the duplicates.
        if let Err(error) = self.consumer.store_offsets(&list) {
            tracing::debug!(error = %error, "could not store offsets");
        }
    }
}

/// Times the phases of a batch
/// (`oms_batch_phase_seconds{messaging_consumer_group_name, phase}`),
/// so that an operator sees where a slow batch spends its time.
struct Phases<'a> {
    group: &'a str,
    since: Instant,
}

impl<'a> Phases<'a> {
    fn start(group: &'a str) -> Self {
        Self {
            group,
            since: Instant::now(),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        metrics::histogram!("oms_batch_phase_seconds", "messaging_consumer_group_name" => self.group.to_owned(), "phase" => phase)
            .record((now - self.since).as_secs_f64());
        self.since = now;
    }
}

/// A header's value, when it is present and UTF-8.
fn header_value<'a>(message: &'a OwnedMessage, key: &str) -> Option<&'a str> {
    message
        .headers()?
        .iter()
        .find(|header| header.key == key)
        .and_then(|header| header.value)
        .and_then(|value| std::str::from_utf8(value).ok())
}

fn trace_context(message: &OwnedMessage) -> TraceContext {
    let mut context = TraceContext::default();
    if let Some(record_headers) = message.headers() {
        for header in record_headers.iter() {
            let value = header
                .value
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_owned);
            match header.key {
                headers::TRACEPARENT => context.traceparent = value,
                headers::TRACESTATE => context.tracestate = value,
                _ => {}
            }
        }
    }
    context
}

/// The bytes a record occupies: key, value and headers.
fn record_size(message: &OwnedMessage) -> usize {
    let headers = message.headers().map_or(0, |headers| {
        headers
            .iter()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
            .sum()
    });
    message.key().map_or(0, <[u8]>::len) + message.payload().map_or(0, <[u8]>::len) + headers
}
