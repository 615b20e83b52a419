//! `oms tail` (a topic's records, from a point, as they arrive) and
//! `oms events --order` (one order's records across every topic).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use events::RawEnvelope;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use rdkafka::{Message, Offset, Timestamp, TopicPartitionList};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    Connection, TIMEOUT, all_headers, all_topics, client, partitions, read_ranges, resolve_topic,
};

/// Where reading starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum From {
    /// The oldest stored record.
    Beginning,
    /// Only records written from now on.
    End,
    /// This offset of every partition.
    Offset(i64),
    /// The first record at or after this time.
    Time(DateTime<Utc>),
}

impl std::str::FromStr for From {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "beginning" => Ok(Self::Beginning),
            "end" => Ok(Self::End),
            _ => {
                if let Some(offset) = s.strip_prefix("offset:") {
                    return offset
                        .parse()
                        .map(Self::Offset)
                        .map_err(|e| format!("offset: {e}"));
                }
                DateTime::parse_from_rfc3339(s)
                    .map(|t| Self::Time(t.with_timezone(&Utc)))
                    .map_err(|_| {
                        format!("{s:?}: expected beginning, end, offset:N or an RFC 3339 time")
                    })
            }
        }
    }
}

/// Options of `oms tail`.
#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// The topic: `orders`, `inventory`, `customers`, `catalog`, `<topic>.dlq`, or a full name.
    #[arg(long)]
    pub topic: String,
    /// Only this order's (or product's) records.
    #[arg(long)]
    pub order: Option<Uuid>,
    /// beginning, end, offset:N, or an RFC 3339 time.
    #[arg(long, default_value = "end")]
    pub from: From,
    /// Stop at the end offsets seen at start instead of waiting for more.
    #[arg(long)]
    pub no_follow: bool,
    /// The connection.
    #[command(flatten)]
    pub connection: Connection,
}

/// A record, as printed.
pub fn describe(message: &OwnedMessage) -> Value {
    let payload = message.payload().unwrap_or_default();
    let value: Value = serde_json::from_slice(payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
    let time = match message.timestamp() {
        Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => {
            DateTime::from_timestamp_millis(ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        }
        Timestamp::NotAvailable => None,
    };
    json!({
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "time": time,
        "key": message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        "headers": all_headers(message)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect::<serde_json::Map<_, _>>(),
        "value": value,
    })
}

/// A record as `oms tail` shows it: one JSON line, or a short human block. Every text taken from the record (key,
/// headers, type) has its control characters escaped, so that a forged
/// record cannot drive the operator's terminal; the payload is JSON, which
/// escapes them itself.
pub fn render(record: &Value, as_json: bool) -> String {
    if as_json {
        return record.to_string();
    }
    let text = |value: &Value| super::escape_control(value.as_str().unwrap_or("-"));
    let event_type = record["value"]["event_type"]
        .as_str()
        .map_or_else(|| "(not an event)".to_owned(), super::escape_control);
    let mut out = format!(
        "{} {}[{}]@{} {} key={}",
        text(&record["time"]),
        text(&record["topic"]),
        record["partition"],
        record["offset"],
        event_type,
        text(&record["key"]),
    );
    if let Some(headers) = record["headers"].as_object().filter(|h| !h.is_empty()) {
        let pairs: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{}={}", super::escape_control(k), text(v)))
            .collect();
        out.push_str(&format!("\n  headers: {}", pairs.join(" ")));
    }
    let payload = record["value"].get("payload").unwrap_or(&record["value"]);
    out.push_str(&format!("\n  {payload}"));
    out
}

/// Follows (or reads up to the current end of) a topic, calling `each` for
/// every matching record; returns how many matched.
///
/// # Errors
/// Broker errors, or an unknown topic.
pub fn tail(args: &TailArgs, mut each: impl FnMut(&Value)) -> anyhow::Result<u64> {
    let kafka = args.connection.checked_kafka()?;
    let topic = resolve_topic(&kafka.topics, &args.topic);
    let client = client(&kafka)?;
    let ids = partitions(&client, &topic)?;
    let consumer: BaseConsumer = kafka
        .client_config("oms-cli-tail")
        .set("group.id", format!("oms-cli-{}", Uuid::now_v7()))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for &partition in &ids {
        let (_, high) = client.fetch_watermarks(&topic, partition, TIMEOUT)?;
        ends.insert(partition, high);
        let start = match &args.from {
            From::Beginning => Offset::Beginning,
            From::End => Offset::End,
            From::Offset(offset) => Offset::Offset(*offset),
            From::Time(_) => Offset::Beginning,
        };
        assignment.add_partition_offset(&topic, partition, start)?;
    }
    if let From::Time(time) = &args.from {
        let mut by_time = TopicPartitionList::new();
        for &partition in &ids {
            by_time.add_partition_offset(
                &topic,
                partition,
                Offset::Offset(time.timestamp_millis()),
            )?;
        }
        assignment = consumer.offsets_for_times(by_time, TIMEOUT)?;
    }
    consumer.assign(&assignment)?;
    let key = args.order.map(|id| id.to_string());
    let mut matched = 0u64;
    let mut positions: std::collections::HashMap<i32, i64> = std::collections::HashMap::new();
    let mut last_record = Instant::now();
    loop {
        if args.no_follow {
            let caught_up = ids.iter().all(|p| {
                let end = ends.get(p).copied().unwrap_or(0);
                end == 0
                    || positions.get(p).is_some_and(|&next| next >= end)
                    || matches!(args.from, From::End)
            });
            if caught_up || last_record.elapsed() > Duration::from_secs(5) {
                return Ok(matched);
            }
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                last_record = Instant::now();
                positions.insert(message.partition(), message.offset() + 1);
                let message = message.detach();
                if key
                    .as_deref()
                    .is_none_or(|k| message.key() == Some(k.as_bytes()))
                {
                    matched += 1;
                    each(&describe(&message));
                }
            }
            Some(Err(error)) => return Err(error.into()),
            None => {}
        }
    }
}

/// Options of `oms events`.
#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    /// The order.
    #[arg(long)]
    pub order: Uuid,
    /// The connection.
    #[command(flatten)]
    pub connection: Connection,
}

