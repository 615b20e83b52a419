//! The plumbing against a real Kafka broker and PostgreSQL: outbox, relay,
//! consumer, inbox, dead letters, crash and outage behaviour, tracing.

use rstest::rstest;
use std::time::Duration;
use testkit::Backend;

use event_runtime::{OutboxRelay, RelaySettings};
use events::{Envelope, Event, EventPayload, OrderRejected, Participant, Topic, examples, headers};
use rdkafka::Message;
use sea_orm::{ConnectionTrait, Database};

use crate::helpers::{
    CloudEventRecord, Harness, REFUSED_BY_THE_DATABASE, eventually, harness, header,
};

const WAIT: Duration = Duration::from_secs(60);

fn order_rejected(order_id: impl Into<events::OrderId>, reason: &str) -> Event {
    OrderRejected {
        order_id: order_id.into(),
        rejected_by: Participant::Inventory,
        reason: reason.into(),
    }
    .into()
}

async fn applied_count(h: &Harness) -> usize {
    h.applied().await.len()
}

/// Test 1: every event type, through outbox, relay and consumer, arrives with
/// payload and headers intact.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn every_event_type_travels_from_outbox_to_consumer_intact(#[case] backend: Backend) {
    let h = harness(backend).await;
    h.spawn_relay();
    h.spawn_consumer("all", "all");
    let written = h.enqueue(examples::all()).await;
    let every = events::EVENT_TYPES.len();
    assert_eq!(written.len(), every, "one of each event type and version");

    eventually("every event applied", WAIT, || async {
        applied_count(&h).await == every
    })
    .await;
    let applied = h.applied().await;
    for envelope in &written {
        let (_, event_type, payload) = applied
            .iter()
            .find(|(id, _, _)| *id == envelope.event_id)
            .unwrap_or_else(|| panic!("{} not applied", envelope.event.event_type()));
        assert_eq!(event_type, envelope.event.event_type());
        let received = Envelope::from_json(serde_json::from_str(payload).unwrap()).unwrap();
        assert_eq!(
            &received, envelope,
            "payload of {event_type} changed on the way"
        );
    }

    for (_, expected, records) in h.read_published(&written).await {
        for record in records {
            let envelope = Envelope::from_bytes(record.payload().unwrap()).unwrap();
            assert_eq!(
                record.key(),
                Some(envelope.key().to_string().as_bytes()),
                "keyed by aggregate id"
            );
            assert_eq!(
                header(&record, headers::EVENT_TYPE).as_deref(),
                Some(envelope.event.event_type())
            );
            assert_eq!(
                header(&record, headers::SCHEMA_VERSION),
                Some(envelope.event.schema_version().to_string())
            );
            assert!(expected.iter().any(|e| **e == envelope));
        }
    }
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox_messages WHERE published_at IS NULL")
            .await,
        0
    );
    assert_eq!(
        h.count("SELECT COUNT(*) FROM inbox_messages").await,
        every as i64
    );
}

/// Every record the relay publishes is a CloudEvent in the Kafka binding's
/// binary mode: the CNCF CloudEvents SDK reads each one from the raw record,
/// and its attributes are the envelope's, its data the envelope itself.
#[tokio::test]
async fn a_cloudevents_reader_reads_every_record_the_relay_publishes() {
    use cloudevents::AttributesReader;
    use cloudevents::event::SpecVersion;

    let h = harness(Backend::Postgres).await;
    h.spawn_relay();
    let written = h.enqueue(examples::all()).await;
    let mut read = 0;
    for (topic, expected, records) in h.read_published(&written).await {
        for record in &records {
            let event = CloudEventRecord::of(record)
                .into_event()
                .unwrap_or_else(|e| panic!("a record on {topic} is no CloudEvent: {e}"));
            let envelope = expected
                .iter()
                .find(|e| e.event_id.to_string() == event.id())
                .unwrap_or_else(|| panic!("ce_id {} names no event written", event.id()));
            let event_type = envelope.event.event_type();
            let version = envelope.event.schema_version();
            assert_eq!(event.specversion(), SpecVersion::V10);
            assert_eq!(event.ty(), format!("example.oms.{event_type}"));
            assert_eq!(event.source(), "/plumbing-test");
            assert_eq!(event.time(), Some(&envelope.occurred_at));
            assert_eq!(event.subject(), Some(envelope.key().to_string().as_str()));
            assert_eq!(
                event.dataschema().map(|url| url.as_str()),
                Some(
                    format!("https://oms.example/schemas/{event_type}.v{version}.schema.json")
                        .as_str()
                )
            );
            assert_eq!(event.datacontenttype(), Some("application/json"));
            let Some(cloudevents::Data::Binary(data)) = event.data() else {
                panic!(
                    "{event_type}: the data is not the record's value: {:?}",
                    event.data()
                );
            };
            assert_eq!(
                &Envelope::from_bytes(data).unwrap(),
                *envelope,
                "the data of {event_type} is its envelope"
            );
            read += 1;
        }
    }
    assert_eq!(read, written.len());

    // The reader validates: the same record with its time in another
    // format, or without its source, is refused.
    let records = h.read_topic(&h.kafka.topics.name(Topic::Orders), 1).await;
    let mut bad_time = CloudEventRecord::of(&records[0]);
    for (name, value) in &mut bad_time.headers {
        if name == "ce_time" {
            *value = b"22 November 2026, 10:00".to_vec();
        }
    }
    assert!(
        bad_time.into_event().is_err(),
        "a time that is not RFC 3339"
    );
    let mut no_source = CloudEventRecord::of(&records[0]);
    no_source.headers.retain(|(name, _)| name != "ce_source");
    assert!(
        no_source.into_event().is_err(),
        "a CloudEvent without source"
    );
}

