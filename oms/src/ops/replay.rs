//! `oms replay`: re-drive a consumer group, or copy records.
//!
//! - `--reset-group G` moves group G's committed offsets back to the chosen
//!   point (of one partition or all), so that its service re-consumes from
//!   there when it (re)starts. A group with live members is refused unless
//!   `--force` (the broker itself refuses commits from outside a live group,
//!   so stop the service first).
//! - `--copy-to T` copies the chosen range (`--from-*` up to `--to-*`,
//!   excluding the end) to topic T, keys, values and headers intact, with an
//!   `oms.replayed_at` header. Copying a topic into itself re-drives every
//!   consumer of it.
//!
//! Every consumer is idempotent, so either way records already applied
//! change nothing; projections (order-svc's catalog copy and timelines)
//! rebuild what they lost.

use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use events::headers;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{Connection, TIMEOUT, all_headers, client, partitions, read_ranges, resolve_topic};

/// Options of `oms replay`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("start").required(true).args(["from_beginning", "from_offset", "from_time"])))]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["reset_group", "copy_to"])))]
pub struct ReplayArgs {
    /// The source topic (`orders`, `catalog`, …, or a full name).
    #[arg(long)]
    pub topic: String,
    /// Only this partition (default: all).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at the oldest stored record.
    #[arg(long)]
    pub from_beginning: bool,
    /// Start at this offset.
    #[arg(long)]
    pub from_offset: Option<i64>,
    /// Start at the first record at or after this time (RFC 3339).
    #[arg(long)]
    pub from_time: Option<DateTime<Utc>>,
    /// With --copy-to: stop before this offset.
    #[arg(long)]
    pub to_offset: Option<i64>,
    /// With --copy-to: stop before the first record at or after this time.
    #[arg(long)]
    pub to_time: Option<DateTime<Utc>>,
    /// Move this consumer group's committed offsets to the start point.
    #[arg(long)]
    pub reset_group: Option<String>,
    /// Copy the records to this topic.
    #[arg(long)]
    pub copy_to: Option<String>,
    /// Reset a group even while it has live members.
    #[arg(long)]
    pub force: bool,
    /// Print what would happen; change nothing.
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// With --reset-group: move the offsets (without it, only show how).
    #[arg(long)]
    pub execute: bool,
    /// The connection.
    #[command(flatten)]
    pub connection: Connection,
}

/// One partition's part of a replay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionPlan {
    /// The partition.
    pub partition: i32,
    /// First offset replayed.
    pub from: i64,
    /// Offset replay stops before (copy), or the end offset (reset).
    pub to: i64,
}

/// What a replay did (or, dry, would do).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplaySummary {
    /// `reset` or `copy`.
    pub mode: String,
    /// The source topic.
    pub topic: String,
    /// The group reset, or the topic copied to.
    pub target: String,
    /// Per partition.
    pub partitions: Vec<PartitionPlan>,
    /// Records that will be re-consumed (reset) or were copied.
    pub records: i64,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Live members of the group reset (a plan shows them; the reset
    /// itself is refused while there are any, unless `--force`).
    pub live_members: usize,
}

fn offsets_at(
    consumer: &BaseConsumer,
    topic: &str,
    ids: &[i32],
    time: DateTime<Utc>,
) -> anyhow::Result<Vec<(i32, Option<i64>)>> {
    let mut query = TopicPartitionList::new();
    for &partition in ids {
        query.add_partition_offset(topic, partition, Offset::Offset(time.timestamp_millis()))?;
    }
    let answer = consumer.offsets_for_times(query, TIMEOUT)?;
    Ok(answer
        .elements()
        .iter()
        .map(|e| {
            (
                e.partition(),
                match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                },
            )
        })
        .collect())
}

impl ReplayArgs {
    /// Whether this replay only shows its plan: `--dry-run`, or a group
    /// reset without `--execute` (a reset rewinds a service, so it is
    /// shown before it is done).
    pub fn plan_only(&self) -> bool {
        self.dry_run || (self.reset_group.is_some() && !self.execute)
    }
}