/// One order's records from every topic (dead letters included), in the
/// order they happened.
///
/// # Errors
/// Broker errors.
pub fn order_events(args: &EventsArgs) -> anyhow::Result<Vec<Value>> {
    let kafka = args.connection.checked_kafka()?;
    let client = client(&kafka)?;
    let mut ranges = Vec::new();
    for topic in all_topics(&kafka.topics) {
        let Ok(ids) = partitions(&client, &topic) else {
            continue;
        };
        for partition in ids {
            let (low, high) = client.fetch_watermarks(&topic, partition, TIMEOUT)?;
            ranges.push((topic.clone(), partition, low, high));
        }
    }
    let key = args.order.to_string();
    let mut found = Vec::new();
    read_ranges(&kafka, &ranges, |message| {
        if message.key() == Some(key.as_bytes()) {
            found.push(describe(&message));
        }
        Ok(())
    })?;
    let occurred = |record: &Value| {
        serde_json::from_value::<RawEnvelope>(record["value"].clone())
            .map(|e| e.occurred_at.to_rfc3339())
            .unwrap_or_else(|_| record["time"].as_str().unwrap_or_default().to_owned())
    };
    found.sort_by_key(|record| occurred(record));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn control_characters_of_a_forged_record_are_escaped() {
        let forged = json!({
            "topic": "orders\u{1b}]0;owned\u{7}",
            "partition": 0,
            "offset": 1,
            "time": "2026-12-01T00:00:00.000Z",
            "key": "\u{1b}[2J\u{1b}[31mkey",
            "headers": {"event_type\u{1b}[8m": "\u{1b}[1mOrderPlaced"},
            "value": {"event_type": "Order\u{1b}[5mPlaced", "payload": {"note": "\u{1b}[31m"}},
        });
        let shown = super::render(&forged, false);
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(
            shown.contains("\\u{1b}[2J"),
            "escaped, not dropped: {shown}"
        );
        let as_json = super::render(&forged, true);
        assert!(!as_json.chars().any(char::is_control), "{as_json:?}");
    }
}