/// Test 2: the relay dies after the broker acknowledged a batch and before it
/// marked the rows; after restart the rows are published again, and the
/// consumer still applies each effect exactly once.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn relay_crash_between_publish_and_mark_applies_each_effect_once(#[case] backend: Backend) {
    let h = harness(backend).await;
    let order_id = uuid::Uuid::now_v7();
    let events: Vec<Event> = (0..20)
        .map(|i| order_rejected(order_id, &format!("reason {i}")))
        .collect();
    let written = h.enqueue(events).await;

    // The relay's first life: publish, then "crash" before marking.
    let doomed =
        OutboxRelay::new(h.db.clone(), &h.kafka, &h.outbox, RelaySettings::default()).unwrap();
    let rows = OutboxRelay::pending(&h.db, 100).await.unwrap();
    assert_eq!(rows.len(), 20);
    assert!(doomed.publish(&rows).await.iter().all(Result::is_ok));
    drop(doomed);
    let orders = h.kafka.topics.name(OrderRejected::TOPIC);
    assert_eq!(
        h.read_topic(&orders, 20).await.len(),
        20,
        "the first life published"
    );

    // Second life: republishes the unmarked rows.
    h.spawn_relay();
    h.spawn_consumer("saga", "saga");
    h.read_topic(&orders, 40).await;
    eventually("the consumer caught up with all 40 records", WAIT, || {
        h.caught_up("saga")
    })
    .await;

    let applied = h.applied().await;
    assert_eq!(applied.len(), 20, "each effect exactly once");
    let applied_ids: Vec<events::EventId> = applied.iter().map(|(id, _, _)| *id).collect();
    let written_ids: Vec<events::EventId> = written.iter().map(|e| e.event_id).collect();
    assert_eq!(
        applied_ids, written_ids,
        "one key: applied in publication order"
    );
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox_messages WHERE published_at IS NULL")
            .await,
        0
    );
}

/// A relay that deletes what it published (the services' default) leaves
/// no row behind and publishes each row once, in order.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_relay_that_deletes_published_rows_publishes_each_once_and_leaves_none(
    #[case] backend: Backend,
) {
    let h = harness(backend).await;
    let order_id = uuid::Uuid::now_v7();
    let events: Vec<Event> = (0..30)
        .map(|i| order_rejected(order_id, &format!("reason {i}")))
        .collect();
    let written = h.enqueue(events).await;
    let relay = OutboxRelay::new(
        h.db.clone(),
        &h.kafka,
        &h.outbox,
        RelaySettings {
            batch_size: 7,
            delete_published: true,
            ..RelaySettings::default()
        },
    )
    .unwrap();
    while OutboxRelay::backlog(&h.db).await.unwrap() > 0 {
        relay.try_execute().await.unwrap();
    }
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox_messages").await, 0);
    let orders = h.kafka.topics.name(OrderRejected::TOPIC);
    let published: Vec<events::EventId> = h
        .read_topic(&orders, 30)
        .await
        .iter()
        .map(|record| {
            Envelope::from_bytes(record.payload().unwrap())
                .unwrap()
                .event_id
        })
        .collect();
    let written_ids: Vec<events::EventId> = written.iter().map(|e| e.event_id).collect();
    assert_eq!(published, written_ids, "in order");
    assert_eq!(h.read_topic_count(&orders).await, 30, "each once");
}

/// Test 3: the consumer dies after its database commit and before its offsets
/// are stored; after restart the records are delivered again and nothing is
/// applied twice.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn consumer_crash_after_commit_before_offsets_applies_nothing_twice(
    #[case] backend: Backend,
) {
    let h = harness(backend).await;
    h.spawn_relay();
    let written = h.enqueue(examples::all()).await;

    let (stop, task) = h.spawn_consumer("inventory", "inventory");
    eventually("first life applied everything", WAIT, || async {
        applied_count(&h).await == events::EVENT_TYPES.len()
    })
    .await;
    stop.cancel();
    task.await.unwrap();
    // What a crash before storing offsets leaves behind: effects committed,
    // offsets of the group at the start.
    h.rewind("inventory").await;
    assert!(
        !h.caught_up("inventory").await,
        "the group must re-read everything"
    );

    h.spawn_consumer("inventory", "inventory");
    eventually("second life re-read everything", WAIT, || {
        h.caught_up("inventory")
    })
    .await;
    let applied = h.applied().await;
    assert_eq!(
        applied.len(),
        written.len(),
        "re-delivered records were skipped by the inbox"
    );
}

