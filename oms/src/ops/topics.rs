//! `oms topics`: every topic with its partitions and end offsets, and every
//! consumer group's committed offset and lag per partition.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::{Connection, TIMEOUT, all_topics, client, partitions};

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionOffsets {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The first offset still stored.
    pub low: i64,
    /// The next offset to be written (end offset).
    pub high: i64,
}

/// A group's position on one partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GroupLag {
    /// The consumer group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Its committed offset.
    pub committed: i64,
    /// The partition's end offset.
    pub high: i64,
    /// Records not consumed yet.
    pub lag: i64,
}

/// The report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Topic partitions.
    pub partitions: Vec<PartitionOffsets>,
    /// Group positions.
    pub lag: Vec<GroupLag>,
}

/// Reads offsets and lag from the broker.
///
/// # Errors
/// Broker errors.
pub fn report(connection: &Connection) -> anyhow::Result<Report> {
    let kafka = connection.checked_kafka()?;
    let client = client(&kafka)?;
    let mut offsets = Vec::new();
    for topic in all_topics(&kafka.topics) {
        let Ok(ids) = partitions(&client, &topic) else {
            continue;
        };
        for partition in ids {
            let (low, high) = client.fetch_watermarks(&topic, partition, TIMEOUT)?;
            offsets.push(PartitionOffsets {
                topic: topic.clone(),
                partition,
                low,
                high,
            });
        }
    }
    let groups = client.fetch_group_list(None, TIMEOUT)?;
    let mut lag = Vec::new();
    for group in groups.groups() {
        if !group.name().starts_with(&connection.topic_prefix)
            || group.name().starts_with("oms-cli")
        {
            continue;
        }
        let member: BaseConsumer = kafka
            .client_config("oms-cli-lag")
            .set("group.id", group.name())
            .create()?;
        let mut list = TopicPartitionList::new();
        for p in &offsets {
            list.add_partition(&p.topic, p.partition);
        }
        for element in member.committed_offsets(list, TIMEOUT)?.elements() {
            if let Offset::Offset(committed) = element.offset() {
                let high = offsets
                    .iter()
                    .find(|p| p.topic == element.topic() && p.partition == element.partition())
                    .map_or(committed, |p| p.high);
                lag.push(GroupLag {
                    group: group.name().to_owned(),
                    topic: element.topic().to_owned(),
                    partition: element.partition(),
                    committed,
                    high,
                    lag: (high - committed).max(0),
                });
            }
        }
    }
    Ok(Report {
        partitions: offsets,
        lag,
    })
}

/// Prints the report as text.
pub fn print(report: &Report) {
    println!(
        "{:<40} {:>9} {:>12} {:>12}",
        "TOPIC", "PARTITION", "LOW", "END"
    );
    for p in &report.partitions {
        println!(
            "{:<40} {:>9} {:>12} {:>12}",
            p.topic, p.partition, p.low, p.high
        );
    }
    println!();
    println!(
        "{:<32} {:<32} {:>9} {:>10} {:>10} {:>8}",
        "GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"
    );
    for l in &report.lag {
        println!(
            "{:<32} {:<32} {:>9} {:>10} {:>10} {:>8}",
            l.group, l.topic, l.partition, l.committed, l.high, l.lag
        );
    }
    let total: i64 = report.lag.iter().map(|l| l.lag).sum();
    println!(
        "\n{} topic partitions, {} group positions, total lag {total}",
        report.partitions.len(),
        report.lag.len()
    );
}
