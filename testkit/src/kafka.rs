//! The broker for a test binary: `OMS_KAFKA_BOOTSTRAP` when set, else one
//! started on first use with [`local_kafka`] and stopped when the binary exits.

use tokio::sync::OnceCell;

static BOOTSTRAP: OnceCell<String> = OnceCell::const_new();

/// The bootstrap address of a broker for this test binary.
///
/// # Panics
/// When no broker can be found or started: tests that need one cannot run.
pub async fn kafka_bootstrap() -> &'static str {
    BOOTSTRAP
        .get_or_try_init(|| async {
            if let Ok(bootstrap) = std::env::var("OMS_KAFKA_BOOTSTRAP") {
                return anyhow::Ok(bootstrap);
            }
            tokio::task::spawn_blocking(|| {
                let options = local_kafka::StartOptions {
                    data_dir: std::env::temp_dir()
                        .join(format!("oms-test-kafka-{}", std::process::id())),
                    broker_port: None,
                    watch_pid: Some(std::process::id()),
                    remove_data_on_exit: true,
                    sasl_ssl: None,
                };
                local_kafka::start(&options).map(|broker| broker.bootstrap)
            })
            .await?
        })
        .await
        .map(String::as_str)
        .unwrap_or_else(|e| panic!("no Kafka broker for the tests: {e:#}"))
}

/// Publishes `envelope` to `topic` as the outbox relay does: keyed by its
/// aggregate id, with the relay's headers (its type, schema version and
/// CloudEvents attributes).
///
/// # Panics
/// When the broker does not acknowledge the record.
pub async fn publish(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    envelope: &events::Envelope,
) {
    let record_headers = event_runtime::outbox::record_headers(
        envelope.event.event_type(),
        envelope.event.schema_version(),
        Some(&events::cloudevents::Attributes::of(envelope)),
        &event_runtime::trace::TraceContext::default(),
    );
    send(
        producer,
        topic,
        &envelope.key().to_string(),
        &envelope.to_bytes(),
        record_headers,
    )
    .await;
}

/// Produces `payload` as it is (poison, for instance), keyed by `key`, with
/// the relay's headers for `event_type` and the `schema_version` the
/// payload names (1 when it names none), and CloudEvents headers when the
/// payload is an envelope.
///
/// # Panics
/// When the broker does not acknowledge the record.
pub async fn produce(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    key: &str,
    event_type: &str,
    payload: &[u8],
) {
    let schema_version = serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v["schema_version"].as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(1);
    let record_headers = event_runtime::outbox::record_headers(
        event_type,
        schema_version,
        events::cloudevents::Attributes::of_record(payload, key).as_ref(),
        &event_runtime::trace::TraceContext::default(),
    );
    send(producer, topic, key, payload, record_headers).await;
}

async fn send(
    producer: &rdkafka::producer::FutureProducer,
    topic: &str,
    key: &str,
    payload: &[u8],
    record_headers: rdkafka::message::OwnedHeaders,
) {
    producer
        .send(
            rdkafka::producer::FutureRecord::to(topic)
                .key(key)
                .payload(payload)
                .headers(record_headers),
            std::time::Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("the broker acknowledges the record");
}