/// Test 4: poison records (invalid JSON, unknown event type, schema violation,
/// refused by the handler) land in the dead-letter topic with the reason in
/// their headers, and the records after them on the same partition are
/// still processed, in order.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn poison_records_are_dead_lettered_and_the_partition_keeps_flowing(
    #[case] backend: Backend,
) {
    let h = harness(backend).await;
    h.spawn_consumer("dlq", "dlq");
    let producer = h.producer();
    let order_id = uuid::Uuid::now_v7();
    let key = order_id.to_string();
    let good = |n: u32| {
        h.outbox
            .envelope(order_rejected(order_id, &format!("good {n}")))
    };
    let good_events: Vec<Envelope> = (0..5).map(good).collect();

    let mut unknown = good(99).to_json();
    unknown["event_type"] = "OrderTeleported".into();
    let mut violation = examples::envelope_of("OrderPlaced").unwrap().to_json();
    violation["payload"]["order_id"] = key.clone().into();
    violation["payload"]["lines"][0]["quantity"] = 0.into();
    let poison = h.outbox.envelope(order_rejected(order_id, "poison"));

    let sequence: Vec<(Vec<u8>, &str)> = vec![
        (good_events[0].to_bytes(), "OrderRejected"),
        (b"{this is not json".to_vec(), "OrderRejected"),
        (good_events[1].to_bytes(), "OrderRejected"),
        (serde_json::to_vec(&unknown).unwrap(), "OrderTeleported"),
        (good_events[2].to_bytes(), "OrderRejected"),
        (serde_json::to_vec(&violation).unwrap(), "OrderPlaced"),
        (good_events[3].to_bytes(), "OrderRejected"),
        (poison.to_bytes(), "OrderRejected"),
        (good_events[4].to_bytes(), "OrderRejected"),
    ];
    for (value, event_type) in &sequence {
        h.produce_raw(&producer, Topic::Orders, &key, value, event_type)
            .await;
    }

    eventually("the good records applied", WAIT, || async {
        applied_count(&h).await == 5
    })
    .await;
    let applied: Vec<events::EventId> =
        h.applied().await.into_iter().map(|(id, _, _)| id).collect();
    let expected: Vec<events::EventId> = good_events.iter().map(|e| e.event_id).collect();
    assert_eq!(
        applied, expected,
        "good records applied once each, in partition order"
    );

    let dead = h
        .read_topic(&h.kafka.topics.dead_letter(Topic::Orders), 4)
        .await;
    let codes: Vec<String> = dead
        .iter()
        .map(|m| header(m, headers::DLQ_ERROR_CODE).unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "INVALID_JSON",
            "UNKNOWN_EVENT_TYPE",
            "SCHEMA_VIOLATION",
            "HANDLER_REJECTED"
        ]
    );
    let original_offsets = [1, 3, 5, 7];
    let originals = [1usize, 3, 5, 7].map(|i| &sequence[i].0);
    for ((record, offset), original) in dead.iter().zip(original_offsets).zip(originals) {
        assert_eq!(
            record.payload(),
            Some(original.as_slice()),
            "the dead letter keeps the original value"
        );
        assert_eq!(record.key(), Some(key.as_bytes()));
        assert_eq!(
            header(record, headers::DLQ_ORIGINAL_TOPIC),
            Some(h.kafka.topics.name(Topic::Orders))
        );
        assert_eq!(
            header(record, headers::DLQ_ORIGINAL_OFFSET),
            Some(offset.to_string())
        );
        assert!(header(record, headers::DLQ_ORIGINAL_PARTITION).is_some());
        assert_eq!(
            header(record, headers::DLQ_CONSUMER_GROUP),
            Some(h.group("dlq"))
        );
        assert!(
            header(record, headers::DLQ_FAILED_AT)
                .unwrap()
                .ends_with('Z')
        );
        assert!(!header(record, headers::DLQ_ERROR).unwrap().is_empty());
        assert!(
            header(record, headers::EVENT_TYPE).is_some(),
            "original headers are kept"
        );
    }
    let violation_reason = header(&dead[2], headers::DLQ_ERROR).unwrap();
    assert!(
        violation_reason.contains("/payload/lines/0/quantity"),
        "{violation_reason}"
    );
    eventually("offsets committed past the poison", WAIT, || {
        h.caught_up("dlq")
    })
    .await;
}

/// A record that the database refuses for good (here a CHECK constraint;
/// in the services an over-long string or an out-of-range number) is
/// dead-lettered with the database's reason instead of stalling its batch
/// and every partition in it; the records around it, on its partition and
/// on others, are applied once each, in order.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_record_the_database_refuses_is_dead_lettered_and_the_rest_applied(
    #[case] backend: Backend,
) {
    let h = harness(backend).await;
    let producer = h.producer();
    let order_id = uuid::Uuid::now_v7();
    let key = order_id.to_string();
    let refused = h
        .outbox
        .envelope(order_rejected(order_id, REFUSED_BY_THE_DATABASE));
    let mut sequence: Vec<(String, Envelope)> = (0..3)
        .map(|n| {
            (
                key.clone(),
                h.outbox
                    .envelope(order_rejected(order_id, &format!("before {n}"))),
            )
        })
        .collect();
    sequence.push((key.clone(), refused.clone()));
    for n in 0..3 {
        sequence.push((
            key.clone(),
            h.outbox
                .envelope(order_rejected(order_id, &format!("after {n}"))),
        ));
        let elsewhere = uuid::Uuid::now_v7();
        sequence.push((
            elsewhere.to_string(),
            h.outbox
                .envelope(order_rejected(elsewhere, &format!("other key {n}"))),
        ));
    }
    // Produced before the consumer starts, so that they arrive in one batch.
    for (key, envelope) in &sequence {
        h.produce_raw(
            &producer,
            Topic::Orders,
            key,
            &envelope.to_bytes(),
            "OrderRejected",
        )
        .await;
    }
    h.spawn_consumer("refused", "refused");

    eventually("the other records applied", WAIT, || async {
        applied_count(&h).await == sequence.len() - 1
    })
    .await;
    let applied: Vec<events::EventId> =
        h.applied().await.into_iter().map(|(id, _, _)| id).collect();
    let on_the_key: Vec<events::EventId> = applied
        .iter()
        .copied()
        .filter(|id| sequence.iter().any(|(k, e)| e.event_id == *id && *k == key))
        .collect();
    let expected: Vec<events::EventId> = sequence
        .iter()
        .filter(|(k, e)| *k == key && e.event_id != refused.event_id)
        .map(|(_, e)| e.event_id)
        .collect();
    assert_eq!(
        on_the_key, expected,
        "applied once each, in partition order"
    );
    assert!(!applied.contains(&refused.event_id));

    let dead = h
        .read_topic(&h.kafka.topics.dead_letter(Topic::Orders), 1)
        .await;
    assert_eq!(dead[0].payload(), Some(refused.to_bytes().as_slice()));
    assert_eq!(
        header(&dead[0], headers::DLQ_ERROR_CODE).as_deref(),
        Some("DATABASE_REJECTED")
    );
    let reason = header(&dead[0], headers::DLQ_ERROR).unwrap().to_lowercase();
    assert!(reason.contains("check"), "the database's reason: {reason}");
    eventually("offsets committed past the refused record", WAIT, || {
        h.caught_up("refused")
    })
    .await;
    assert_eq!(
        h.read_topic_count(&h.kafka.topics.dead_letter(Topic::Orders))
            .await,
        1,
        "only the refused record is a dead letter"
    );
}

