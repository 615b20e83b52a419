//! `oms dlq list|show|replay`: the dead letters of every topic, and their
//! re-publication to the topic they came from. A letter goes back only to
//! the topic its dead-letter topic belongs to (`orders.dlq` to `orders`):
//! one whose `dlq.original_topic` header names another topic is refused and
//! reported, never published there. `oms dlq list` first says how long
//! each dead-letter topic keeps its records (`OMS_DLQ_RETENTION_HOURS`, set
//! by the services when they start). A re-published record keeps
//! its key, value and original headers, gains an `oms.replayed_at` header,
//! and loses the `dlq.*` ones; if it fails again, its consumer dead-letters
//! it again, so nothing is lost. A dead letter of a record too large to
//! copy carries no value and is skipped (counted as such); re-read the
//! original at its coordinates (`oms tail`). Consumers are idempotent, so re-driving a
//! record that was in fact processed changes nothing.

use std::time::Duration;

use events::headers;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use serde_json::{Value, json};

use super::{
    Connection, TIMEOUT, all_headers, client, header, partitions, read_ranges, resolve_topic,
};
use crate::ops::tail::describe;

/// Which dead letters.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Selection {
    /// Only the dead letters of this topic (`orders`, `inventory`, …).
    #[arg(long)]
    pub topic: Option<String>,
    /// Only this one: `<partition>:<offset>` in the dead-letter topic (needs --topic).
    #[arg(long)]
    pub at: Option<String>,
    /// Only records with this key (order or product id).
    #[arg(long)]
    pub key: Option<String>,
    /// Only records that failed with this error code (e.g. `HANDLER_REJECTED`).
    #[arg(long)]
    pub code: Option<String>,
}

impl Selection {
    /// Whether no selector narrows the choice: every dead letter of every
    /// topic.
    pub fn is_everything(&self) -> bool {
        self.topic.is_none() && self.at.is_none() && self.key.is_none() && self.code.is_none()
    }
}

/// A dead letter, summarized.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadLetter {
    /// Where it is: the dead-letter topic.
    pub dlq_topic: String,
    /// Its partition there.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Its key.
    pub key: Option<String>,
    /// The topic it was read from.
    pub original_topic: Option<String>,
    /// The consumer group that gave up on it.
    pub consumer_group: Option<String>,
    /// The error code.
    pub code: Option<String>,
    /// The error.
    pub error: Option<String>,
    /// When it was dead-lettered.
    pub failed_at: Option<String>,
    /// Its event type, if it has one.
    pub event_type: Option<String>,
}

/// Every selected dead letter, with its record.
///
/// # Errors
/// Broker errors, or a malformed `--at`.
pub fn select(
    connection: &Connection,
    selection: &Selection,
) -> anyhow::Result<Vec<(DeadLetter, OwnedMessage)>> {
    let kafka = connection.checked_kafka()?;
    let client = client(&kafka)?;
    let topics = dead_letter_topics(connection, selection);
    let at = match &selection.at {
        Some(at) => {
            let (partition, offset) = at
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("--at takes <partition>:<offset>"))?;
            Some((partition.parse::<i32>()?, offset.parse::<i64>()?))
        }
        None => None,
    };
    let mut ranges = Vec::new();
    for topic in &topics {
        let Ok(ids) = partitions(&client, topic) else {
            continue;
        };
        for partition in ids {
            let (low, high) = client.fetch_watermarks(topic, partition, TIMEOUT)?;
            match at {
                Some((p, offset)) if p == partition => {
                    ranges.push((topic.clone(), partition, offset, offset + 1))
                }
                Some(_) => {}
                None => ranges.push((topic.clone(), partition, low, high)),
            }
        }
    }
    let mut found = Vec::new();
    read_ranges(&kafka, &ranges, |message| {
        let letter = DeadLetter {
            dlq_topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            original_topic: header(&message, headers::DLQ_ORIGINAL_TOPIC),
            consumer_group: header(&message, headers::DLQ_CONSUMER_GROUP),
            code: header(&message, headers::DLQ_ERROR_CODE),
            error: header(&message, headers::DLQ_ERROR),
            failed_at: header(&message, headers::DLQ_FAILED_AT),
            event_type: header(&message, headers::EVENT_TYPE),
        };
        let wanted = selection
            .key
            .as_ref()
            .is_none_or(|k| letter.key.as_ref() == Some(k))
            && selection
                .code
                .as_ref()
                .is_none_or(|c| letter.code.as_ref() == Some(c));
        if wanted {
            found.push((letter, message));
        }
        Ok(())
    })?;
    Ok(found)
}

