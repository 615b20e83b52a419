//! The operator's tools: what is on the broker, what flows through it, and
//! how to re-drive it. All of them talk to Kafka only, never to the
//! services' databases; replays are safe because every consumer is
//! idempotent (inbox), and projections (order-svc's catalog copy and
//! timelines) rebuild themselves from replayed records.
//!
//! - [`topics`]: topics, partitions, end offsets, consumer-group lag.
//! - [`tail`]: records of a topic, or one order's records across topics.
//! - [`dlq`]: list, show and re-publish dead letters.
//! - [`replay`]: reset a group's offsets, or copy a range of records.
//! - [`outbox`] and [`admin`] are the exceptions that open a service's
//!   database: set-aside outbox rows, and the admin password reset.

pub mod admin;
pub mod dlq;
pub mod outbox;
pub mod replay;
pub mod tail;
pub mod topics;

use std::time::Duration;

use event_runtime::KafkaSettings;
use events::{Topic, TopicNames};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, OwnedMessage};
use rdkafka::{Message, Offset, TopicPartitionList};

/// How long a metadata or offset request may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the cluster is, and the topic prefix in use.
#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// Kafka bootstrap servers.
    #[arg(long, env = "OMS_KAFKA_BOOTSTRAP", default_value = "127.0.0.1:9092")]
    pub kafka: String,
    /// Prefix of topics and consumer groups.
    #[arg(long, env = "OMS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
}

impl Connection {
    /// The Kafka settings.
    pub fn kafka(&self) -> KafkaSettings {
        self.kafka_with(KafkaSettings::properties_from_env(std::env::vars()))
    }

    fn kafka_with(&self, client_properties: Vec<(String, String)>) -> KafkaSettings {
        KafkaSettings {
            bootstrap_servers: self.kafka.clone(),
            topics: TopicNames::new(self.topic_prefix.clone()),
            partitions: 1,
            replication_factor: None,
            min_insync_replicas: None,
            client_properties,
        }
    }

    /// The Kafka settings, once the broker has let this client in: a
    /// configuration the client library refuses, an unreadable
    /// `OMS_KAFKA_*_FILE`, a wrong password or an untrusted certificate
    /// ends the command with one line instead of a wait.
    ///
    /// # Errors
    /// That line, or a broker that does not answer within 10 s.
    pub fn checked_kafka(&self) -> anyhow::Result<KafkaSettings> {
        let kafka = self.kafka_with(KafkaSettings::checked_properties_from_env(std::env::vars())?);
        kafka.validate()?;
        event_runtime::kafka::check_access_blocking(&kafka)?;
        Ok(kafka)
    }

    /// [`checked_kafka`](Self::checked_kafka) off the async runtime's threads.
    ///
    /// # Errors
    /// As [`checked_kafka`](Self::checked_kafka).
    pub async fn checked_kafka_async(&self) -> anyhow::Result<KafkaSettings> {
        let connection = self.clone();
        tokio::task::spawn_blocking(move || connection.checked_kafka()).await?
    }
}

/// A topic named on the command line: a logical name (`orders`,
/// `orders.dlq`) or a full broker name.
pub fn resolve_topic(names: &TopicNames, given: &str) -> String {
    for topic in Topic::ALL {
        if given == topic.base_name() {
            return names.name(topic);
        }
        if given
            == format!(
                "{}{}",
                topic.base_name(),
                events::topics::DEAD_LETTER_SUFFIX
            )
        {
            return names.dead_letter(topic);
        }
    }
    given.to_owned()
}

/// Every topic of the system: the four and their dead-letter topics.
pub fn all_topics(names: &TopicNames) -> Vec<String> {
    Topic::ALL
        .iter()
        .flat_map(|&t| [names.name(t), names.dead_letter(t)])
        .collect()
}

/// A metadata client.
///
/// # Errors
/// When the client cannot be created.
pub fn client(kafka: &KafkaSettings) -> anyhow::Result<BaseConsumer> {
    Ok(kafka.client_config("oms-cli").create()?)
}

/// Partition ids of `topic`.
///
/// # Errors
/// When the topic does not exist or the broker does not answer.
pub fn partitions(client: &BaseConsumer, topic: &str) -> anyhow::Result<Vec<i32>> {
    let metadata = client.fetch_metadata(Some(topic), TIMEOUT)?;
    let found = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .ok_or_else(|| anyhow::anyhow!("topic {topic} does not exist"))?;
    Ok(found.partitions().iter().map(|p| p.id()).collect())
}

/// Reads `ranges` (topic, partition, from, until exclusive) and calls `each`
/// for every record, in order per partition.
///
/// # Errors
/// Broker errors.
pub fn read_ranges(
    kafka: &KafkaSettings,
    ranges: &[(String, i32, i64, i64)],
    mut each: impl FnMut(OwnedMessage) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = kafka
        .client_config("oms-cli-reader")
        .set("group.id", format!("oms-cli-{}", uuid::Uuid::now_v7()))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0usize;
    for (topic, partition, from, until) in ranges {
        if from < until {
            assignment.add_partition_offset(topic, *partition, Offset::Offset(*from))?;
            remaining += 1;
        }
    }
    if remaining == 0 {
        return Ok(());
    }
    consumer.assign(&assignment)?;
    let mut done = std::collections::HashSet::new();
    while done.len() < remaining {
        match consumer.poll(TIMEOUT) {
            Some(Ok(message)) => {
                let key = (message.topic().to_owned(), message.partition());
                let until = ranges
                    .iter()
                    .find(|(t, p, _, _)| *t == key.0 && *p == key.1)
                    .map_or(i64::MAX, |r| r.3);
                if message.offset() < until {
                    each(message.detach())?;
                }
                if message.offset() + 1 >= until {
                    done.insert(key);
                }
            }
            Some(Err(error)) => return Err(error.into()),
            None => anyhow::bail!("the broker stopped answering while reading"),
        }
    }
    Ok(())
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

/// All headers of a record, as text.
pub fn all_headers(message: &OwnedMessage) -> Vec<(String, String)> {
    message.headers().map_or_else(Vec::new, |headers| {
        headers
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    h.value
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    })
}

/// `text` with its control characters escaped (`\u{1b}`), so that what a
/// record or a row carries cannot drive the operator's terminal.
pub fn escape_control(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}