/// A compressed record that is small on the broker but larger than any
/// producer may send once decompressed is dead-lettered without its value
/// (its size and coordinates instead), so the dead-letter write cannot fail
/// for ever; the record behind it on the partition is applied.
#[tokio::test]
async fn a_record_too_large_to_copy_is_dead_lettered_by_its_coordinates() {
    let h = harness(Backend::Sqlite).await;
    h.spawn_consumer("large", "large");
    let big_producer: rdkafka::producer::FutureProducer = h
        .kafka
        .client_config("plumbing-test-big")
        .set("compression.type", "gzip")
        .set("message.max.bytes", "10000000")
        .create()
        .unwrap();
    let order_id = uuid::Uuid::now_v7();
    let key = order_id.to_string();
    let mut oversized = h.outbox.envelope(order_rejected(order_id, "big")).to_json();
    oversized["padding"] = " ".repeat(2 * event_runtime::MAX_RECORD_BYTES).into();
    h.produce_raw(
        &big_producer,
        Topic::Orders,
        &key,
        &serde_json::to_vec(&oversized).unwrap(),
        "OrderRejected",
    )
    .await;
    let behind = h.outbox.envelope(order_rejected(order_id, "behind"));
    h.produce_raw(
        &h.producer(),
        Topic::Orders,
        &key,
        &behind.to_bytes(),
        "OrderRejected",
    )
    .await;

    eventually("the record behind it applied", WAIT, || async {
        applied_count(&h).await == 1
    })
    .await;
    assert_eq!(h.applied().await[0].0, behind.event_id);
    let dead = h
        .read_topic(&h.kafka.topics.dead_letter(Topic::Orders), 1)
        .await;
    assert_eq!(
        header(&dead[0], headers::DLQ_ERROR_CODE).as_deref(),
        Some("RECORD_TOO_LARGE")
    );
    assert_eq!(dead[0].payload(), None, "the value is left out");
    let size: usize = header(&dead[0], headers::DLQ_ORIGINAL_BYTES)
        .unwrap()
        .parse()
        .unwrap();
    assert!(size > 2 * event_runtime::MAX_RECORD_BYTES);
    assert_eq!(
        header(&dead[0], headers::DLQ_ORIGINAL_OFFSET).as_deref(),
        Some("0")
    );
    assert_eq!(dead[0].key(), Some(key.as_bytes()));
    eventually("offsets committed past it", WAIT, || h.caught_up("large")).await;
}

/// Test 5: while the database is unreachable the consumer retries and loses
/// nothing; when it returns, processing resumes.
#[tokio::test]
async fn consumer_retries_while_the_database_is_down_and_loses_nothing() {
    let h = harness(Backend::Postgres).await;
    // The consumer gets its own pool, so that the test keeps a way in.
    let consumer_db = Database::connect(&h.database.url).await.unwrap();
    h.spawn_consumer_on(consumer_db, "outage", "outage");
    let producer = h.producer();
    let order_id = uuid::Uuid::now_v7();
    let key = order_id.to_string();
    let first = h
        .outbox
        .envelope(order_rejected(order_id, "before the outage"));
    h.produce_raw(
        &producer,
        Topic::Orders,
        &key,
        &first.to_bytes(),
        "OrderRejected",
    )
    .await;
    eventually("the first record applied", WAIT, || async {
        applied_count(&h).await == 1
    })
    .await;

    // Take the database away: refuse new connections, cut the existing ones.
    let name = h.database.url.rsplit('/').next().unwrap().to_owned();
    let admin = Database::connect(h.database.url.replace(&format!("/{name}"), "/postgres"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
        ))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();

    let during: Vec<Envelope> = (0..10)
        .map(|i| {
            h.outbox
                .envelope(order_rejected(order_id, &format!("during the outage {i}")))
        })
        .collect();
    for envelope in &during {
        h.produce_raw(
            &producer,
            Topic::Orders,
            &key,
            &envelope.to_bytes(),
            "OrderRejected",
        )
        .await;
    }
    // Long enough for several failed attempts and back-offs.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !h.caught_up("outage").await,
        "offsets must not move while nothing could be applied"
    );
    let dead_letters = h
        .read_topic_count(&h.kafka.topics.dead_letter(Topic::Orders))
        .await;
    assert_eq!(
        dead_letters, 0,
        "an outage is transient: nothing is dead-lettered"
    );

    admin
        .execute_unprepared(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    eventually("the backlog applied after the outage", WAIT, || async {
        applied_count(&h).await == 11
    })
    .await;
    let applied: Vec<events::EventId> =
        h.applied().await.into_iter().map(|(id, _, _)| id).collect();
    let expected: Vec<events::EventId> = std::iter::once(&first)
        .chain(&during)
        .map(|e| e.event_id)
        .collect();
    assert_eq!(applied, expected, "nothing lost, nothing doubled, in order");
    eventually("offsets committed after recovery", WAIT, || {
        h.caught_up("outage")
    })
    .await;
}

