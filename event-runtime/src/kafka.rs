//! Kafka client settings, the idempotent producer, and topic creation.
//!
//! What it guarantees at start-up ([`ensure_topics_retaining`]):
//! - a client configuration librdkafka refuses (an unknown property, an
//!   unsupported `security.protocol`) is a [`ConfigurationError`] naming the
//!   property and the `OMS_KAFKA_*` variable that set it: it never becomes
//!   "the broker is unreachable", so no caller retries it;
//! - a broker that does not answer is [`TopicsError::Unreachable`] within a
//!   few seconds, so that a caller waiting for it can say so as it waits;
//! - a broker that refuses the client's credentials (SASL) or whose
//!   certificate the client does not trust (TLS) is a
//!   [`ConfigurationError`] too, in one line ([`check_access`]): a wrong
//!   password never becomes a retry loop;
//! - dead-letter topics keep their records for their own retention
//!   (`OMS_DLQ_RETENTION_HOURS`, default 30 days), set on creation and
//!   corrected on an existing dead-letter topic; other topics keep the
//!   broker's retention (the catalog topic is compacted).
//!
//! Secrets among the client properties (`sasl.password`, …) can come from
//! files: `OMS_KAFKA_<PROPERTY>_FILE` names a file whose content (without
//! its trailing newline) is the property's value.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, DeliveryResult, FutureProducer, Producer, ProducerContext};

use events::topics::{Topic, TopicNames};

/// Where the cluster is and how topics are laid out on it.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `host:port[,host:port…]` of the bootstrap brokers.
    pub bootstrap_servers: String,
    /// Prefix of every topic name (see [`TopicNames`]).
    pub topics: TopicNames,
    /// Partitions of topics this service creates.
    pub partitions: i32,
    /// Replication factor of topics this service creates; `None`: the
    /// cluster's brokers, at most 3 (see [`KafkaSettings::replication`]).
    pub replication_factor: Option<i32>,
    /// `min.insync.replicas` of topics this service creates; `None`: 2
    /// from 3 replicas on, else 1.
    pub min_insync_replicas: Option<i32>,
    /// Further librdkafka properties for every client (SASL, TLS): see
    /// [`KafkaSettings::properties_from_env`].
    pub client_properties: Vec<(String, String)>,
}

/// `OMS_KAFKA_*` variables that are settings of their own, not properties.
const NOT_PROPERTIES: &[&str] = &["OMS_KAFKA_BOOTSTRAP", "OMS_KAFKA_PORT"];

/// The suffix of a variable that names a file holding the value of the
/// variable without it (`OMS_KAFKA_SASL_PASSWORD_FILE`).
const FILE_SUFFIX: &str = "_FILE";

/// Default of `OMS_DLQ_RETENTION_HOURS`: dead letters are kept 30 days.
pub const DEFAULT_DEAD_LETTER_RETENTION_HOURS: u64 = 720;

/// How long a start-up probe waits for the broker to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long [`check_access`] waits for the broker's metadata.
const ACCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// A Kafka client configuration that cannot work, whatever the broker
/// does: retrying it is pointless. Its message is one line that names
/// the property and the variable that set it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid Kafka client configuration{}: {message}", named(.property, .variable))]
pub struct ConfigurationError {
    /// The librdkafka property at fault, when known (`security.protocol`).
    pub property: Option<String>,
    /// The variable that set it (`OMS_KAFKA_SECURITY_PROTOCOL`).
    pub variable: Option<String>,
    /// What is wrong, in librdkafka's words or ours.
    pub message: String,
}

fn named(property: &Option<String>, variable: &Option<String>) -> String {
    match (property, variable) {
        (Some(p), Some(v)) => format!(" (property {p}, set by {v})"),
        (Some(p), None) => format!(" (property {p})"),
        (None, Some(v)) => format!(" ({v})"),
        (None, None) => String::new(),
    }
}

/// The variable that sets `property`.
fn variable_of(property: &str) -> String {
    format!(
        "OMS_KAFKA_{}",
        property.replace('.', "_").to_ascii_uppercase()
    )
}

