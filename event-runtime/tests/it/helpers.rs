//! Test support for the plumbing tests: a database with the plumbing tables
//! and an `applied_events` table, topics under a fresh prefix on the real
//! broker, a recording handler, and helpers that read Kafka directly.

use std::future::Future;
use std::time::Duration;

use event_runtime::{
    ConsumerSettings, Emitter, EventConsumer, EventHandler, HandlerError, KafkaSettings, Outbox,
    OutboxRelay, PlumbingMigration, RelaySettings, ensure_topics, later_migrations,
};
use events::{Envelope, Event, Topic, TopicNames};
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use sea_orm::{
    ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr, Statement,
};
use sea_orm_migration::prelude::*;
use testkit::{Backend, TestDatabase};
use tokio_util::sync::CancellationToken;

struct TestMigrator;

impl MigratorTrait for TestMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations: Vec<Box<dyn MigrationTrait>> = vec![Box::new(PlumbingMigration)];
        migrations.extend(later_migrations());
        migrations
    }
}

/// A phrase that `applied_events` refuses with a CHECK constraint: an
/// event carrying it passes every rule of the consumer and the handler,
/// and breaks one of the database's.
pub const REFUSED_BY_THE_DATABASE: &str = "refused by the database";

/// One test's world: its own database and topic prefix on the shared broker.
pub struct Harness {
    pub db: DatabaseConnection,
    pub kafka: KafkaSettings,
    pub outbox: Outbox,
    pub database: TestDatabase,
    pub shutdown: CancellationToken,
}

pub async fn harness(backend: Backend) -> Harness {
    testkit::init_tracing();
    let bootstrap = testkit::kafka_bootstrap().await.to_owned();
    let database = TestDatabase::create_on(backend).await;
    let db = Database::connect(&database.url).await.unwrap();
    TestMigrator::up(&db, None).await.unwrap();
    let sequence = match backend {
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    db.execute_unprepared(&format!(
        "CREATE TABLE applied_events (
             seq {sequence},
             event_id UUID NOT NULL,
             event_type TEXT NOT NULL,
             payload TEXT NOT NULL CHECK (payload NOT LIKE '%{REFUSED_BY_THE_DATABASE}%')
         )"
    ))
    .await
    .unwrap();
    let kafka = KafkaSettings {
        bootstrap_servers: bootstrap,
        topics: TopicNames::new(testkit::topic_prefix()),
        partitions: 3,
        replication_factor: None,
        min_insync_replicas: None,
        client_properties: Vec::new(),
    };
    ensure_topics(&kafka, &Topic::ALL).await.unwrap();
    Harness {
        db,
        kafka,
        outbox: Outbox::new("plumbing-test"),
        database,
        shutdown: CancellationToken::new(),
    }
}

impl Harness {
    /// Starts the outbox relay in the background.
    pub fn spawn_relay(&self) -> tokio::task::JoinHandle<()> {
        let relay = OutboxRelay::new(
            self.db.clone(),
            &self.kafka,
            &self.outbox,
            RelaySettings::default(),
        )
        .unwrap();
        tokio::spawn(relay.run_until_stopped(self.shutdown.clone()))
    }

    /// Starts a consumer of every topic with [`RecordingHandler`], in `group`,
    /// recording into the inbox as `inbox`. Returns its own stop token.
    pub fn spawn_consumer(
        &self,
        group: &str,
        inbox: &str,
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        self.spawn_consumer_on(self.db.clone(), group, inbox)
    }