/// How long the broker keeps the records of a dead-letter topic.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TopicRetention {
    /// The dead-letter topic.
    pub dlq_topic: String,
    /// Its `retention.ms` in hours; `None` when it keeps them for ever
    /// (`-1`) or the broker did not say.
    pub retention_hours: Option<u64>,
}

impl std::fmt::Display for TopicRetention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.retention_hours {
            Some(hours) => write!(
                f,
                "{} keeps dead letters {hours} h ({} days; OMS_DLQ_RETENTION_HOURS)",
                super::escape_control(&self.dlq_topic),
                hours / 24
            ),
            None => write!(
                f,
                "{} keeps dead letters for ever",
                super::escape_control(&self.dlq_topic)
            ),
        }
    }
}

/// The dead-letter topics [`select`] reads.
fn dead_letter_topics(connection: &Connection, selection: &Selection) -> Vec<String> {
    let kafka = connection.kafka();
    match &selection.topic {
        Some(topic) => {
            let name = resolve_topic(&kafka.topics, topic);
            vec![if name.ends_with(events::topics::DEAD_LETTER_SUFFIX) {
                name
            } else {
                format!("{name}{}", events::topics::DEAD_LETTER_SUFFIX)
            }]
        }
        None => events::Topic::ALL
            .iter()
            .map(|&t| kafka.topics.dead_letter(t))
            .collect(),
    }
}

/// The retention of the selected dead-letter topics, as the broker has it;
/// topics that do not exist are left out.
///
/// # Errors
/// When the client cannot be created or the broker does not answer.
pub async fn retention(
    connection: &Connection,
    selection: &Selection,
) -> anyhow::Result<Vec<TopicRetention>> {
    let kafka = connection.checked_kafka_async().await?;
    let admin: AdminClient<DefaultClientContext> = kafka.client_config("oms-cli-admin").create()?;
    let topics = dead_letter_topics(connection, selection);
    let specifiers: Vec<ResourceSpecifier<'_>> =
        topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(TIMEOUT));
    let described = admin.describe_configs(&specifiers, &options).await?;
    Ok(topics
        .iter()
        .zip(described)
        .filter_map(|(topic, resource)| {
            let resource = resource.ok()?;
            let millis = resource
                .get("retention.ms")
                .and_then(|e| e.value.as_deref())
                .and_then(|v| v.parse::<i64>().ok());
            Some(TopicRetention {
                dlq_topic: topic.clone(),
                retention_hours: millis
                    .and_then(|ms| u64::try_from(ms).ok())
                    .map(|ms| ms / 3_600_000),
            })
        })
        .collect())
}

/// A dead letter as `oms dlq list` shows it, with the control characters
/// of everything taken from the record escaped.
pub fn render(letter: &DeadLetter, as_json: bool) -> String {
    if as_json {
        return json!(letter).to_string();
    }
    let text = |value: &Option<String>| super::escape_control(value.as_deref().unwrap_or("-"));
    format!(
        "{}[{}]@{} {} key={} from={} code={} at={}\n  {}",
        super::escape_control(&letter.dlq_topic),
        letter.partition,
        letter.offset,
        text(&letter.event_type),
        text(&letter.key),
        text(&letter.original_topic),
        text(&letter.code),
        text(&letter.failed_at),
        text(&letter.error),
    )
}

/// One dead letter, whole: headers and value.
pub fn show(letter: &(DeadLetter, OwnedMessage)) -> Value {
    describe(&letter.1)
}

/// What a replay did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReplaySummary {
    /// Whether nothing was re-published (the plan only).
    pub dry_run: bool,
    /// Records re-published (or, in a dry run, that would be).
    pub replayed: usize,
    /// In a dry run, each letter that would be re-published, and where to.
    pub planned: Vec<Planned>,
    /// Records skipped because their original topic is unknown.
    pub skipped: usize,
    /// Records not re-published because their `dlq.original_topic` header
    /// names another topic than the one their dead-letter topic belongs to.
    pub refused: Vec<Refused>,
}

/// A dead letter a dry run of [`replay`] would re-publish.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Planned {
    /// Its dead-letter topic.
    pub dlq_topic: String,
    /// Its partition there.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// Its key.
    pub key: Option<String>,
    /// The topic it would go back to.
    pub to: String,
}

impl std::fmt::Display for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}[{}]@{} key={} -> {}",
            super::escape_control(&self.dlq_topic),
            self.partition,
            self.offset,
            super::escape_control(self.key.as_deref().unwrap_or("-")),
            super::escape_control(&self.to),
        )
    }
}