/// Why [`ensure_topics`] failed.
#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    /// The client configuration is refused: waiting will not help.
    #[error(transparent)]
    Configuration(#[from] ConfigurationError),
    /// The broker did not answer: it may yet come up.
    #[error("Kafka at {bootstrap} cannot be reached: {reason}")]
    Unreachable {
        /// The bootstrap servers tried.
        bootstrap: String,
        /// What the client said.
        reason: String,
    },
    /// The broker refused to create or configure a topic.
    #[error("the broker refused topic {topic}: {reason}")]
    Refused {
        /// The topic.
        topic: String,
        /// The broker's or client's error.
        reason: String,
    },
}

impl KafkaSettings {
    /// The librdkafka properties that `OMS_KAFKA_<PROPERTY>` variables among
    /// `vars` name: the rest of the name lower-cased, `_` as `.`
    /// (`OMS_KAFKA_SECURITY_PROTOCOL=sasl_ssl` is `security.protocol`).
    /// `OMS_KAFKA_BOOTSTRAP` and `OMS_KAFKA_PORT` are settings of their own.
    /// `OMS_KAFKA_<PROPERTY>_FILE` names a file holding the value. A file
    /// that cannot be read, or a property set both ways, is left out here;
    /// [`checked_properties_from_env`](Self::checked_properties_from_env)
    /// reports it, and services call that at start.
    pub fn properties_from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Vec<(String, String)> {
        collect_properties(vars, &mut |_| {})
    }

    /// [`properties_from_env`](Self::properties_from_env), failing on the
    /// first `_FILE` variable whose file cannot be read, and on a property
    /// set both directly and through a file.
    ///
    /// # Errors
    /// That [`ConfigurationError`], naming the variable.
    pub fn checked_properties_from_env(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<(String, String)>, ConfigurationError> {
        let mut first = None;
        let properties = collect_properties(vars, &mut |error| {
            first.get_or_insert(error);
        });
        match first {
            Some(error) => Err(error),
            None => Ok(properties),
        }
    }

    /// Checks that librdkafka accepts the client configuration, without
    /// contacting the broker.
    ///
    /// # Errors
    /// A [`ConfigurationError`] naming the property librdkafka refused.
    pub fn validate(&self) -> Result<(), ConfigurationError> {
        self.client_config("oms-config-check")
            .create::<BaseConsumer>()
            .map(drop)
            .map_err(|error| self.configuration_error(&error))
    }

    fn configuration_error(&self, error: &KafkaError) -> ConfigurationError {
        let message = match error {
            KafkaError::ClientCreation(message) => message.clone(),
            other => other.to_string(),
        };
        // librdkafka quotes the property it refuses: `No such configuration
        // property: "foo.bar"`, `Unsupported value "x" for configuration
        // property "security.protocol": …`.
        let property = self
            .client_properties
            .iter()
            .map(|(p, _)| p.as_str())
            .chain(["bootstrap.servers", "client.id"])
            .find(|p| message.contains(&format!("\"{p}\"")))
            .map(str::to_owned);
        let variable = property.as_deref().map(|p| match p {
            "bootstrap.servers" => "OMS_KAFKA_BOOTSTRAP".to_owned(),
            other => variable_of(other),
        });
        ConfigurationError {
            property,
            variable,
            message: message.replace('\n', " "),
        }
    }

    /// A client configuration with the bootstrap servers, the client id
    /// and the [`client_properties`](Self::client_properties) set.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        self.set_client_properties(&mut config, client_id);
        config
    }

