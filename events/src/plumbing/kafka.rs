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
    /// Further librdkafka properties for every client (SASL, TLS): see
    /// [`KafkaSettings::properties_from_env`].
    pub client_properties: Vec<(String, String)>,
}

/// `OMS_KAFKA_*` variables that are settings of their own, not properties.
const NOT_PROPERTIES: &[&str] = &["OMS_KAFKA_BOOTSTRAP", "OMS_KAFKA_PORT"];

impl KafkaSettings {
    /// The librdkafka properties that `OMS_KAFKA_<PROPERTY>` variables among
    /// `vars` name: the rest of the name lower-cased, `_` as `.`
    /// (`OMS_KAFKA_SECURITY_PROTOCOL=sasl_ssl` is `security.protocol`).
    /// `OMS_KAFKA_BOOTSTRAP` and `OMS_KAFKA_PORT` are settings of their own.
    pub fn properties_from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Vec<(String, String)> {
        let mut properties: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(name, _)| !NOT_PROPERTIES.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                let property = name.strip_prefix("OMS_KAFKA_")?;
                (!property.is_empty())
                    .then(|| (property.to_ascii_lowercase().replace('_', "."), value))
            })
            .collect();
        properties.sort();
        properties
    }

    /// A client configuration with the bootstrap servers, the client id
    /// and the [`client_properties`](Self::client_properties) set.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id)
            .set("log_level", "4");
        for (property, value) in &self.client_properties {
            config.set(property, value);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oms_kafka_variables_become_librdkafka_properties_of_every_client() {
        let vars = [
            ("OMS_KAFKA_BOOTSTRAP", "broker:9093"),
            ("OMS_KAFKA_PORT", "9092"),
            ("OMS_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"),
            ("OMS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
            ("OMS_KAFKA_SSL_CA_LOCATION", "/etc/ca.pem"),
            ("OMS_KAFKA_", "ignored"),
            ("OMS_TOPIC_PREFIX", "x"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()));
        let settings = KafkaSettings {
            bootstrap_servers: "broker:9093".into(),
            topics: TopicNames::new(String::new()),
            partitions: 1,
            replication_factor: 1,
            client_properties: KafkaSettings::properties_from_env(vars),
        };
        assert_eq!(
            settings.client_properties,
            [
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("security.protocol", "sasl_ssl"),
                ("ssl.ca.location", "/etc/ca.pem"),
            ]
            .map(|(p, v)| (p.to_owned(), v.to_owned()))
        );
        let config = settings.client_config("test");
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("bootstrap.servers"), Some("broker:9093"));
        // librdkafka takes them: a producer with an unknown protocol is refused.
        let mut wrong = settings.clone();
        wrong.client_properties = vec![("security.protocol".into(), "carrier_pigeon".into())];
        assert!(wrong.producer("test").is_err());
    }
}