/// The trace context of the request that wrote an event travels through the
/// outbox and Kafka headers and becomes the parent of the consumer's span.
///
/// On PostgreSQL only: the test installs a subscriber for its own task, and
/// sqlx-sqlite closes spans on its worker threads, outside that subscriber.
/// What it checks (outbox columns and Kafka headers) is the same on both.
#[tokio::test]
async fn trace_context_flows_from_the_writer_to_the_consumer_span() {
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use tracing::Instrument;
    use tracing::instrument::WithSubscriber;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    let h = harness(Backend::Postgres).await;
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test"))),
    );

    let relay =
        OutboxRelay::new(h.db.clone(), &h.kafka, &h.outbox, RelaySettings::default()).unwrap();
    tokio::spawn(
        relay
            .run_until_stopped(h.shutdown.clone())
            .with_subscriber(dispatch.clone()),
    );
    let group = "traced";
    let consumer = {
        let mut settings = event_runtime::ConsumerSettings::new(h.group(group), &[Topic::Orders]);
        settings.inbox_name = group.into();
        event_runtime::EventConsumer::new(
            h.db.clone(),
            &h.kafka,
            h.outbox.clone(),
            settings,
            crate::helpers::RecordingHandler,
        )
        .unwrap()
    };
    tokio::spawn(
        consumer
            .run_until_stopped(h.shutdown.clone())
            .with_subscriber(dispatch.clone()),
    );

    let request_span =
        tracing::dispatcher::with_default(&dispatch, || tracing::info_span!("POST /orders"));
    let trace_id = async {
        let trace_id = tracing::Span::current()
            .context()
            .span()
            .span_context()
            .trace_id();
        h.enqueue([order_rejected(uuid::Uuid::now_v7(), "traced")])
            .await;
        trace_id
    }
    .instrument(request_span)
    .with_subscriber(dispatch.clone())
    .await;

    eventually("the traced event applied", WAIT, || async {
        applied_count(&h).await == 1
    })
    .await;
    let records = h.read_topic(&h.kafka.topics.name(Topic::Orders), 1).await;
    let traceparent = header(&records[0], headers::TRACEPARENT).expect("a traceparent header");
    assert!(
        traceparent.contains(&trace_id.to_string()),
        "{traceparent} is not in trace {trace_id}"
    );

    let topic = h.kafka.topics.name(Topic::Orders);
    let process = format!("process {topic}");
    eventually("the consumer span exported", WAIT, || async {
        let _ = provider.force_flush();
        exporter
            .get_finished_spans()
            .unwrap()
            .iter()
            .any(|s| s.name == process)
    })
    .await;
    let spans = exporter.get_finished_spans().unwrap();
    let handled = spans.iter().find(|s| s.name == process).unwrap();
    assert_eq!(
        handled.span_context.trace_id(),
        trace_id,
        "the consumer's span belongs to the request's trace"
    );
    // OpenTelemetry's messaging conventions.
    assert_eq!(handled.span_kind, opentelemetry::trace::SpanKind::Consumer);
    let attribute = |key: &str| {
        handled
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
            .unwrap_or_else(|| panic!("the span has no {key}: {:?}", handled.attributes))
    };
    assert_eq!(attribute("messaging.system"), "kafka");
    assert_eq!(attribute("messaging.operation.type"), "process");
    assert_eq!(attribute("messaging.destination.name"), topic);
    assert_eq!(
        attribute("messaging.destination.partition.id"),
        records[0].partition().to_string()
    );
    assert_eq!(
        attribute("messaging.kafka.offset"),
        records[0].offset().to_string()
    );
    assert_eq!(attribute("messaging.consumer.group.name"), h.group(group));
    assert_eq!(
        Some(attribute("messaging.message.id")),
        header(&records[0], headers::CE_ID),
        "the message id is the event id"
    );

    // The relay's round is a producer span linked to the request's span.
    let sent = spans
        .iter()
        .find(|s| s.name == "send")
        .expect("the relay's send span");
    assert_eq!(sent.span_kind, opentelemetry::trace::SpanKind::Producer);
    assert!(
        sent.links
            .links
            .iter()
            .any(|link| link.span_context.trace_id() == trace_id),
        "the send span links to the span that wrote the row: {:?}",
        sent.links
    );
}

