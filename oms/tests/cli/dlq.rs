//! `oms dlq`: a dead letter goes back only to the topic its dead-letter
//! topic belongs to, and dead-letter topics keep their records for
//! `OMS_DLQ_RETENTION_HOURS`. Kafka only: no database is involved.

use event_runtime::{KafkaSettings, ensure_topics};
use events::Topic;
use events::headers;
use oms::ops::Connection;
use oms::ops::dlq::Selection;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// A connection with a topic prefix of its own, its topics created as a
/// service creates them.
async fn connection() -> Connection {
    testkit::init_tracing();
    let connection = Connection {
        kafka: testkit::kafka_bootstrap().await.to_owned(),
        topic_prefix: testkit::topic_prefix(),
    };
    ensure_topics(&connection.kafka(), &Topic::ALL)
        .await
        .unwrap();
    connection
}

/// Writes a dead letter into `dlq_topic` that says it came from `original`.
async fn dead_letter(kafka: &KafkaSettings, dlq_topic: &str, original: &str, key: &str) {
    let producer: FutureProducer = kafka.producer("oms-test-forger").unwrap();
    let record_headers = OwnedHeaders::new()
        .insert(Header {
            key: headers::EVENT_TYPE,
            value: Some("OrderDelivered"),
        })
        .insert(Header {
            key: headers::DLQ_ORIGINAL_TOPIC,
            value: Some(original),
        })
        .insert(Header {
            key: headers::DLQ_ERROR_CODE,
            value: Some("HANDLER_REJECTED"),
        })
        .insert(Header {
            key: headers::DLQ_ERROR,
            value: Some("test"),
        });
    producer
        .send(
            FutureRecord::to(dlq_topic)
                .key(key)
                .payload(r#"{"not":"an envelope"}"#)
                .headers(record_headers),
            std::time::Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
}

/// The number of records ever written to `topic`.
async fn records_in(connection: &Connection, topic: &str) -> i64 {
    let kafka = connection.kafka();
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let client = oms::ops::client(&kafka).unwrap();
        oms::ops::partitions(&client, &topic)
            .unwrap()
            .into_iter()
            .map(|p| {
                let (low, high) = client
                    .fetch_watermarks(&topic, p, oms::ops::TIMEOUT)
                    .unwrap();
                high - low
            })
            .sum()
    })
    .await
    .unwrap()
}

/// A dead letter in `orders.dlq` whose `dlq.original_topic` header names
/// `customers` is not published there: `orders.dlq` goes back to `orders`
/// only, and the refused letter is reported.
#[tokio::test]
async fn a_dead_letter_naming_another_topic_than_its_own_is_refused_and_reported() {
    let connection = connection().await;
    let kafka = connection.kafka();
    let orders = kafka.topics.name(Topic::Orders);
    let customers = kafka.topics.name(Topic::Customers);
    let orders_dlq = kafka.topics.dead_letter(Topic::Orders);
    dead_letter(&kafka, &orders_dlq, &orders, "honest").await;
    dead_letter(&kafka, &orders_dlq, &customers, "forged").await;
    let customers_before = records_in(&connection, &customers).await;

    let selection = Selection {
        topic: Some("orders".into()),
        ..Selection::default()
    };
    let summary = oms::ops::dlq::replay(&connection, &selection, false)
        .await
        .unwrap();

    assert_eq!(summary.replayed, 1, "{summary:?}");
    assert_eq!(summary.refused.len(), 1, "{summary:?}");
    let refused = &summary.refused[0];
    assert_eq!(
        (refused.named.as_str(), refused.allowed.as_str()),
        (customers.as_str(), orders.as_str())
    );
    assert!(refused.to_string().contains("refused"), "{refused}");
    assert_eq!(
        records_in(&connection, &customers).await,
        customers_before,
        "a dead letter of orders.dlq was published to customers"
    );
    assert_eq!(records_in(&connection, &orders).await, 1);
}

