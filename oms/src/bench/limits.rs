//! What the machine allows, measured in the same run: transactions shaped
//! like our hot ones on the same database engine, and Kafka's raw produce
//! and consume rates for records of our size.
//!
//! The database limit runs `infra/bench/reservation.sql` (inbox insert,
//! conditional stock update, reservation insert, outbox insert) with
//! pgbench on PostgreSQL, or the same statements in a loop on a fresh
//! SQLite file with the services' settings (WAL, the same `synchronous`,
//! `BEGIN IMMEDIATE`, one writer).

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use uuid::Uuid;

use super::BenchArgs;
use crate::up::with_database;
use event_runtime::KafkaSettings;
use events::TopicNames;

/// Transactions and messages one confirmed order needs, as the pipeline is
/// built today: placing it, reserving stock, reserving credit, and applying
/// the two replies (each a transaction shaped like the pgbench one); and
/// OrderPlaced, StockReserved, CreditReserved, OrderConfirmed published.
pub const TRANSACTIONS_PER_ORDER: f64 = 5.0;
/// Messages published per confirmed order.
pub const MESSAGES_PER_ORDER: f64 = 4.0;
/// Bytes of a typical record (an OrderPlaced envelope with two lines).
const RECORD_BYTES: usize = 700;
const SETUP_SQL: &str = include_str!("../../../infra/bench/reservation-setup.sql");
const RESERVATION_SQL: &str = include_str!("../../../infra/bench/reservation.sql");

/// The limits.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Limits {
    /// How the database limit was measured.
    pub database_method: String,
    /// Reservation-shaped transactions per second.
    pub database_tps: f64,
    /// Records of our size produced per second (idempotent, acks=all).
    pub kafka_produced_per_sec: f64,
    /// Records consumed per second.
    pub kafka_consumed_per_sec: f64,
    /// Orders per second those allow: the smaller of
    /// `database_tps / TRANSACTIONS_PER_ORDER` and
    /// `kafka_produced_per_sec / MESSAGES_PER_ORDER`.
    pub orders_per_sec_allowed: f64,
    /// What could not be measured, and why.
    pub notes: Vec<String>,
}

/// Measures both limits for `seconds` each.
pub async fn measure(args: &BenchArgs, kafka: &str, seconds: u64) -> Limits {
    let mut limits = Limits::default();
    let database = match &args.database_url {
        Some(server) => pgbench(server, &args.database_prefix, seconds).await,
        None => sqlite_loop(args, seconds).await,
    };
    match database {
        Ok((method, tps)) => {
            limits.database_method = method;
            limits.database_tps = tps;
        }
        Err(error) => limits.notes.push(format!("database limit: {error:#}")),
    }
    match kafka_raw(kafka, &args.topic_prefix, seconds).await {
        Ok((produced, consumed)) => {
            limits.kafka_produced_per_sec = produced;
            limits.kafka_consumed_per_sec = consumed;
        }
        Err(error) => limits.notes.push(format!("Kafka limit: {error:#}")),
    }
    let by_database = limits.database_tps / TRANSACTIONS_PER_ORDER;
    let by_kafka = limits.kafka_produced_per_sec / MESSAGES_PER_ORDER;
    limits.orders_per_sec_allowed = match (by_database > 0.0, by_kafka > 0.0) {
        (true, true) => by_database.min(by_kafka),
        (true, false) => by_database,
        (false, true) => by_kafka,
        (false, false) => 0.0,
    };
    limits
}

/// pgbench with 4 clients on a database of its own, dropped afterwards.
async fn pgbench(server: &str, prefix: &str, seconds: u64) -> anyhow::Result<(String, f64)> {
    let name = format!("{prefix}pgbench_{}", Uuid::now_v7().simple());
    let admin = Database::connect(server).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;
    let url = with_database(server, &name);
    let result = async {
        let db = Database::connect(&url).await?;
        db.execute_unprepared(SETUP_SQL).await?;
        db.close().await?;
        let script = tempfile::NamedTempFile::new()?;
        std::fs::write(script.path(), RESERVATION_SQL)?;
        let output = tokio::process::Command::new(pgbench_binary())
            .args(["-n", "-c", "4", "-j", "2", "-T", &seconds.to_string(), "-f"])
            .arg(script.path())
            // The transport the services use (no TLS on loopback).
            .arg(service_kit::database::without_tls_on_loopback(&url))
            .output()
            .await
            .context("running pgbench (Debian's postgresql-15 package ships it)")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        anyhow::ensure!(
            output.status.success(),
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let tps = stdout
            .lines()
            .find(|l| l.starts_with("tps = "))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse::<f64>().ok())
            .context("no tps in pgbench's output")?;
        anyhow::Ok(tps)
    }
    .await;
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
    let _ = admin.close().await;
    Ok((
        "pgbench, 4 clients, infra/bench/reservation.sql".to_owned(),
        result?,
    ))
}

fn pgbench_binary() -> String {
    let debian = "/usr/lib/postgresql/15/bin/pgbench";
    if std::path::Path::new(debian).exists() {
        debian.to_owned()
    } else {
        "pgbench".to_owned()
    }
}