/// Plans and carries out the replay (only plans it when
/// [`plan_only`](ReplayArgs::plan_only)).
///
/// # Errors
/// Invalid options, a live group without `--force`, or broker errors.
pub async fn replay(args: &ReplayArgs) -> anyhow::Result<ReplaySummary> {
    let kafka = args.connection.checked_kafka_async().await?;
    let topic = resolve_topic(&kafka.topics, &args.topic);
    if args.reset_group.is_some() && (args.to_offset.is_some() || args.to_time.is_some()) {
        bail!("--to-offset and --to-time go with --copy-to: a reset group consumes to the end");
    }
    let plan_args = args.clone();
    let plan_topic = topic.clone();
    let plan_kafka = kafka.clone();
    let plan = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<PartitionPlan>> {
        let client = client(&plan_kafka)?;
        let mut ids = partitions(&client, &plan_topic)?;
        if let Some(only) = plan_args.partition {
            anyhow::ensure!(ids.contains(&only), "{plan_topic} has no partition {only}");
            ids = vec![only];
        }
        let starts = plan_args
            .from_time
            .map(|t| offsets_at(&client, &plan_topic, &ids, t))
            .transpose()?;
        let ends = plan_args
            .to_time
            .map(|t| offsets_at(&client, &plan_topic, &ids, t))
            .transpose()?;
        let mut plan = Vec::new();
        for &partition in &ids {
            let (low, high) = client.fetch_watermarks(&plan_topic, partition, TIMEOUT)?;
            let lookup = |list: &Option<Vec<(i32, Option<i64>)>>| {
                list.as_ref().and_then(|l| {
                    l.iter()
                        .find(|(p, _)| *p == partition)
                        .map(|(_, o)| o.unwrap_or(high))
                })
            };
            let from = if plan_args.from_beginning {
                low
            } else if let Some(offset) = plan_args.from_offset {
                offset.clamp(low, high)
            } else {
                lookup(&starts).unwrap_or(high)
            };
            let to = plan_args
                .to_offset
                .map(|o| o.clamp(low, high))
                .or_else(|| lookup(&ends))
                .unwrap_or(high);
            plan.push(PartitionPlan {
                partition,
                from,
                to: to.max(from),
            });
        }
        Ok(plan)
    })
    .await??;
    let records: i64 = plan.iter().map(|p| p.to - p.from).sum();

    if let Some(group) = &args.reset_group {
        let group = group.clone();
        let summary = ReplaySummary {
            mode: "reset".into(),
            topic: topic.clone(),
            target: group.clone(),
            partitions: plan.clone(),
            records,
            dry_run: args.plan_only(),
            live_members: 0,
        };
        let force = args.force;
        let dry_run = args.plan_only();
        let live_members = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
            let client = client(&kafka)?;
            let groups = client.fetch_group_list(Some(&group), TIMEOUT)?;
            let live = groups.groups().iter().find(|g| g.name() == group).map_or(0, |g| g.members().len());
            // A plan is shown whatever the group's state; it says so.
            if dry_run {
                return Ok(live);
            }
            if live > 0 && !force {
                bail!("group {group} has {live} live member(s): stop its service first, or pass --force");
            }
            let member: BaseConsumer = kafka.client_config("oms-cli-reset").set("group.id", &group).create()?;
            let mut offsets = TopicPartitionList::new();
            for p in &plan {
                offsets.add_partition_offset(&topic, p.partition, Offset::Offset(p.from))?;
            }
            member
                .commit(&offsets, CommitMode::Sync)
                .with_context(|| format!("the broker refused the new offsets of {group}"))?;
            Ok(live)
        })
        .await??;
        return Ok(ReplaySummary {
            live_members,
            ..summary
        });
    }

    let target = resolve_topic(&kafka.topics, args.copy_to.as_deref().unwrap_or_default());
    let summary = ReplaySummary {
        mode: "copy".into(),
        topic: topic.clone(),
        target: target.clone(),
        partitions: plan.clone(),
        records,
        dry_run: args.plan_only(),
        live_members: 0,
    };
    if args.plan_only() || records == 0 {
        return Ok(summary);
    }
    let producer: FutureProducer = kafka.producer("oms-cli-replay")?;
    let progress = ProgressBar::new(u64::try_from(records).unwrap_or(0));
    progress.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} records copied, {per_sec}, {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ranges: Vec<(String, i32, i64, i64)> = plan
        .iter()
        .map(|p| (topic.clone(), p.partition, p.from, p.to))
        .collect();
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1024);
    let reader_kafka = kafka.clone();
    let reader = tokio::task::spawn_blocking(move || {
        read_ranges(&reader_kafka, &ranges, |message| {
            sender
                .blocking_send(message)
                .map_err(|_| anyhow::anyhow!("the copier stopped"))
        })
    });
    let replayed_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    while let Some(message) = receiver.recv().await {
        let mut record_headers = OwnedHeaders::new();
        for (key, value) in all_headers(&message)
            .iter()
            .filter(|(k, _)| k != headers::REPLAYED_AT)
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
            FutureRecord::to(&target).headers(record_headers);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("copying to {target}: {e}"))?;
        progress.inc(1);
    }
    reader.await??;
    progress.finish_and_clear();
    Ok(summary)
}
