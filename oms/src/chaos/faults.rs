//! Injecting the faults: processes killed and restarted, the broker and
//! the database crashed, group members added and removed, and records
//! that are copies of real ones or poison.

use std::time::{Duration, Instant};

use events::{Envelope, Topic};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use super::cluster::{Cluster, Service};
use super::{ChaosArgs, Fault};

/// Injects `fault`; returns how many poison records it published.
pub(super) async fn inject(
    cluster: &mut Cluster,
    args: &ChaosArgs,
    fault: Fault,
    round: usize,
) -> anyhow::Result<u64> {
    match fault {
        Fault::Kill(service) => {
            // order-svc's first instance is the one the load talks to.
            let number = if service == Service::Order {
                0
            } else {
                round % 2
            };
            cluster.kill_instance(service, number).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            cluster.start_instance(service, number).await?;
        }
        Fault::KillBroker => {
            let broker = &mut cluster.broker;
            tokio::task::block_in_place(|| broker.crash_restart())?;
        }
        Fault::CrashPostgres => {
            let postgres = &cluster.postgres;
            tokio::task::block_in_place(|| postgres.crash_restart())?;
        }
        Fault::Rebalance => {
            cluster.add_instance(Service::Inventory, 2).await?;
            tokio::time::sleep(Duration::from_secs(3)).await;
            cluster.stop_instance(Service::Inventory, 2).await;
        }
        Fault::Duplicates => duplicate_records(cluster).await?,
        Fault::Poison => return publish_poison(cluster).await,
        Fault::LateReplies => {
            cluster.stop_instance(Service::Inventory, 0).await;
            cluster.stop_instance(Service::Inventory, 1).await;
            tokio::time::sleep(Duration::from_secs(args.saga_deadline_secs + 2)).await;
            cluster.start_instance(Service::Inventory, 0).await?;
            cluster.start_instance(Service::Inventory, 1).await?;
        }
    }
    Ok(0)
}

fn kafka(cluster: &Cluster) -> events::plumbing::KafkaSettings {
    events::plumbing::KafkaSettings {
        bootstrap_servers: cluster.broker.bootstrap(),
        topics: events::TopicNames::new(cluster.topic_prefix.clone()),
        partitions: 6,
        replication_factor: 1,
        client_properties: Vec::new(),
    }
}

/// Publishes the first records of every topic again, as they are.
async fn duplicate_records(cluster: &Cluster) -> anyhow::Result<()> {
    let kafka = kafka(cluster);
    let records = tokio::task::spawn_blocking({
        let kafka = kafka.clone();
        move || -> anyhow::Result<Vec<rdkafka::message::OwnedMessage>> {
            let consumer: BaseConsumer = kafka
                .client_config("oms-chaos-duplicates")
                .set("group.id", format!("oms-chaos-{}", Uuid::now_v7()))
                .set("enable.auto.commit", "false")
                .create()?;
            let mut assignment = TopicPartitionList::new();
            for topic in Topic::ALL {
                for partition in 0..kafka.partitions {
                    assignment.add_partition_offset(
                        &kafka.topics.name(topic),
                        partition,
                        Offset::Beginning,
                    )?;
                }
            }
            consumer.assign(&assignment)?;
            let mut records = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(5);
            while records.len() < 200 && Instant::now() < deadline {
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) {
                    records.push(message.detach());
                }
            }
            Ok(records)
        }
    })
    .await??;
    let producer: FutureProducer = kafka.producer("oms-chaos-duplicates")?;
    for record in &records {
        let mut copy: rdkafka::producer::FutureRecord<'_, [u8], [u8]> =
            rdkafka::producer::FutureRecord::to(record.topic());
        if let Some(key) = record.key() {
            copy = copy.key(key);
        }
        if let Some(payload) = record.payload() {
            copy = copy.payload(payload);
        }
        if let Some(headers) = record.headers() {
            copy = copy.headers(headers.clone());
        }
        producer
            .send(copy, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("re-publishing a record: {e}"))?;
    }
    Ok(())
}

/// Publishes poison on every topic; returns how many records.
async fn publish_poison(cluster: &Cluster) -> anyhow::Result<u64> {
    let kafka = kafka(cluster);
    let producer: FutureProducer = kafka
        .client_config("oms-chaos-poison")
        .set("compression.type", "gzip")
        .set("message.max.bytes", "10000000")
        .create()?;
    let mut sent = 0;
    for topic in Topic::ALL {
        let example = events::examples::all()
            .into_iter()
            .find(|e| e.topic() == topic)
            .expect("an example per topic");
        let envelope = Envelope::new(example, "chaos").to_json();
        let mut too_long = envelope.clone();
        too_long["producer"] = "p".repeat(500).into();
        let mut overflowing = events::examples::envelope_of("OrderPlaced")
            .expect("an example")
            .to_json();
        overflowing["payload"]["total"]["amount_minor"] = (i64::MAX - 1).into();
        let mut oversized = envelope.clone();
        oversized["padding"] = " ".repeat(2 * events::plumbing::MAX_RECORD_BYTES).into();
        let poison: Vec<Vec<u8>> = vec![
            b"{not json".to_vec(),
            serde_json::to_vec(
                &serde_json::json!({"event_type": "OrderPlaced", "schema_version": 1, "payload": {}}),
            )?,
            serde_json::to_vec(&too_long)?,
            serde_json::to_vec(&overflowing)?,
            serde_json::to_vec(&oversized)?,
        ];
        let key = Uuid::now_v7().to_string();
        for value in &poison {
            produce_untyped(&producer, &kafka.topics.name(topic), &key, value).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// One record without the `event_type` header, so every consumer of the
/// topic decodes it (a header would let the ones that do not want it skip
/// it).
async fn produce_untyped(
    producer: &FutureProducer,
    topic: &str,
    key: &str,
    value: &[u8],
) -> anyhow::Result<()> {
    producer
        .send(
            rdkafka::producer::FutureRecord::to(topic)
                .key(key)
                .payload(value),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("publishing poison to {topic}: {e}"))?;
    Ok(())
}

/// Records in all dead-letter topics.
pub(super) async fn dead_letters(cluster: &Cluster) -> anyhow::Result<u64> {
    let kafka = kafka(cluster);
    tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let client: BaseConsumer = kafka.client_config("oms-chaos-dlq").create()?;
        let mut total = 0;
        for topic in Topic::ALL {
            let name = kafka.topics.dead_letter(topic);
            for partition in 0..kafka.partitions {
                if let Ok((low, high)) =
                    client.fetch_watermarks(&name, partition, Duration::from_secs(5))
                {
                    total += u64::try_from(high - low).unwrap_or(0);
                }
            }
        }
        Ok(total)
    })
    .await?
}
