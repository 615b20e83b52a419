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
use crate::bench::system::System;

/// Injects `fault`; returns how many poison records it published.
pub(super) async fn inject(
    cluster: &mut Cluster,
    args: &ChaosArgs,
    system: &System,
    fault: Fault,
    round: usize,
) -> anyhow::Result<Injected> {
    let mut injected = Injected::default();
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
        Fault::KillController => {
            let broker = &mut cluster.broker;
            tokio::task::block_in_place(|| broker.crash_restart_controller())?;
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
        Fault::Poison => injected.poison = publish_poison(cluster).await?,
        Fault::SilentFlood => injected.violations = silent_flood(cluster, system).await?,
        Fault::HundredLineBacklog => {
            injected.violations = hundred_line_backlog(cluster, system, round).await?;
        }
        Fault::LateReplies => {
            cluster.stop_instance(Service::Inventory, 0).await;
            cluster.stop_instance(Service::Inventory, 1).await;
            tokio::time::sleep(Duration::from_secs(args.saga_deadline_secs + 2)).await;
            cluster.start_instance(Service::Inventory, 0).await?;
            cluster.start_instance(Service::Inventory, 1).await?;
        }
    }
    Ok(injected)
}

/// What injecting a fault left to check: poison records it published, and
/// promises it saw broken while it ran.
#[derive(Debug, Default)]
pub(super) struct Injected {
    pub poison: u64,
    pub violations: Vec<String>,
}

/// Connections the flood opens: what took order-svc's edge down before
/// connections had to send a request head in time.
const FLOOD_CONNECTIONS: usize = 1_100;

/// The flood's address: another machine, as far as the server can tell.
const FLOOD_FROM: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 3);

/// Opens [`FLOOD_CONNECTIONS`] connections to order-svc from
/// [`FLOOD_FROM`], half silent and half stopping after half the HTTP/2
/// preface, and holds them. Meanwhile a client from the load's address
/// must get `/healthz` answered within 5 s; once the header timeout has
/// passed, the server must have closed every flood connection.
async fn silent_flood(cluster: &Cluster, system: &System) -> anyhow::Result<Vec<String>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let target: std::net::SocketAddr = cluster
        .url(Service::Order)
        .trim_start_matches("http://")
        .parse()?;
    let mut flood = Vec::with_capacity(FLOOD_CONNECTIONS);
    let mut violations = Vec::new();
    for n in 0..FLOOD_CONNECTIONS {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind((FLOOD_FROM, 0).into())?;
        match socket.connect(target).await {
            Ok(mut stream) => {
                if n % 2 == 1 {
                    let _ = stream.write_all(b"PRI * HTTP/2.0\r\n").await;
                }
                flood.push(stream);
            }
            // Past the listen backlog the kernel may refuse: that is the
            // server's cap at work, not a failure of the fault.
            Err(_) => break,
        }
    }
    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        system
            .http
            .get(format!("{}/healthz", system.order_url))
            .send(),
    )
    .await;
    if !matches!(&answered, Ok(Ok(response)) if response.status().is_success()) {
        violations.push(format!(
            "with {} silent connections open from {FLOOD_FROM}, GET /healthz from another \
             address got no answer within 5 s ({answered:?})",
            flood.len()
        ));
    }
    // The services' header timeout (10 s) and a margin.
    tokio::time::sleep(Duration::from_secs(13)).await;
    let mut still_open = 0;
    for stream in &mut flood {
        let mut byte = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(20), stream.read(&mut byte)).await {
            Ok(Ok(0) | Err(_)) => {}
            Ok(Ok(_)) | Err(_) => still_open += 1,
        }
    }
    if still_open > 0 {
        violations.push(format!(
            "{still_open} of {} silent connections still open after the header timeout",
            flood.len()
        ));
    }
    Ok(violations)
}

/// Orders of the backlog, and lines per order.
const BACKLOG_ORDERS: usize = 200;
const BACKLOG_LINES: usize = 100;

/// Stops the broker, places [`BACKLOG_ORDERS`] orders of
/// [`BACKLOG_LINES`] lines (order-svc needs no broker to accept them), and
/// starts the broker again: the relay publishes the backlog at once and
/// the participants receive batches of 100-line orders, whose statements
/// are more values than one SQL statement binds. Every order must be
/// decided like any other (the suite's checks), and each must have been
/// accepted.
async fn hundred_line_backlog(
    cluster: &mut Cluster,
    system: &System,
    round: usize,
) -> anyhow::Result<Vec<String>> {
    use futures::StreamExt;
    let run = format!("{}-{round}", Uuid::now_v7().simple());
    let mut products = Vec::with_capacity(BACKLOG_LINES);
    for n in 0..BACKLOG_LINES {
        products.push(
            crate::bench::load::product(system, &format!("BACKLOG-{run}-{n}"), 1_000_000).await?,
        );
    }
    let token = crate::bench::load::customer(
        system,
        &format!("backlog-{run}@example.com"),
        1_000_000_000_000,
    )
    .await?;
    let body = serde_json::json!({
        "lines": products
            .iter()
            .map(|p| serde_json::json!({"product_id": p, "quantity": 1}))
            .collect::<Vec<_>>(),
    });
    let place = || async {
        system
            .http
            .post(format!("{}/orders", system.order_url))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
    };
    // order-svc's catalog copy learns of the products through the broker.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = place().await?;
        if response.status() == reqwest::StatusCode::ACCEPTED {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "order-svc never learned the backlog's products: {}",
            response.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let broker = &mut cluster.broker;
    tokio::task::block_in_place(|| broker.kill());
    let refused: Vec<String> = futures::stream::iter(1..BACKLOG_ORDERS)
        .map(|_| async {
            match place().await {
                Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => None,
                Ok(response) => Some(format!("HTTP {}", response.status())),
                Err(error) => Some(error.to_string()),
            }
        })
        .buffer_unordered(8)
        .filter_map(|refusal| async move { refusal })
        .collect()
        .await;
    let broker = &mut cluster.broker;
    tokio::task::block_in_place(|| broker.start_again())?;
    Ok(refused
        .into_iter()
        .take(5)
        .map(|why| format!("a 100-line order placed while the broker was away was refused: {why}"))
        .collect())
}

fn kafka(cluster: &Cluster) -> event_runtime::KafkaSettings {
    event_runtime::KafkaSettings {
        bootstrap_servers: cluster.broker.bootstrap(),
        topics: events::TopicNames::new(cluster.topic_prefix.clone()),
        partitions: 6,
        replication_factor: None,
        min_insync_replicas: None,
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
        oversized["padding"] = " ".repeat(2 * event_runtime::MAX_RECORD_BYTES).into();
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