/// Dead-letter topics keep their records 30 days by default, not the
/// broker's 7; the ordinary topics keep the broker's retention.
#[tokio::test]
async fn dead_letter_topics_are_created_with_a_retention_of_their_own() {
    let connection = connection().await;
    let kafka = connection.kafka();
    let admin: AdminClient<DefaultClientContext> =
        kafka.client_config("oms-test-admin").create().unwrap();
    let retention = |topic: String| {
        let admin = &admin;
        async move {
            let described = admin
                .describe_configs(&[ResourceSpecifier::Topic(&topic)], &AdminOptions::new())
                .await
                .unwrap();
            let resource = described.into_iter().next().unwrap().unwrap();
            resource
                .get("retention.ms")
                .and_then(|entry| entry.value.clone())
                .unwrap()
        }
    };
    let thirty_days = (30_i64 * 24 * 3600 * 1000).to_string();
    assert_eq!(
        retention(kafka.topics.dead_letter(Topic::Orders)).await,
        thirty_days,
        "orders.dlq's retention"
    );
    assert_ne!(
        retention(kafka.topics.name(Topic::Orders)).await,
        thirty_days,
        "orders keeps the broker's retention"
    );

    // `oms dlq list` says so.
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_oms"))
        .args(["dlq", "list", "--kafka", &connection.kafka])
        .args(["--topic-prefix", &connection.topic_prefix])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "{}orders.dlq keeps dead letters 720 h (30 days",
            connection.topic_prefix
        )),
        "{stdout}"
    );

    // A service started with another OMS_DLQ_RETENTION_HOURS corrects an
    // existing dead-letter topic.
    event_runtime::kafka::ensure_topics_retaining(
        &kafka,
        &Topic::ALL,
        std::time::Duration::from_secs(48 * 3600),
    )
    .await
    .unwrap();
    assert_eq!(
        retention(kafka.topics.dead_letter(Topic::Orders)).await,
        (48_i64 * 3600 * 1000).to_string()
    );
}

/// `oms dlq replay` on the command line reports the refused letter and
/// exits with an error, so that a script notices.
#[tokio::test]
async fn the_command_reports_a_refused_dead_letter_and_fails() {
    let connection = connection().await;
    let kafka = connection.kafka();
    dead_letter(
        &kafka,
        &kafka.topics.dead_letter(Topic::Inventory),
        &kafka.topics.name(Topic::Orders),
        "forged",
    )
    .await;
    let replayed = std::process::Command::new(env!("CARGO_BIN_EXE_oms"))
        .args([
            "dlq",
            "replay",
            "--topic",
            "inventory",
            "--kafka",
            &connection.kafka,
        ])
        .args(["--topic-prefix", &connection.topic_prefix])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&replayed.stderr);
    assert!(!replayed.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "its dlq.original_topic names {}",
            kafka.topics.name(Topic::Orders)
        )),
        "{stderr}"
    );
}

/// `oms dlq replay` without a selector means every dead letter of every
/// topic: it shows which letters would go where, says how to do it, exits
/// 0 and publishes nothing; `--execute` re-publishes them. `dlq list -o
/// jsonl` prints one object per line, each with its kind.
#[tokio::test]
async fn replaying_every_dead_letter_waits_for_execute() {
    let connection = connection().await;
    let kafka = connection.kafka();
    let inventory = kafka.topics.name(Topic::Inventory);
    dead_letter(
        &kafka,
        &kafka.topics.dead_letter(Topic::Inventory),
        &inventory,
        "every-letter",
    )
    .await;
    let oms = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_oms"))
            .args(args)
            .args(["--kafka", &connection.kafka])
            .args(["--topic-prefix", &connection.topic_prefix])
            .output()
            .unwrap()
    };
    let before = records_in(&connection, &inventory).await;

    let planned = oms(&["dlq", "replay"]);
    crate::assert_dry_run(&planned, &format!("key=every-letter -> {inventory}"));
    crate::assert_dry_run(&planned, "would re-publish 1 dead letter(s)");
    assert_eq!(
        records_in(&connection, &inventory).await,
        before,
        "nothing published"
    );

    let listed = oms(&["dlq", "list", "-o", "jsonl"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is a JSON object"))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["kind"] == "dead_letter" && l["key"] == "every-letter"),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l["kind"] == "retention"), "{lines:?}");

    let replayed = oms(&["dlq", "replay", "--execute", "-o", "json"]);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&replayed.stdout).expect("-o json prints one document");
    assert_eq!(summary["dry_run"], false, "{summary}");
    assert_eq!(summary["replayed"], 1, "{summary}");
    assert_eq!(records_in(&connection, &inventory).await, before + 1);
}