    pub fn spawn_consumer_on(
        &self,
        db: DatabaseConnection,
        group: &str,
        inbox: &str,
    ) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let mut settings = ConsumerSettings::new(self.group(group), &Topic::ALL);
        settings.inbox_name = inbox.to_owned();
        let consumer = EventConsumer::new(
            db,
            &self.kafka,
            self.outbox.clone(),
            settings,
            RecordingHandler,
        )
        .unwrap();
        let stop = self.shutdown.child_token();
        (stop.clone(), tokio::spawn(consumer.run_until_stopped(stop)))
    }

    /// The broker name of a group, unique to this test.
    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.kafka.topics.prefix())
    }

    /// Writes events into the outbox in one transaction and wakes the relay.
    pub async fn enqueue(&self, events: impl IntoIterator<Item = Event>) -> Vec<Envelope> {
        let txn = event_runtime::begin_write(&self.db).await.unwrap();
        let mut written = Vec::new();
        for event in events {
            let envelope = self.outbox.envelope(event);
            self.outbox.enqueue(&txn, &envelope).await.unwrap();
            written.push(envelope);
        }
        self.outbox.commit(txn).await.unwrap();
        written
    }

    /// Rows in `applied_events`: (event_id, event_type, payload), in order.
    pub async fn applied(&self) -> Vec<(events::EventId, String, String)> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.db.get_database_backend(),
                "SELECT event_id, event_type, payload FROM applied_events ORDER BY seq",
            ))
            .await
            .unwrap();
        rows.into_iter()
            .map(|r| {
                (
                    r.try_get("", "event_id").unwrap(),
                    r.try_get("", "event_type").unwrap(),
                    r.try_get("", "payload").unwrap(),
                )
            })
            .collect()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                sql.to_owned(),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index(0).unwrap()
    }

    pub fn producer(&self) -> FutureProducer {
        self.kafka.producer("plumbing-test-raw").unwrap()
    }

    /// Produces a raw record, bypassing the outbox.
    pub async fn produce_raw(
        &self,
        producer: &FutureProducer,
        topic: Topic,
        key: &str,
        value: &[u8],
        event_type: &str,
    ) {
        let name = self.kafka.topics.name(topic);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "event_type",
                value: Some(event_type),
            })
            .insert(Header {
                key: "schema_version",
                value: Some("1"),
            });
        producer
            .send(
                FutureRecord::to(&name)
                    .key(key)
                    .payload(value)
                    .headers(headers),
                Timeout::After(Duration::from_secs(10)),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }

    /// Every record of a broker topic, read from the beginning until `count`
    /// records arrived (or 30 s passed, then the test fails).
    /// For each topic, the envelopes of `written` that belong on it and
    /// the records read from it, as many as those envelopes.
    pub async fn read_published<'a>(
        &self,
        written: &'a [Envelope],
    ) -> Vec<(Topic, Vec<&'a Envelope>, Vec<OwnedMessage>)> {
        let mut published = Vec::new();
        for topic in Topic::ALL {
            let expected: Vec<&Envelope> = written
                .iter()
                .filter(|e| e.event.topic() == topic)
                .collect();
            let records = self
                .read_topic(&self.kafka.topics.name(topic), expected.len())
                .await;
            published.push((topic, expected, records));
        }
        published
    }

    pub async fn read_topic(&self, topic_name: &str, count: usize) -> Vec<OwnedMessage> {
        let consumer: StreamConsumer = self
            .kafka
            .client_config("plumbing-test-reader")
            .set(
                "group.id",
                format!(
                    "{}reader-{}",
                    self.kafka.topics.prefix(),
                    uuid::Uuid::new_v4()
                ),
            )
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut assignment = TopicPartitionList::new();
        for partition in 0..self.kafka.partitions {
            assignment
                .add_partition_offset(topic_name, partition, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut records = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while records.len() < count {
            match tokio::time::timeout_at(deadline, consumer.recv()).await {
                Ok(Ok(message)) => records.push(message.detach()),
                Ok(Err(error)) => panic!("reading {topic_name}: {error}"),
                Err(_) => panic!(
                    "only {} of {count} records arrived on {topic_name}",
                    records.len()
                ),
            }
        }
        records
    }

    /// How many records a broker topic holds now.
    pub async fn read_topic_count(&self, topic_name: &str) -> i64 {
        let kafka = self.kafka.clone();
        let topic_name = topic_name.to_owned();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = kafka.client_config("count").create().unwrap();
            (0..kafka.partitions)
                .map(|p| {
                    let (low, high) = consumer
                        .fetch_watermarks(&topic_name, p, Duration::from_secs(5))
                        .unwrap();
                    high - low
                })
                .sum()
        })
        .await
        .unwrap()
    }

    /// Whether `group` has committed offsets at the end of every partition of
    /// every topic (it has consumed everything).
    pub async fn caught_up(&self, group: &str) -> bool {
        let group = self.group(group);
        let kafka = self.kafka.clone();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = kafka
                .client_config("lag-check")
                .set("group.id", &group)
                .create()
                .unwrap();
            let mut list = TopicPartitionList::new();
            for topic in Topic::ALL {
                for partition in 0..kafka.partitions {
                    list.add_partition(&kafka.topics.name(topic), partition);
                }
            }
            let committed = consumer
                .committed_offsets(list, Duration::from_secs(5))
                .unwrap();
            committed.elements().iter().all(|element| {
                let (_, high) = consumer
                    .fetch_watermarks(element.topic(), element.partition(), Duration::from_secs(5))
                    .unwrap();
                match element.offset() {
                    Offset::Offset(offset) => offset >= high,
                    _ => high == 0,
                }
            })
        })
        .await
        .unwrap()
    }

    /// Sets `group`'s committed offsets back to the start of every partition,
    /// as if its consumer had never stored an offset. The group must be idle.
    pub async fn rewind(&self, group: &str) {
        let group = self.group(group);
        let kafka = self.kafka.clone();
        tokio::task::spawn_blocking(move || {
            let consumer: BaseConsumer = kafka
                .client_config("rewind")
                .set("group.id", &group)
                .create()
                .unwrap();
            let mut list = TopicPartitionList::new();
            for topic in Topic::ALL {
                for partition in 0..kafka.partitions {
                    list.add_partition_offset(
                        &kafka.topics.name(topic),
                        partition,
                        Offset::Offset(0),
                    )
                    .unwrap();
                }
            }
            consumer
                .commit(&list, rdkafka::consumer::CommitMode::Sync)
                .unwrap();
        })
        .await
        .unwrap();
    }
}