/// The same statements on a fresh SQLite file, one writer, for `seconds`.
async fn sqlite_loop(args: &BenchArgs, seconds: u64) -> anyhow::Result<(String, f64)> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/limit.sqlite?mode=rwc", dir.path().display());
    let synchronous = match args.sqlite_synchronous {
        service_kit::database::SqliteDurability::Full => "FULL",
        service_kit::database::SqliteDurability::Normal => "NORMAL",
    };
    let db = Database::connect(&url).await?;
    db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
    db.execute_unprepared(&format!("PRAGMA synchronous={synchronous}"))
        .await?;
    for statement in [
        "CREATE TABLE bench_products (id INTEGER PRIMARY KEY, available INTEGER NOT NULL CHECK (available >= 0), reserved INTEGER NOT NULL)",
        "CREATE TABLE bench_inbox (consumer TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (consumer, event_id))",
        "CREATE TABLE bench_reservations (order_id TEXT PRIMARY KEY, state TEXT NOT NULL)",
        "CREATE TABLE bench_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, topic TEXT NOT NULL, payload TEXT NOT NULL, published_at TEXT)",
        "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1000) INSERT INTO bench_products SELECT n, 1000000000, 0 FROM g",
    ] {
        db.execute_unprepared(statement).await?;
    }
    let payload = "x".repeat(600);
    let started = Instant::now();
    let mut transactions = 0u64;
    let mut product = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        product = (product * 7 + 13) % 1000 + 1;
        let txn = event_runtime::begin_write(&db).await?;
        let backend = DbBackend::Sqlite;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO bench_inbox (consumer, event_id) VALUES ('saga', ?)",
            [Uuid::now_v7().to_string().into()],
        ))
        .await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE bench_products SET available = available - 1, reserved = reserved + 1 WHERE id = ? AND available >= 1",
            [(product as i64).into()],
        ))
        .await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO bench_reservations (order_id, state) VALUES (?, 'RESERVED')",
            [Uuid::now_v7().to_string().into()],
        ))
        .await?;
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "INSERT INTO bench_outbox (event_id, topic, payload) VALUES (?, 'inventory', ?)",
            [Uuid::now_v7().to_string().into(), payload.clone().into()],
        ))
        .await?;
        txn.commit().await?;
        transactions += 1;
    }
    db.close().await?;
    Ok((
        format!("the same statements on SQLite, one writer, synchronous={synchronous}"),
        transactions as f64 / started.elapsed().as_secs_f64(),
    ))
}

/// Produces records of our size to a topic of its own for `seconds` (at
/// most 200,000), then consumes them all; returns both rates.
async fn kafka_raw(bootstrap: &str, prefix: &str, seconds: u64) -> anyhow::Result<(f64, f64)> {
    let kafka = KafkaSettings {
        bootstrap_servers: bootstrap.to_owned(),
        topics: TopicNames::new(prefix.to_owned()),
        partitions: 6,
        replication_factor: None,
        min_insync_replicas: None,
        client_properties: event_runtime::KafkaSettings::properties_from_env(std::env::vars()),
    };
    let topic = format!("{prefix}oms-bench-raw-{}", Uuid::now_v7().simple());
    let admin: AdminClient<DefaultClientContext> =
        kafka.client_config("oms-bench-admin").create()?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    admin
        .create_topics(
            &[NewTopic::new(&topic, 6, TopicReplication::Fixed(1))],
            &options,
        )
        .await?;
    let result = async {
        let producer = kafka.producer("oms-bench-raw")?;
        let payload = vec![b'x'; RECORD_BYTES];
        let started = Instant::now();
        let mut sent = 0u64;
        let mut pending = Vec::new();
        while started.elapsed() < Duration::from_secs(seconds) && sent < 200_000 {
            for _ in 0..1000 {
                let key = sent.to_string();
                let record = FutureRecord::to(&topic).key(&key).payload(&payload);
                match producer.send_result(record) {
                    Ok(delivery) => pending.push(delivery),
                    Err((error, _)) => anyhow::bail!("producing: {error}"),
                }
                sent += 1;
            }
            for delivery in pending.drain(..) {
                delivery
                    .await
                    .map_err(|_| anyhow::anyhow!("delivery cancelled"))?
                    .map_err(|(error, _)| anyhow::anyhow!("delivery failed: {error}"))?;
            }
        }
        let produced = sent as f64 / started.elapsed().as_secs_f64();
        let topic_name = topic.clone();
        let consumer_config = kafka
            .client_config("oms-bench-raw-consumer")
            .set(
                "group.id",
                format!("oms-bench-raw-{}", Uuid::now_v7().simple()),
            )
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .clone();
        let consumed = tokio::task::spawn_blocking(move || -> anyhow::Result<f64> {
            let consumer: BaseConsumer = consumer_config.create()?;
            consumer.subscribe(&[&topic_name])?;
            let mut received = 0u64;
            let mut started = None;
            let deadline = Instant::now() + Duration::from_secs(60);
            while received < sent && Instant::now() < deadline {
                if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
                    started.get_or_insert_with(Instant::now);
                    received += u64::from(message.payload().is_some());
                }
            }
            let elapsed = started.map_or(1.0, |s: Instant| s.elapsed().as_secs_f64());
            Ok(received as f64 / elapsed)
        })
        .await??;
        anyhow::Ok((produced, consumed))
    }
    .await;
    let _ = admin.delete_topics(&[&topic], &options).await;
    result
}
