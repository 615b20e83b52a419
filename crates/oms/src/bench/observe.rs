//! Watches the `orders` topic for the saga's decisions: the moment an
//! OrderConfirmed or OrderRejected record reaches a subscriber is when the
//! customer hears back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::time::Instant;
use uuid::Uuid;

use super::system::System;
use events::plumbing::KafkaSettings;
use events::{Topic, TopicNames};

/// A decision as seen on the topic.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    /// CONFIRMED (`true`) or REJECTED.
    pub confirmed: bool,
    /// When the record arrived here.
    pub seen: Instant,
}

/// Reads the `orders` topic on a thread of its own from the moment it is started.
pub struct Observer {
    decisions: Arc<Mutex<HashMap<Uuid, Decision>>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Observer {
    /// Starts reading every partition of `orders` from its current end.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub async fn start(system: &System) -> anyhow::Result<Self> {
        let kafka = KafkaSettings {
            bootstrap_servers: system.kafka.clone(),
            topics: TopicNames::new(system.topic_prefix.clone()),
            partitions: 1,
            replication_factor: 1,
        };
        let topic = kafka.topics.name(Topic::Orders);
        let consumer: BaseConsumer = kafka
            .client_config("oms-bench-observer")
            .set("group.id", format!("oms-bench-{}", Uuid::now_v7().simple()))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "5")
            .create()
            .context("creating the observer's consumer")?;
        let assignment = tokio::task::spawn_blocking(move || -> anyhow::Result<BaseConsumer> {
            let metadata = consumer.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            anyhow::ensure!(!partitions.is_empty(), "topic {topic} has no partitions");
            let mut list = TopicPartitionList::new();
            for partition in partitions {
                let (_, high) =
                    consumer.fetch_watermarks(&topic, partition, Duration::from_secs(10))?;
                list.add_partition_offset(&topic, partition, Offset::Offset(high))?;
            }
            consumer.assign(&list)?;
            Ok(consumer)
        })
        .await??;
        let decisions = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (decisions, stop) = (decisions.clone(), stop.clone());
            std::thread::Builder::new()
                .name("bench-observer".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(Ok(message)) = assignment.poll(Duration::from_millis(100)) else {
                            continue;
                        };
                        let seen = Instant::now();
                        let Some(decision) = message.payload().and_then(decision_of) else {
                            continue;
                        };
                        decisions
                            .lock()
                            .expect("not poisoned")
                            .entry(decision.0)
                            .or_insert(Decision {
                                confirmed: decision.1,
                                seen,
                            });
                    }
                })?
        };
        Ok(Self {
            decisions,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Waits until `expected` decisions were seen or `timeout` passed, then stops reading.
    pub async fn drain(&self, expected: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.decisions.lock().expect("not poisoned").len() < expected
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.lock().expect("not poisoned").take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// The decision about `order`, if one was seen.
    pub fn decision(&self, order: Uuid) -> Option<Decision> {
        self.decisions
            .lock()
            .expect("not poisoned")
            .get(&order)
            .copied()
    }
}

/// `(order id, confirmed)` of an OrderConfirmed or OrderRejected envelope.
fn decision_of(payload: &[u8]) -> Option<(Uuid, bool)> {
    let envelope: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let confirmed = match envelope["event_type"].as_str()? {
        "OrderConfirmed" => true,
        "OrderRejected" => false,
        _ => return None,
    };
    let id = envelope["payload"]["order_id"].as_str()?.parse().ok()?;
    Some((id, confirmed))
}
