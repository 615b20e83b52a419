//! Waiting for the system to settle, reading topics, and checking
//! problem+json answers: what every service's tests need.

use std::future::Future;
use std::time::Duration;

use event_runtime::KafkaSettings;
use events::Envelope;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{Message, Offset, TopicPartitionList};

/// How long a test waits for something asynchronous before it fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` every 100 ms until it holds; fails the test after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts an `application/problem+json` answer with `status` and `code`;
/// returns its body.
pub async fn assert_problem(
    response: reqwest::Response,
    status: impl Into<u16>,
    code: &str,
) -> serde_json::Value {
    let status: u16 = status.into();
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    body
}

/// Reads every record of a topic, all partitions, from the beginning.
pub struct TopicReader {
    consumer: StreamConsumer,
    /// Every record read so far, decoded, with the record itself.
    pub seen: Vec<(Envelope, OwnedMessage)>,
    /// Every record read so far by [`records`](Self::records), as it is.
    pub raw: Vec<OwnedMessage>,
}

impl TopicReader {
    /// A reader of `topic` (a broker name, prefix included).
    ///
    /// # Panics
    /// When the consumer cannot be created.
    pub fn new(kafka: &KafkaSettings, topic: &str) -> Self {
        let consumer: StreamConsumer = kafka
            .client_config("test-reader")
            .set("group.id", format!("reader-{}", uuid::Uuid::now_v7()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("a consumer");
        // Every partition the topic has, whatever the settings say.
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("the topic's metadata");
        let mut assignment = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            assignment
                .add_partition_offset(topic, partition.id(), Offset::Beginning)
                .expect("a valid assignment");
        }
        consumer
            .assign(&assignment)
            .expect("the assignment is accepted");
        Self {
            consumer,
            seen: Vec::new(),
            raw: Vec::new(),
        }
    }

    /// The envelopes read so far.
    pub fn envelopes(&self) -> Vec<Envelope> {
        self.seen.iter().map(|(e, _)| e.clone()).collect()
    }

    /// Reads until `done(all so far)` holds; fails the test after [`WAIT`].
    pub async fn until(&mut self, what: &str, done: impl Fn(&[Envelope]) -> bool) -> Vec<Envelope> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let envelopes = self.envelopes();
            if done(&envelopes) {
                return envelopes;
            }
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(message)) => self.push(message.detach()),
                Ok(Err(error)) => panic!("reading the topic: {error}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; saw {:?}",
                    envelopes
                        .iter()
                        .map(|e| e.event.event_type())
                        .collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Reads records without decoding them (dead letters of poison, for
    /// instance) until `count` arrived; fails the test after [`WAIT`].
    pub async fn records(&mut self, what: &str, count: usize) -> &[OwnedMessage] {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.raw.len() < count {
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Ok(Ok(message)) => self.raw.push(message.detach()),
                Ok(Err(error)) => panic!("reading the topic: {error}"),
                Err(_) => panic!(
                    "timed out waiting for {what}; saw {} records",
                    self.raw.len()
                ),
            }
        }
        &self.raw
    }

    /// Keeps reading while records arrive within `quiet` of each other;
    /// returns everything read, so a test can show that nothing more came.
    pub async fn settle(&mut self, quiet: Duration) -> Vec<Envelope> {
        while let Ok(Ok(message)) = tokio::time::timeout(quiet, self.consumer.recv()).await {
            self.push(message.detach());
        }
        self.envelopes()
    }

    fn push(&mut self, message: OwnedMessage) {
        let envelope = Envelope::from_bytes(message.payload().unwrap_or_default())
            .unwrap_or_else(|e| panic!("a record that is not an event: {e}"));
        self.seen.push((envelope, message));
    }
}

/// A record's header as text.
pub fn header(message: &OwnedMessage, key: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// How many `events` have `event_type`.
pub fn count(events: &[Envelope], event_type: &str) -> usize {
    events
        .iter()
        .filter(|e| e.event.event_type() == event_type)
        .count()
}

/// Asserts that each of `topics` and its dead-letter topic exist under
/// `prefix` with `partitions` partitions: what a service creates at start.
pub async fn assert_topics_created(
    bootstrap: &str,
    prefix: &str,
    topics: &[events::Topic],
    partitions: usize,
) {
    let (bootstrap, prefix) = (bootstrap.to_owned(), prefix.to_owned());
    let found = tokio::task::spawn_blocking(move || {
        let client: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()
            .expect("a metadata client");
        let metadata = client
            .fetch_metadata(None, Duration::from_secs(10))
            .expect("the cluster's metadata");
        metadata
            .topics()
            .iter()
            .filter_map(|t| {
                t.name()
                    .strip_prefix(&prefix)
                    .map(|n| (n.to_owned(), t.partitions().len()))
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("the metadata task");
    for topic in topics {
        for name in [
            topic.base_name().to_owned(),
            format!("{}.dlq", topic.base_name()),
        ] {
            let count = found.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
            assert_eq!(
                count,
                Some(partitions),
                "topic {name} with {partitions} partitions"
            );
        }
    }
}

/// Asserts that every `$ref` of an OpenAPI `document` names a schema that
/// the document holds, so that generated clients resolve every type.
pub fn assert_openapi_refs_resolve(document: &serde_json::Value) {
    fn walk(value: &serde_json::Value, refs: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    refs.push(target.clone());
                }
                map.values().for_each(|v| walk(v, refs));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(document, &mut refs);
    assert!(!refs.is_empty(), "the document references no schema");
    for target in refs {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target} is not local"));
        assert!(
            document.pointer(pointer).is_some(),
            "{target} does not resolve"
        );
    }
}

/// Asserts that `document`, the OpenAPI document `service` serves, equals
/// the committed `docs/api/<service>.json`, so that the published API
/// reference cannot drift from the code. With `OMS_UPDATE_API_DOCS=1` it
/// writes the file instead (pretty JSON), as `OMS_UPDATE_SCHEMAS=1` does for
/// the event schemas.
pub fn assert_openapi_committed(service: &str, document: &serde_json::Value) {
    let path = crate::repo_root()
        .join("docs/api")
        .join(format!("{service}.json"));
    let generated = serde_json::to_string_pretty(document).expect("JSON") + "\n";
    if std::env::var("OMS_UPDATE_API_DOCS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("docs/api")).expect("docs/api is writable");
        std::fs::write(&path, &generated).expect("the document is written");
    }
    assert!(
        std::fs::read_to_string(&path).ok().as_deref() == Some(generated.as_str()),
        "{} differs from the OpenAPI document {service} serves; regenerate with \
         OMS_UPDATE_API_DOCS=1 cargo test -p {service} --test api openapi",
        path.display()
    );
}

/// Asserts that every value of a typed enum column is stored as it is
/// serialized (its database spelling is its wire spelling, read back to the
/// same value), and that a spelling it does not know is refused when read.
pub fn assert_stored_as_serialized<E>()
where
    E: sea_orm::ActiveEnum<Value = String> + sea_orm::Iterable + serde::Serialize,
    E: std::fmt::Debug + PartialEq,
{
    let mut values = 0;
    for value in E::iter() {
        let stored = value.to_value();
        assert_eq!(
            serde_json::to_value(&value).expect("a serializable value"),
            serde_json::Value::String(stored.clone()),
            "{value:?}"
        );
        assert_eq!(E::try_from_value(&stored).expect("read back"), value);
        values += 1;
    }
    assert!(values > 0, "an enum without values");
    assert!(E::try_from_value(&"NOT A STORED VALUE".to_owned()).is_err());
}

/// Asserts that a participant names every phase of its records, each
/// differently, so that a stored state reads back as the phase it was;
/// and that `foreign` (another participant's name) is no phase of its own.
pub fn assert_phase_names(names: &event_runtime::PhaseNames, foreign: &str) {
    use event_runtime::Phase;
    for phase in [
        Phase::Held,
        Phase::Refused,
        Phase::Released,
        Phase::Finished,
    ] {
        let name = names.name(phase);
        assert_eq!(names.parse(name), Some(phase), "{name}");
    }
    assert_eq!(names.parse(foreign), None, "{foreign}");
}