    fn set_client_properties(&self, config: &mut ClientConfig, client_id: &str) {
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id)
            .set("log_level", "4");
        for (property, value) in &self.client_properties {
            config.set(property, value);
        }
    }

    /// The idempotent producer every service uses: `acks=all`,
    /// `enable.idempotence=true` (which keeps per-partition order across
    /// retries), and no linger: the relay hands a whole round to the
    /// producer at once, so a round's records travel together without a
    /// wait, and at 50 orders/s a linger of 5 ms made an order's four hops
    /// take 36 ms at the median instead of 12 (`oms bench --rate 50`).
    /// `OMS_KAFKA_*` properties override the tuning (`linger.ms`,
    /// `compression.type`, `message.timeout.ms`), never the two guarantees.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn producer(&self, client_id: &str) -> anyhow::Result<FutureProducer> {
        Ok(self.producer_config(client_id).create()?)
    }

    /// The replication factor and `min.insync.replicas` of the topics this
    /// service creates on a cluster of `brokers`: as configured, else the
    /// brokers (at most 3) and 2 from 3 replicas on (else 1), so that one
    /// broker of three may be down while every write still reaches two.
    ///
    /// # Errors
    /// A [`ConfigurationError`] when `min.insync.replicas` is not between
    /// 1 and the replication factor: no write could ever succeed.
    pub fn replication(&self, brokers: usize) -> Result<(i32, i32), ConfigurationError> {
        let factor = self
            .replication_factor
            .unwrap_or_else(|| i32::try_from(brokers.clamp(1, 3)).unwrap_or(3));
        let min_insync = self
            .min_insync_replicas
            .unwrap_or(if factor >= 3 { 2 } else { 1 });
        if !(1..=factor).contains(&min_insync) {
            return Err(ConfigurationError {
                property: None,
                variable: Some("OMS_TOPIC_MIN_INSYNC_REPLICAS".into()),
                message: format!(
                    "min.insync.replicas {min_insync} is not between 1 and the replication \
                     factor {factor}: no write could succeed"
                ),
            });
        }
        Ok((factor, min_insync))
    }

    fn producer_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("linger.ms", "0")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "60000");
        // Not through `ClientConfig::config_map`: that view replaces
        // `sasl.password` with a placeholder, and a producer built from it
        // signs in with the placeholder.
        self.set_client_properties(&mut config, client_id);
        config.set("enable.idempotence", "true").set("acks", "all");
        config
    }
}

/// Collects the properties of `OMS_KAFKA_*` variables, telling `problem`
/// about each one it leaves out.
fn collect_properties(
    vars: impl IntoIterator<Item = (String, String)>,
    problem: &mut dyn FnMut(ConfigurationError),
) -> Vec<(String, String)> {
    let mut direct = HashMap::new();
    let mut from_files = Vec::new();
    for (name, value) in vars {
        if NOT_PROPERTIES.contains(&name.as_str()) {
            continue;
        }
        let Some(rest) = name.strip_prefix("OMS_KAFKA_").filter(|r| !r.is_empty()) else {
            continue;
        };
        match rest.strip_suffix(FILE_SUFFIX).filter(|r| !r.is_empty()) {
            Some(property) => from_files.push((property.to_owned(), name.clone(), value)),
            None => {
                direct.insert(rest.to_ascii_lowercase().replace('_', "."), value);
            }
        }
    }
    for (rest, variable, path) in from_files {
        let property = rest.to_ascii_lowercase().replace('_', ".");
        let error = |message: String| ConfigurationError {
            property: Some(property.clone()),
            variable: Some(variable.clone()),
            message,
        };
        if direct.contains_key(&property) {
            problem(error(format!(
                "set either OMS_KAFKA_{rest} or {variable}, not both"
            )));
            direct.remove(&property);
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(content) => {
                direct.insert(property, content.trim_end_matches(['\r', '\n']).to_owned());
            }
            Err(e) => problem(error(format!("cannot read {path}: {e}"))),
        }
    }
    let mut properties: Vec<(String, String)> = direct.into_iter().collect();
    properties.sort();
    properties
}

/// [`ensure_topics_retaining`] with dead letters kept
/// [`DEFAULT_DEAD_LETTER_RETENTION_HOURS`].
///
/// # Errors
/// As [`ensure_topics_retaining`].
pub async fn ensure_topics(settings: &KafkaSettings, topics: &[Topic]) -> Result<(), TopicsError> {
    let retention = Duration::from_secs(DEFAULT_DEAD_LETTER_RETENTION_HOURS * 3600);
    ensure_topics_retaining(settings, topics, retention).await
}