/// A dead letter [`replay`] refused to re-publish.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Refused {
    /// Its dead-letter topic.
    pub dlq_topic: String,
    /// Its partition there.
    pub partition: i32,
    /// Its offset there.
    pub offset: i64,
    /// The topic its `dlq.original_topic` header names.
    pub named: String,
    /// The only topic a letter of `dlq_topic` may go back to.
    pub allowed: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused {}[{}]@{}: its dlq.original_topic names {}, but a dead letter of {} goes back to {} only",
            super::escape_control(&self.dlq_topic),
            self.partition,
            self.offset,
            super::escape_control(&self.named),
            super::escape_control(&self.dlq_topic),
            super::escape_control(&self.allowed),
        )
    }
}

/// The topic the dead letters of `dlq_topic` came from: its name without
/// the dead-letter suffix. The header of a letter is data anyone who can
/// write to a dead-letter topic controls; the topic it sits in is not.
pub fn original_topic_of(dlq_topic: &str) -> Option<&str> {
    dlq_topic
        .strip_suffix(events::topics::DEAD_LETTER_SUFFIX)
        .filter(|name| !name.is_empty())
}

/// Re-publishes the selected dead letters to their original topics. A
/// letter goes back only to the topic its dead-letter topic belongs to
/// (`orders.dlq` to `orders`); one whose `dlq.original_topic` header names
/// another topic is refused and listed in [`ReplaySummary::refused`].
///
/// # Errors
/// Broker errors; records published before the error stay published.
pub async fn replay(
    connection: &Connection,
    selection: &Selection,
    dry_run: bool,
) -> anyhow::Result<ReplaySummary> {
    let connection_for_select = connection.clone();
    let selection = selection.clone();
    let letters =
        tokio::task::spawn_blocking(move || select(&connection_for_select, &selection)).await??;
    let kafka = connection.kafka();
    let producer: FutureProducer = kafka.producer("oms-cli-dlq-replay")?;
    let progress = ProgressBar::new(letters.len() as u64);
    progress.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} dead letters re-published, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = ReplaySummary {
        dry_run,
        ..ReplaySummary::default()
    };
    let replayed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for (letter, message) in &letters {
        // A letter without the original's value (it was too large to copy)
        // cannot be re-published; the original stays at its coordinates.
        let Some(original) = letter
            .original_topic
            .as_ref()
            .filter(|_| header(message, headers::DLQ_ORIGINAL_BYTES).is_none())
        else {
            summary.skipped += 1;
            progress.inc(1);
            continue;
        };
        let allowed = original_topic_of(&letter.dlq_topic);
        if allowed != Some(original.as_str()) {
            summary.refused.push(Refused {
                dlq_topic: letter.dlq_topic.clone(),
                partition: letter.partition,
                offset: letter.offset,
                named: original.clone(),
                allowed: allowed.unwrap_or("(none)").to_owned(),
            });
            progress.inc(1);
            continue;
        }
        if dry_run {
            summary.planned.push(Planned {
                dlq_topic: letter.dlq_topic.clone(),
                partition: letter.partition,
                offset: letter.offset,
                key: letter.key.clone(),
                to: original.clone(),
            });
        } else {
            let mut record_headers = OwnedHeaders::new();
            for (key, value) in all_headers(message)
                .iter()
                .filter(|(k, _)| !k.starts_with("dlq.") && k != headers::REPLAYED_AT)
            {
                record_headers = record_headers.insert(Header {
                    key,
                    value: Some(value.as_str()),
                });
            }
            record_headers = record_headers.insert(Header {
                key: headers::REPLAYED_AT,
                value: Some(replayed_at.as_str()),
            });
            let mut record: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(original).headers(record_headers);
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(payload) = message.payload() {
                record = record.payload(payload);
            }
            producer
                .send(record, Timeout::After(Duration::from_secs(30)))
                .await
                .map_err(|(e, _)| anyhow::anyhow!("re-publishing to {original}: {e}"))?;
        }
        summary.replayed += 1;
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::DeadLetter;

    #[test]
    fn control_characters_of_a_forged_dead_letter_are_escaped() {
        let forged = DeadLetter {
            dlq_topic: "orders.dlq".into(),
            partition: 0,
            offset: 3,
            key: Some("\u{1b}[2Jkey".into()),
            original_topic: Some("orders".into()),
            consumer_group: Some("g".into()),
            code: Some("INVALID_JSON\u{7}".into()),
            error: Some("bad \u{1b}]0;title\u{7}".into()),
            failed_at: None,
            event_type: Some("\u{1b}[31mOrderPlaced".into()),
        };
        for as_json in [false, true] {
            let shown = super::render(&forged, as_json);
            assert!(
                !shown.chars().any(|c| c.is_control() && c != '\n'),
                "{shown:?}"
            );
        }
    }
}
