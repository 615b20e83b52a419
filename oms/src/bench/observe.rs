//! Watches the saga's topics: the moment an OrderConfirmed or OrderRejected
//! record on `orders` reaches a subscriber is when the customer hears back.
//! The moments OrderPlaced, the stock reply (on `inventory`) and the credit
//! reply (on `customers`) arrive time each stage of the saga.

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
use event_runtime::KafkaSettings;
use events::{Topic, TopicNames};

/// A decision as seen on the topic.
#[derive(Debug, Clone, Copy)]
pub struct Decision {
    /// CONFIRMED (`true`) or REJECTED.
    pub confirmed: bool,
    /// When the record arrived here.
    pub seen: Instant,
}

/// When each step of one order's saga was seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trail {
    /// OrderPlaced on `orders`.
    pub placed: Option<Instant>,
    /// StockReserved or StockRejected on `inventory`.
    pub stock: Option<Instant>,
    /// CreditReserved or CustomerRejected on `customers`.
    pub credit: Option<Instant>,
    /// OrderConfirmed or OrderRejected on `orders`.
    pub decision: Option<Decision>,
}

/// Reads the saga's topics on a thread of its own from the moment it is started.
pub struct Observer {
    trails: Arc<Mutex<HashMap<Uuid, Trail>>>,
    decided: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Observer {
    /// Starts reading every partition of `orders`, `inventory` and
    /// `customers` from its current end.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub async fn start(system: &System) -> anyhow::Result<Self> {
        let kafka = KafkaSettings {
            bootstrap_servers: system.kafka.clone(),
            topics: TopicNames::new(system.topic_prefix.clone()),
            partitions: 1,
            replication_factor: None,
            min_insync_replicas: None,
            client_properties: event_runtime::KafkaSettings::properties_from_env(std::env::vars()),
        };
        let topics: Vec<String> = [Topic::Orders, Topic::Inventory, Topic::Customers]
            .into_iter()
            .map(|t| kafka.topics.name(t))
            .collect();
        let consumer: BaseConsumer = kafka
            .client_config("oms-bench-observer")
            .set("group.id", format!("oms-bench-{}", Uuid::now_v7().simple()))
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "5")
            .create()
            .context("creating the observer's consumer")?;
        let assignment = tokio::task::spawn_blocking(move || -> anyhow::Result<BaseConsumer> {
            let mut list = TopicPartitionList::new();
            for topic in &topics {
                let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
                let partitions: Vec<i32> = metadata
                    .topics()
                    .iter()
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect();
                anyhow::ensure!(!partitions.is_empty(), "topic {topic} has no partitions");
                for partition in partitions {
                    let (_, high) =
                        consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
                    list.add_partition_offset(topic, partition, Offset::Offset(high))?;
                }
            }
            consumer.assign(&list)?;
            Ok(consumer)
        })
        .await??;
        let trails: Arc<Mutex<HashMap<Uuid, Trail>>> = Arc::new(Mutex::new(HashMap::new()));
        let decided = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (trails, decided, stop) = (trails.clone(), decided.clone(), stop.clone());
            std::thread::Builder::new()
                .name("bench-observer".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(Ok(message)) = assignment.poll(Duration::from_millis(100)) else {
                            continue;
                        };
                        let seen = Instant::now();
                        let Some((order, step)) = message.payload().and_then(step_of) else {
                            continue;
                        };
                        let mut trails = trails.lock().expect("not poisoned");
                        let trail = trails.entry(order).or_default();
                        match step {
                            Step::Placed => {
                                trail.placed.get_or_insert(seen);
                            }
                            Step::Stock => {
                                trail.stock.get_or_insert(seen);
                            }
                            Step::Credit => {
                                trail.credit.get_or_insert(seen);
                            }
                            Step::Decided(confirmed) => {
                                if trail.decision.is_none() {
                                    trail.decision = Some(Decision { confirmed, seen });
                                    decided.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                })?
        };
        Ok(Self {
            trails,
            decided,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Waits until `expected` decisions were seen or `timeout` passed, then stops reading.
    pub async fn drain(&self, expected: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.decided.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
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
        self.trail(order).and_then(|t| t.decision)
    }

    /// What was seen of `order`'s saga.
    pub fn trail(&self, order: Uuid) -> Option<Trail> {
        self.trails
            .lock()
            .expect("not poisoned")
            .get(&order)
            .copied()
    }
}

/// A step of the saga, as a record shows it.
enum Step {
    Placed,
    Stock,
    Credit,
    Decided(bool),
}

/// The order and saga step of an envelope, if it is one of the saga's.
fn step_of(payload: &[u8]) -> Option<(Uuid, Step)> {
    let envelope: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let step = match envelope["event_type"].as_str()? {
        "OrderPlaced" => Step::Placed,
        "StockReserved" | "StockRejected" => Step::Stock,
        "CreditReserved" | "CustomerRejected" => Step::Credit,
        "OrderConfirmed" => Step::Decided(true),
        "OrderRejected" => Step::Decided(false),
        _ => return None,
    };
    let id = envelope["payload"]["order_id"].as_str()?.parse().ok()?;
    Some((id, step))
}
