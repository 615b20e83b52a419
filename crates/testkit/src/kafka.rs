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
                };
                local_kafka::start(&options).map(|broker| broker.bootstrap)
            })
            .await?
        })
        .await
        .map(String::as_str)
        .unwrap_or_else(|e| panic!("no Kafka broker for the tests: {e:#}"))
}

/// Produces one record the way a relay does: keyed, with the `event_type`
/// and `schema_version` headers, whatever `payload` holds (tests send
/// poison this way).
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
    use events::topics::headers;
    use rdkafka::message::{Header, OwnedHeaders};
    let record_headers = OwnedHeaders::new()
        .insert(Header {
            key: headers::EVENT_TYPE,
            value: Some(event_type),
        })
        .insert(Header {
            key: headers::SCHEMA_VERSION,
            value: Some("1"),
        });
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