/// Polls `check` every 100 ms until it is true; fails the test after `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Header value of a record as a string.
pub fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    use rdkafka::message::Headers;
    message
        .headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Records every event in `applied_events`; an `OrderRejected` whose reason
/// is `poison` is refused permanently.
pub struct RecordingHandler;

impl EventHandler for RecordingHandler {
    type Batch = Vec<Envelope>;

    async fn load(
        &self,
        _txn: &DatabaseTransaction,
        _events: &[&Envelope],
    ) -> Result<Self::Batch, DbErr> {
        Ok(Vec::new())
    }

    fn apply(
        &self,
        batch: &mut Self::Batch,
        event: &Envelope,
        _emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError> {
        if let Event::OrderRejected(rejected) = &event.event
            && rejected.reason == "poison"
        {
            return Err(HandlerError::permanent("the test handler refuses poison"));
        }
        batch.push(event.clone());
        Ok(())
    }

    async fn save(&self, txn: &DatabaseTransaction, batch: Self::Batch) -> Result<(), DbErr> {
        for event in batch {
            txn.execute_raw(Statement::from_sql_and_values(
                txn.get_database_backend(),
                "INSERT INTO applied_events (event_id, event_type, payload) VALUES ($1, $2, $3)",
                [
                    event.event_id.into(),
                    event.event.event_type().into(),
                    serde_json::to_string(&event.to_json()).unwrap().into(),
                ],
            ))
            .await?;
        }
        Ok(())
    }
}

/// A Kafka record as the CloudEvents SDK reads it in the Kafka binding's
/// binary content mode: `ce_*` headers are attributes (or extensions),
/// `content-type` is `datacontenttype`, the value is `data`. The SDK's own
/// rdkafka binding is built for rdkafka 0.38, so this is the same reader
/// over its generic deserializer API; the SDK builds and validates the
/// event (spec version, required attributes, time and URL formats).
pub struct CloudEventRecord {
    pub headers: Vec<(String, Vec<u8>)>,
    pub value: Option<Vec<u8>>,
}

impl CloudEventRecord {
    pub fn of(message: &OwnedMessage) -> Self {
        use rdkafka::message::Headers;
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .filter_map(|h| Some((h.key.to_owned(), h.value?.to_vec())))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            headers,
            value: message.payload().map(<[u8]>::to_vec),
        }
    }

    /// The event, as a CloudEvents consumer gets it.
    pub fn into_event(self) -> cloudevents::message::Result<cloudevents::Event> {
        cloudevents::message::MessageDeserializer::into_event(self)
    }
}

fn utf8(bytes: Vec<u8>) -> cloudevents::message::Result<String> {
    String::from_utf8(bytes).map_err(|e| cloudevents::message::Error::Other {
        source: Box::new(e),
    })
}

impl cloudevents::message::BinaryDeserializer for CloudEventRecord {
    fn deserialize_binary<R: Sized, V: cloudevents::message::BinarySerializer<R>>(
        self,
        mut visitor: V,
    ) -> cloudevents::message::Result<R> {
        use cloudevents::event::SpecVersion;
        use cloudevents::message::{Error, MessageAttributeValue};
        let spec_version = self
            .headers
            .iter()
            .find(|(name, _)| name == "ce_specversion")
            .ok_or(Error::WrongEncoding {})?;
        let spec_version = SpecVersion::try_from(utf8(spec_version.1.clone())?.as_str())?;
        let attributes = spec_version.attribute_names();
        visitor = visitor.set_spec_version(spec_version)?;
        for (name, value) in self.headers {
            let value = MessageAttributeValue::String(utf8(value)?);
            if name == "content-type" {
                visitor = visitor.set_attribute("datacontenttype", value)?;
            } else if let Some(attribute) = name.strip_prefix("ce_") {
                if attribute == "specversion" {
                    continue;
                }
                visitor = if attributes.contains(&attribute) {
                    visitor.set_attribute(attribute, value)?
                } else {
                    visitor.set_extension(attribute, value)?
                };
            }
        }
        match self.value {
            Some(value) => visitor.end_with_data(value),
            None => visitor.end(),
        }
    }
}

impl cloudevents::message::StructuredDeserializer for CloudEventRecord {
    fn deserialize_structured<R: Sized, V: cloudevents::message::StructuredSerializer<R>>(
        self,
        _visitor: V,
    ) -> cloudevents::message::Result<R> {
        // Our records are in binary mode only.
        Err(cloudevents::message::Error::WrongEncoding {})
    }
}

impl cloudevents::message::MessageDeserializer for CloudEventRecord {
    fn encoding(&self) -> cloudevents::message::Encoding {
        if self
            .headers
            .iter()
            .any(|(name, _)| name == "ce_specversion")
        {
            cloudevents::message::Encoding::BINARY
        } else {
            cloudevents::message::Encoding::UNKNOWN
        }
    }
}