/// Writes each item as an `applied_events` row and emits one event per item;
/// an item without a payload breaks the table's NOT NULL constraint.
struct AppliedWriter {
    outbox: event_runtime::Outbox,
    largest_group: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl event_runtime::GroupWriter for AppliedWriter {
    type Item = (uuid::Uuid, Option<String>);

    async fn write(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        items: &[Self::Item],
    ) -> Result<(), sea_orm::DbErr> {
        self.largest_group
            .fetch_max(items.len(), std::sync::atomic::Ordering::SeqCst);
        let mut sql =
            "INSERT INTO applied_events (event_id, event_type, payload) VALUES ".to_owned();
        let mut values: Vec<sea_orm::Value> = Vec::new();
        for (i, (id, payload)) in items.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, 'GroupWritten', ${})", 2 * i + 1, 2 * i + 2));
            values.push((*id).into());
            values.push(payload.clone().into());
        }
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            txn.get_database_backend(),
            sql,
            values,
        ))
        .await?;
        let events = items
            .iter()
            .map(|(id, _)| {
                event_runtime::PendingEvent::traced(
                    self.outbox.envelope(order_rejected(*id, "group commit")),
                )
            })
            .collect();
        event_runtime::Outbox::enqueue_many(txn, events).await
    }
}

/// Group commit: concurrent callers share transactions, each gets its own
/// answer, and an item that breaks a constraint fails alone, with its
/// event, while every other item and its event commit.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn group_commit_answers_each_caller_and_fails_only_the_bad_item(#[case] backend: Backend) {
    let h = harness(backend).await;
    let largest_group = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let group = event_runtime::GroupCommit::start(
        h.db.clone(),
        h.outbox.clone(),
        AppliedWriter {
            outbox: h.outbox.clone(),
            largest_group: largest_group.clone(),
        },
        event_runtime::GroupCommitSettings::default(),
    );
    let items: Vec<(uuid::Uuid, Option<String>)> = (0..50)
        .map(|i| (uuid::Uuid::now_v7(), (i != 17).then(|| format!("item {i}"))))
        .collect();
    let answers =
        futures::future::join_all(items.iter().cloned().map(|item| group.submit(item))).await;

    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.is_ok(), i != 17, "item {i}: {answer:?}");
    }
    assert!(
        largest_group.load(std::sync::atomic::Ordering::SeqCst) > 1,
        "concurrent submissions share a transaction"
    );
    let applied: Vec<events::EventId> = h.applied().await.iter().map(|(id, _, _)| *id).collect();
    let expected: Vec<events::EventId> = items
        .iter()
        .filter(|(_, payload)| payload.is_some())
        .map(|(id, _)| events::EventId::from_uuid(*id))
        .collect();
    assert_eq!(
        applied, expected,
        "every good item, once, in submission order"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM outbox_messages").await, 49);
}

/// One relay per PostgreSQL database: a second relay is told Busy while the
/// first holds the lease (without any transaction open), and takes over
/// once the first is gone.
#[tokio::test]
async fn a_second_relay_on_one_postgresql_database_waits_and_takes_over() {
    use event_runtime::outbox::RelayOutcome;
    let h = harness(Backend::Postgres).await;
    let order_id = uuid::Uuid::now_v7();
    h.enqueue([order_rejected(order_id, "first")]).await;
    let first =
        OutboxRelay::new(h.db.clone(), &h.kafka, &h.outbox, RelaySettings::default()).unwrap();
    let second =
        OutboxRelay::new(h.db.clone(), &h.kafka, &h.outbox, RelaySettings::default()).unwrap();
    assert_eq!(
        first.try_execute().await.unwrap(),
        RelayOutcome::Published(1)
    );
    assert_eq!(
        h.count("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
            .await,
        0,
        "the lease holds no transaction open"
    );
    h.enqueue([order_rejected(order_id, "second")]).await;
    assert_eq!(second.try_execute().await.unwrap(), RelayOutcome::Busy);
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox_messages WHERE published_at IS NULL")
            .await,
        1,
        "the busy relay published nothing"
    );
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    let outcome = loop {
        let outcome = second.try_execute().await.unwrap();
        if outcome != RelayOutcome::Busy || tokio::time::Instant::now() > deadline {
            break outcome;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        outcome,
        RelayOutcome::Published(1),
        "the second relay took over"
    );
}

/// A row that keeps failing (here its topic is unknown to this version)
/// does not stop the rows of other keys, the rows that went out are not
/// sent again, and after `max_attempts` it is set aside with its error;
/// the later rows of its key wait behind it, and an operator's retry puts
/// them all back in line, in order.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_row_that_keeps_failing_is_set_aside_and_blocks_only_its_key(#[case] backend: Backend) {
    use event_runtime::outbox::RelayOutcome;
    let h = harness(backend).await;
    let stuck_order = uuid::Uuid::now_v7();
    let written = h
        .enqueue([
            order_rejected(uuid::Uuid::now_v7(), "before"),
            order_rejected(stuck_order, "stuck"),
            order_rejected(uuid::Uuid::now_v7(), "after"),
            order_rejected(stuck_order, "behind the stuck one"),
        ])
        .await;
    let stuck = written[1].event_id;
    let second_row = "(SELECT id FROM outbox_messages ORDER BY id LIMIT 1 OFFSET 1)";
    h.db.execute_unprepared(&format!(
        "UPDATE outbox_messages SET topic = 'teleports' WHERE id = {second_row}"
    ))
    .await
    .unwrap();
    let settings = RelaySettings {
        max_attempts: 3,
        stall_after: Duration::from_millis(300),
        ..RelaySettings::default()
    };
    let relay = OutboxRelay::new(h.db.clone(), &h.kafka, &h.outbox, settings).unwrap();
    assert_eq!(
        relay.try_execute().await.unwrap(),
        RelayOutcome::Partial {
            published: 2,
            failed: 2
        },
        "the other keys went out; the row behind the stuck one waits"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        relay.health().stalled().is_some(),
        "rows wait and none went out since the relay started: readiness says so"
    );
    for _ in 0..5 {
        relay.try_execute().await.ok();
    }
    let orders = h.kafka.topics.name(Topic::Orders);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        h.read_topic_count(&orders).await,
        2,
        "what was acknowledged was marked, never sent again"
    );
    let parked = OutboxRelay::parked(&h.db).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!(parked[0].event_id, stuck);
    assert_eq!(parked[0].attempts, 3);
    assert!(
        parked[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("teleports")),
        "{:?}",
        parked[0].last_error
    );
    assert_eq!(
        relay.try_execute().await.unwrap(),
        RelayOutcome::Empty,
        "the stuck key waits; nothing else is pending"
    );
    assert!(relay.health().stalled().is_none(), "the relay keeps up");

    // The operator fixes the cause and retries: both rows go out, in order.
    h.db.execute_unprepared(&format!(
        "UPDATE outbox_messages SET topic = 'orders' WHERE id = {second_row}"
    ))
    .await
    .unwrap();
    assert_eq!(OutboxRelay::retry_parked(&h.db, None).await.unwrap(), 1);
    assert_eq!(
        relay.try_execute().await.unwrap(),
        RelayOutcome::Published(2)
    );
    let records = h.read_topic(&orders, 4).await;
    let stuck_key = stuck_order.to_string();
    let of_the_stuck_key: Vec<events::EventId> = records
        .iter()
        .filter(|r| r.key() == Some(stuck_key.as_bytes()))
        .map(|r| Envelope::from_bytes(r.payload().unwrap()).unwrap().event_id)
        .collect();
    assert_eq!(of_the_stuck_key, [written[1].event_id, written[3].event_id]);
}