/// Creates `topics` and their dead-letter topics if they do not exist yet.
/// Idempotent: a topic that already exists is left as it is, except that a
/// dead-letter topic's `retention.ms` is set to `dead_letter_retention`
/// when it differs (its other topic settings are kept). The catalog topic
/// is compacted; every other topic uses time-based retention.
///
/// # Errors
/// [`TopicsError::Configuration`] at once when librdkafka refuses the
/// client configuration; [`TopicsError::Unreachable`] when the broker does
/// not answer within a few seconds; [`TopicsError::Refused`] when it
/// refuses a creation for another reason than the topic existing already.
pub async fn ensure_topics_retaining(
    settings: &KafkaSettings,
    topics: &[Topic],
    dead_letter_retention: Duration,
) -> Result<(), TopicsError> {
    settings.validate()?;
    probe(settings).await?;
    // Before any other client: a refused one would log its failure too.
    let brokers = check_access(settings).await?;
    let (replication_factor, min_insync_replicas) = settings.replication(brokers)?;
    let min_insync_replicas = min_insync_replicas.to_string();
    let admin: AdminClient<DefaultClientContext> = settings
        .client_config("oms-admin")
        .create()
        .map_err(|e| settings.configuration_error(&e))?;
    let retention_ms = dead_letter_retention.as_millis().to_string();
    let mut names = Vec::new();
    for &topic in topics {
        names.push((settings.topics.name(topic), topic.is_compacted(), false));
        names.push((settings.topics.dead_letter(topic), false, true));
    }
    let new_topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|(name, compacted, dead_letters)| {
            let topic = NewTopic::new(
                name,
                settings.partitions,
                TopicReplication::Fixed(replication_factor),
            )
            .set("min.insync.replicas", &min_insync_replicas);
            match (compacted, dead_letters) {
                (true, _) => topic.set("cleanup.policy", "compact"),
                (_, true) => topic.set("retention.ms", &retention_ms),
                _ => topic,
            }
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    let unreachable = |e: KafkaError| TopicsError::Unreachable {
        bootstrap: settings.bootstrap_servers.clone(),
        reason: e.to_string(),
    };
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(unreachable)?;
    let mut existing_dead_letter_topics = Vec::new();
    for result in results {
        match result {
            Ok(_) => {}
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                if names.iter().any(|(n, _, dl)| *dl && *n == name) {
                    existing_dead_letter_topics.push(name);
                }
            }
            Err((topic, code)) => {
                return Err(TopicsError::Refused {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    for topic in existing_dead_letter_topics {
        keep_retention(&admin, &options, &topic, &retention_ms)
            .await
            .map_err(|e| TopicsError::Refused {
                topic: topic.clone(),
                reason: format!("setting retention.ms: {e}"),
            })?;
    }
    Ok(())
}

/// Sets `topic`'s `retention.ms` when it differs, keeping its other
/// topic-level settings (altering configs replaces them all).
async fn keep_retention(
    admin: &AdminClient<DefaultClientContext>,
    options: &AdminOptions,
    topic: &str,
    retention_ms: &str,
) -> Result<(), KafkaError> {
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], options)
        .await?;
    let Some(Ok(resource)) = described.into_iter().next() else {
        return Ok(());
    };
    if resource
        .get("retention.ms")
        .and_then(|e| e.value.as_deref())
        == Some(retention_ms)
    {
        return Ok(());
    }
    let kept: Vec<(String, String)> = resource
        .entries
        .iter()
        .filter(|e| e.source == ConfigSource::DynamicTopic && e.name != "retention.ms")
        .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
        .collect();
    let mut alter =
        AlterConfig::new(ResourceSpecifier::Topic(topic)).set("retention.ms", retention_ms);
    for (name, value) in &kept {
        alter = alter.set(name, value);
    }
    for result in admin.alter_configs(&[alter], options).await? {
        result.map_err(|(_, code)| KafkaError::AdminOp(code))?;
    }
    tracing::info!(topic, retention_ms, "dead-letter retention set");
    Ok(())
}

/// Whether the consumer group `group` has applied (committed past) every
/// record of `topic` that the broker stamped before `cutoff`: per
/// partition, the first offset at or after `cutoff` (or the end of the
/// partition, when every record is older) is at most the group's
/// committed offset. What a participant asks before it gives back a hold
/// nobody decided: a decision published before the cutoff has then been
/// seen, so a broker outage or a consumer that lags never expires a hold
/// whose order was decided in time.
///
/// # Errors
/// When the broker cannot be asked (an outage: the caller waits).
pub async fn applied_everything_before(
    settings: &KafkaSettings,
    group: &str,
    topic: Topic,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<bool> {
    use rdkafka::consumer::Consumer;
    use rdkafka::{Offset, TopicPartitionList};
    let name = settings.topics.name(topic);
    let consumer: BaseConsumer = settings
        .client_config(&format!("{group}-watermark"))
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let cutoff_ms = cutoff.timestamp_millis();
    tokio::task::spawn_blocking(move || -> anyhow::Result<bool> {
        let timeout = Duration::from_secs(5);
        let metadata = consumer.fetch_metadata(Some(&name), timeout)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        anyhow::ensure!(!partitions.is_empty(), "topic {name} has no partitions");
        let mut at_cutoff = TopicPartitionList::new();
        let mut all = TopicPartitionList::new();
        for &partition in &partitions {
            at_cutoff.add_partition_offset(&name, partition, Offset::Offset(cutoff_ms))?;
            all.add_partition(&name, partition);
        }
        let first_after = consumer.offsets_for_times(at_cutoff, timeout)?;
        let committed = consumer.committed_offsets(all, timeout)?;
        for &partition in &partitions {
            let needed = match first_after
                .find_partition(&name, partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(offset)) => offset,
                // No record at or after the cutoff: all of them are older.
                _ => consumer.fetch_watermarks(&name, partition, timeout)?.1,
            };
            let applied = match committed
                .find_partition(&name, partition)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(offset)) => offset,
                _ => 0,
            };
            if applied < needed {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?
}

/// Connects with the client configuration and asks for the cluster's
/// metadata, telling a broker that refuses this client from one that does
/// not answer: a SASL authentication failure (a wrong user name or
/// password, a mechanism the broker does not offer) or a TLS failure (a
/// certificate the client does not trust, or not for the broker's name)
/// is a [`ConfigurationError`] in one line, since waiting will not fix it.
///
/// Answers how many brokers the cluster has.
///
/// # Errors
/// [`TopicsError::Configuration`] when the broker refused the client;
/// [`TopicsError::Unreachable`] when no metadata came within 10 s.
pub async fn check_access(settings: &KafkaSettings) -> Result<usize, TopicsError> {
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || check_access_blocking(&settings))
        .await
        .map_err(|e| TopicsError::Unreachable {
            bootstrap: String::new(),
            reason: format!("the access check panicked: {e}"),
        })?
}

/// [`check_access`] for callers without a runtime (the operator's tools).
///
/// # Errors
/// As [`check_access`].
pub fn check_access_blocking(settings: &KafkaSettings) -> Result<usize, TopicsError> {
    let client: BaseProducer<RefusalWatch> = settings
        .client_config("oms-access-check")
        .create_with_context(RefusalWatch::default())
        .map_err(|e| settings.configuration_error(&e))?;
    let started = std::time::Instant::now();
    loop {
        // Serves the client's error events into the watch.
        client.poll(Duration::from_millis(100));
        if let Some(reason) = client.context().refusal() {
            return Err(ConfigurationError {
                property: None,
                variable: None,
                message: format!(
                    "Kafka at {} refused this client: {reason} (check OMS_KAFKA_SASL_USERNAME, \
                     OMS_KAFKA_SASL_PASSWORD, OMS_KAFKA_SASL_MECHANISM and \
                     OMS_KAFKA_SSL_CA_LOCATION)",
                    settings.bootstrap_servers
                ),
            }
            .into());
        }
        match client
            .client()
            .fetch_metadata(None, Duration::from_millis(500))
        {
            Ok(metadata) if !metadata.brokers().is_empty() => return Ok(metadata.brokers().len()),
            result if started.elapsed() > ACCESS_TIMEOUT => {
                return Err(TopicsError::Unreachable {
                    bootstrap: settings.bootstrap_servers.clone(),
                    reason: match result {
                        Err(error) => error.to_string(),
                        Ok(_) => "the broker named no brokers".to_owned(),
                    },
                });
            }
            _ => {}
        }
    }
}

/// Keeps the first refusal a client hears of (an authentication or TLS
/// error, which the client library would otherwise retry for ever).
#[derive(Default)]
struct RefusalWatch {
    first_refusal: std::sync::Mutex<Option<String>>,
}

impl RefusalWatch {
    /// The first refusal's reason, if there was one.
    fn refusal(&self) -> Option<String> {
        self.first_refusal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl ClientContext for RefusalWatch {
    // The refusal is reported once, as an error of the check; the
    // client library's own lines about it would repeat it.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(
            ?level,
            facility,
            message,
            "Kafka client during the access check"
        );
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let refused = matches!(
            error.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL)
        );
        if refused {
            self.first_refusal
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get_or_insert_with(|| reason.to_owned());
        } else {
            tracing::debug!(error = %error, reason, "Kafka client error during the access check");
        }
    }
}

impl ProducerContext for RefusalWatch {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, (): ()) {}
}

/// Opens a TCP connection to each bootstrap server, briefly, until one
/// accepts: none accepting means the broker cannot be reached. (A metadata
/// request is no probe: librdkafka restarts its wait whenever a refused
/// connection changes the broker's state, so it can outlast its timeout.)
async fn probe(settings: &KafkaSettings) -> Result<(), TopicsError> {
    let mut reason = String::from("no bootstrap server given");
    for server in settings.bootstrap_servers.split(',').map(str::trim) {
        let address = server
            .strip_prefix("PLAINTEXT://")
            .or_else(|| server.strip_prefix("SSL://"))
            .or_else(|| server.strip_prefix("SASL_SSL://"))
            .or_else(|| server.strip_prefix("SASL_PLAINTEXT://"))
            .unwrap_or(server);
        match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) => reason = format!("{address}: {error}"),
            Err(_) => reason = format!("{address}: no answer within {} s", PROBE_TIMEOUT.as_secs()),
        }
    }
    Err(TopicsError::Unreachable {
        bootstrap: settings.bootstrap_servers.clone(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_with(client_properties: Vec<(String, String)>) -> KafkaSettings {
        KafkaSettings {
            bootstrap_servers: "broker:9093".into(),
            topics: TopicNames::new(String::new()),
            partitions: 1,
            replication_factor: None,
            min_insync_replicas: None,
            client_properties,
        }
    }

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
        let settings = settings_with(KafkaSettings::properties_from_env(vars));
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

    #[test]
    fn topics_replicate_to_three_brokers_with_two_in_sync_unless_configured() {
        let mut settings = settings_with(Vec::new());
        assert_eq!(settings.replication(1).unwrap(), (1, 1));
        assert_eq!(settings.replication(2).unwrap(), (2, 1));
        assert_eq!(settings.replication(3).unwrap(), (3, 2));
        assert_eq!(settings.replication(9).unwrap(), (3, 2));
        settings.replication_factor = Some(5);
        assert_eq!(settings.replication(9).unwrap(), (5, 2));
        settings.min_insync_replicas = Some(6);
        let refused = settings.replication(9).unwrap_err();
        assert_eq!(
            refused.variable.as_deref(),
            Some("OMS_TOPIC_MIN_INSYNC_REPLICAS")
        );
    }

    #[test]
    fn the_producer_signs_in_with_the_configured_password() {
        let settings = settings_with(vec![
            ("sasl.username".into(), "order-svc".into()),
            ("sasl.password".into(), "s3cret".into()),
        ]);
        let config = settings.producer_config("test");
        assert_eq!(config.get("sasl.password"), Some("s3cret"));
        assert_eq!(config.get("acks"), Some("all"));
    }
}
