//! Kafka client settings, the idempotent producer, and topic creation.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::FutureProducer;

use crate::topics::{Topic, TopicNames};

/// Where the cluster is and how topics are laid out on it.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `host:port[,host:port…]` of the bootstrap brokers.
    pub bootstrap_servers: String,
    /// Prefix of every topic name (see [`TopicNames`]).
    pub topics: TopicNames,
    /// Partitions of topics this service creates.
    pub partitions: i32,
    /// Replication factor of topics this service creates.
    pub replication_factor: i32,
}

impl KafkaSettings {
    /// A client configuration with the bootstrap servers and the client id set.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id)
            .set("log_level", "4");
        config
    }

    /// The idempotent producer every service uses: `acks=all`,
    /// `enable.idempotence=true` (which keeps per-partition order across
    /// retries), a short linger so that relay batches travel together.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn producer(&self, client_id: &str) -> anyhow::Result<FutureProducer> {
        Ok(self
            .client_config(client_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "60000")
            .create()?)
    }
}

/// Creates `topics` and their dead-letter topics if they do not exist yet.
/// Idempotent: a topic that already exists is left as it is. The catalog
/// topic is compacted; every other topic uses time-based retention.
///
/// # Errors
/// When the broker cannot be reached or refuses a creation for another
/// reason than the topic existing already.
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[Topic]) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = settings.client_config("oms-admin").create()?;
    let mut names = Vec::new();
    for &topic in topics {
        names.push((settings.topics.name(topic), topic.is_compacted()));
        names.push((settings.topics.dead_letter(topic), false));
    }
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|(name, compacted)| {
            let topic = NewTopic::new(
                name,
                settings.partitions,
                TopicReplication::Fixed(settings.replication_factor),
            );
            if *compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin.create_topics(&new_topics, &options).await?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("could not create topic {name}: {code}"),
        }
    }
    Ok(())
}