/// Retention deletes inbox rows and published outbox rows past their age,
/// in bounded batches, and keeps everything else: recent rows, rows not yet
/// published and rows set aside.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn retention_deletes_only_what_is_past_its_age(#[case] backend: Backend) {
    use chrono::{Duration as Age, Utc};
    use event_runtime::storage::{inbox_message, outbox_message};
    use event_runtime::{Retention, RetentionSettings};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
    let h = harness(backend).await;
    let now = Utc::now();
    let inbox_row = |age: Age| inbox_message::ActiveModel {
        consumer: Set("retention".into()),
        event_id: Set(events::EventId::generate()),
        topic: Set("orders".into()),
        partition: Set(0),
        offset: Set(0),
        event_type: Set("OrderRejected".into()),
        processed_at: Set(now - age),
    };
    inbox_message::Entity::insert_many(
        (0..12)
            .map(|_| inbox_row(Age::days(10)))
            .chain((0..3).map(|_| inbox_row(Age::hours(1)))),
    )
    .exec_without_returning(&h.db)
    .await
    .unwrap();
    let order_id = uuid::Uuid::now_v7();
    let written = h
        .enqueue((0..10).map(|n| order_rejected(order_id, &format!("row {n}"))))
        .await;
    let ids = |range: std::ops::Range<usize>| -> Vec<events::EventId> {
        written[range].iter().map(|e| e.event_id).collect()
    };
    let set =
        |column: outbox_message::Column, value: sea_orm::Value, events: Vec<events::EventId>| {
            outbox_message::Entity::update_many()
                .col_expr(column, Expr::value(value))
                .filter(outbox_message::Column::EventId.is_in(events))
                .exec(&h.db)
        };
    // 0..6 published two hours ago, 6..8 a minute ago, 8 set aside, 9 pending.
    set(
        outbox_message::Column::PublishedAt,
        Some(now - Age::hours(2)).into(),
        ids(0..6),
    )
    .await
    .unwrap();
    set(
        outbox_message::Column::PublishedAt,
        Some(now - Age::minutes(1)).into(),
        ids(6..8),
    )
    .await
    .unwrap();
    set(
        outbox_message::Column::ParkedAt,
        Some(now - Age::days(3)).into(),
        ids(8..9),
    )
    .await
    .unwrap();

    let retention = Retention::new(
        h.db.clone(),
        RetentionSettings {
            batch: 5,
            ..RetentionSettings::default()
        },
    );
    assert_eq!(retention.prune().await.unwrap(), (12, 6));
    assert_eq!(
        retention.prune().await.unwrap(),
        (0, 0),
        "nothing more is due"
    );
    assert_eq!(h.count("SELECT COUNT(*) FROM inbox_messages").await, 3);
    let left: Vec<events::EventId> = outbox_message::Entity::find()
        .order_by_asc(outbox_message::Column::Id)
        .all(&h.db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.event_id)
        .collect();
    assert_eq!(left, ids(6..10), "recent, set-aside and pending rows stay");
}

/// librdkafka's mock cluster (targeted error injection only): the broker
/// answers the first produce request with a sequence error, which makes
/// the idempotent producer fail fatally for good. The relay notices,
/// builds a new producer, and the row goes out.
#[tokio::test]
async fn a_relay_whose_producer_fails_fatally_builds_a_new_one() {
    use event_runtime::KafkaSettings;
    use event_runtime::outbox::RelayOutcome;
    use rdkafka::mocking::MockCluster;
    use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
    let h = harness(Backend::Sqlite).await;
    let mock = MockCluster::new(1).unwrap();
    let kafka = KafkaSettings {
        bootstrap_servers: mock.bootstrap_servers(),
        partitions: 1,
        ..h.kafka.clone()
    };
    let orders = kafka.topics.name(Topic::Orders);
    mock.create_topic(&orders, 1, 1).unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER],
    );
    h.enqueue([order_rejected(uuid::Uuid::now_v7(), "after a fatal error")])
        .await;
    let relay =
        OutboxRelay::new(h.db.clone(), &kafka, &h.outbox, RelaySettings::default()).unwrap();
    let first = relay.try_execute().await;
    assert!(first.is_err(), "the fatal error fails the round: {first:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match relay.try_execute().await {
            Ok(RelayOutcome::Published(1)) => break,
            outcome => assert!(
                tokio::time::Instant::now() < deadline,
                "the relay never recovered: {outcome:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox_messages WHERE published_at IS NULL")
            .await,
        0
    );
}

/// A partial broker outage: one partition of `orders` has no leader (the
/// mock cluster's per-partition injection), so its records time out while
/// the other partition's go out. That is the broker's fault, not the
/// rows': nothing is set aside however long it lasts, and once the
/// partition has a leader again every row goes out.
#[tokio::test]
async fn a_partition_without_a_leader_sets_no_row_aside() {
    use event_runtime::KafkaSettings;
    use event_runtime::outbox::RelayOutcome;
    use rdkafka::mocking::MockCluster;
    let h = harness(Backend::Sqlite).await;
    let mock = MockCluster::new(1).unwrap();
    let kafka = KafkaSettings {
        bootstrap_servers: mock.bootstrap_servers(),
        partitions: 2,
        // Records for the leaderless partition fail in 1.5 s, not 60.
        client_properties: vec![("message.timeout.ms".into(), "1500".into())],
        ..h.kafka.clone()
    };
    let orders = kafka.topics.name(Topic::Orders);
    mock.create_topic(&orders, 2, 1).unwrap();
    mock.partition_leader(&orders, 1, None).unwrap();
    let settings = RelaySettings {
        max_attempts: 2,
        ..RelaySettings::default()
    };
    let relay = OutboxRelay::new(h.db.clone(), &kafka, &h.outbox, settings).unwrap();
    let mut partial_rounds = 0;
    // New rows keep coming during the outage, for both partitions.
    for round in 0..4 {
        h.enqueue(
            (0..10).map(|n| order_rejected(uuid::Uuid::now_v7(), &format!("row {round}.{n}"))),
        )
        .await;
        if let Ok(RelayOutcome::Partial { .. }) = relay.try_execute().await {
            partial_rounds += 1;
        }
    }
    assert!(
        partial_rounds > 1,
        "the rows of the partition with a leader went out, the others did not: \
         {partial_rounds} partial rounds"
    );
    let parked = OutboxRelay::parked(&h.db).await.unwrap();
    assert!(
        parked.is_empty(),
        "{} rows set aside for a partition without a leader: {:?}",
        parked.len(),
        parked
            .iter()
            .map(|row| row.last_error.clone())
            .collect::<Vec<_>>()
    );

    mock.partition_leader(&orders, 1, Some(1)).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match relay.try_execute().await {
            Ok(RelayOutcome::Empty) => break,
            outcome => assert!(
                tokio::time::Instant::now() < deadline,
                "the relay did not catch up after the partition recovered: {outcome:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        h.count("SELECT COUNT(*) FROM outbox_messages WHERE published_at IS NULL")
            .await,
        0,
        "every row went out"
    );
}

/// What a participant asks before a hold expires: has its group applied
/// every record published before the cutoff? Not while records before it
/// wait (a lagging consumer, a broker that was away); yes for a cutoff
/// older than every record, and once the group has committed past them.
#[tokio::test]
async fn a_group_has_applied_everything_before_a_cutoff_once_it_committed_past_it() {
    use chrono::{Duration as Age, Utc};
    use event_runtime::kafka::applied_everything_before;
    let h = harness(Backend::Sqlite).await;
    let group = h.group("watermark");
    let started = Utc::now() - Age::seconds(60);
    assert!(
        applied_everything_before(&h.kafka, &group, Topic::Orders, Utc::now())
            .await
            .unwrap(),
        "nothing was published: nothing to apply"
    );
    let producer = h.producer();
    let order_id = uuid::Uuid::now_v7();
    for n in 0..3 {
        let envelope = h
            .outbox
            .envelope(order_rejected(order_id, &format!("record {n}")));
        h.produce_raw(
            &producer,
            Topic::Orders,
            &order_id.to_string(),
            &envelope.to_bytes(),
            "OrderRejected",
        )
        .await;
    }
    let after_them = Utc::now() + Age::seconds(1);
    assert!(
        !applied_everything_before(&h.kafka, &group, Topic::Orders, after_them)
            .await
            .unwrap(),
        "three records before the cutoff, none applied"
    );
    assert!(
        applied_everything_before(&h.kafka, &group, Topic::Orders, started)
            .await
            .unwrap(),
        "every record is newer than this cutoff"
    );
    h.spawn_consumer("watermark", "watermark");
    eventually("the group applied everything", WAIT, || async {
        applied_everything_before(&h.kafka, &group, Topic::Orders, after_them)
            .await
            .unwrap()
    })
    .await;
    assert!(h.caught_up("watermark").await);
}
