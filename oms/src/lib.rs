//! # oms: the whole system with one command
//!
//! `oms up` starts a single-node Apache Kafka (or uses `--kafka`), the three
//! services in this process, each with its own database (SQLite files under
//! the data directory, or PostgreSQL databases with `--database-url`),
//! bootstraps the admin account, and prints where everything is with a
//! ready-to-use admin token. Ctrl-C stops it all cleanly: consumers commit
//! their offsets, pending outbox rows wait for the next start, and the
//! broker shuts down. In production the services run as their own binaries
//! (`order-svc`, `inventory-svc`, `customer-svc`); `oms up` is the local
//! convenience.
//!
//! The other commands are the operator's tools ([`ops`]): `topics`, `tail`,
//! `events`, `dlq list|show|replay`, `replay`, `outbox list|retry` and
//! `admin reset-password`. They print text by default and JSON with `--json`.
//!
//! `oms bench` ([`bench`](mod@bench)) measures how many orders the system confirms per
//! second and how soon, under open-loop load; `oms chaos` ([`chaos`])
//! injects faults under load and checks every promise.
//!
//! ## Layout
//! - [`up`]: starting and stopping the system, and the demo data.
//! - [`bench`](mod@bench): the benchmark.
//! - [`ops`]: the operator's tools.

#![forbid(unsafe_code)]

pub mod bench;
pub mod chaos;
pub mod ops;
pub mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use service_kit::database::SqliteDurability;

/// The `oms` command line.
#[derive(Debug, Parser)]
#[command(name = "oms", version, about = "Run the OMS and operate it")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start Kafka and the three services on this machine; Ctrl-C stops them.
    Up(UpArgs),
    /// Topics with partitions and end offsets, and every consumer group's lag.
    Topics(ops::Connection),
    /// Print a topic's records, from a point, as they arrive.
    Tail(ops::tail::TailArgs),
    /// One order's records across every topic, in the order they happened.
    Events(ops::tail::EventsArgs),
    /// Dead letters: list, show, re-publish.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Re-drive a consumer group from a point, or copy records to a topic.
    Replay(ops::replay::ReplayArgs),
    /// Outbox rows a relay set aside after repeated failures: list, retry.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// The admin account: reset its password when it is lost.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Offer open-loop load to the system and report throughput, latency and resources.
    Bench(bench::BenchArgs),
    /// Faults under load against the services as separate processes; checks every promise.
    Chaos(chaos::ChaosArgs),
}

/// `oms dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Dead letters with their reasons.
    List {
        /// Which.
        #[command(flatten)]
        selection: ops::dlq::Selection,
        /// The connection.
        #[command(flatten)]
        connection: ops::Connection,
    },
    /// One dead letter, whole (`--topic` and `--at <partition>:<offset>`).
    Show {
        /// Which.
        #[command(flatten)]
        selection: ops::dlq::Selection,
        /// The connection.
        #[command(flatten)]
        connection: ops::Connection,
    },
    /// Re-publish dead letters to the topic they came from.
    Replay {
        /// Which.
        #[command(flatten)]
        selection: ops::dlq::Selection,
        /// Print what would be re-published; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// The connection.
        #[command(flatten)]
        connection: ops::Connection,
    },
}

/// `oms admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set the admin's password (from `OMS_NEW_ADMIN_PASSWORD` or standard
    /// input), reactivate it, and end its sign-ins.
    ResetPassword(ops::admin::ResetPasswordArgs),
}

/// `oms outbox …`.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// The rows set aside, with their last error.
    List(ops::outbox::OutboxArgs),
    /// Put set-aside rows back in line (all, or `--id`), once the cause is fixed.
    Retry {
        /// Only these rows (repeatable).
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// The database.
        #[command(flatten)]
        args: ops::outbox::OutboxArgs,
    },
}

/// Options of `oms up`.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Where databases and the broker's log live (kept across restarts).
    #[arg(long, env = "OMS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Use this Kafka cluster (host:port) instead of starting one.
    #[arg(long)]
    pub kafka: Option<String>,
    /// Port of the broker `oms up` starts.
    #[arg(long, env = "OMS_KAFKA_PORT", default_value_t = 9092)]
    pub kafka_port: u16,
    /// A PostgreSQL server (postgres://user:password@host:port/db); each
    /// service gets its own database on it. Default: SQLite files.
    #[arg(long, env = "OMS_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// With `--database-url`: the databases are `<prefix>order`,
    /// `<prefix>inventory` and `<prefix>customer`.
    #[arg(long, env = "OMS_DATABASE_PREFIX", default_value = "oms_")]
    pub database_prefix: String,
    /// SQLite durability: `full` (a commit survives a power cut) or `normal`
    /// (faster; a power cut may lose the last commits, never corrupt).
    #[arg(long, env = "OMS_SQLITE_SYNCHRONOUS", value_enum, default_value_t = SqliteDurability::Full)]
    pub sqlite_synchronous: SqliteDurability,
    /// order-svc's port.
    #[arg(long, default_value_t = 8080)]
    pub order_port: u16,
    /// inventory-svc's port.
    #[arg(long, default_value_t = 8081)]
    pub inventory_port: u16,
    /// customer-svc's port.
    #[arg(long, default_value_t = 8082)]
    pub customer_port: u16,
    /// Admin account email.
    #[arg(long, env = "OMS_ADMIN_EMAIL", default_value = "admin@oms.local")]
    pub admin_email: String,
    /// The admin's password at its first start; default: a random one,
    /// kept in `<data dir>/admin-password` and printed.
    #[arg(long, env = "OMS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Seals the token signing keys; default: a random key kept in
    /// `<data dir>/key-encryption-key`.
    #[arg(long, env = "OMS_KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub key_encryption_key: Option<String>,
    /// Prefix of topics and consumer groups.
    #[arg(long, env = "OMS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Hours the broker keeps dead letters (the dead-letter topics'
    /// `retention.ms`, set at each start).
    #[arg(long, env = "OMS_DLQ_RETENTION_HOURS", default_value_t = event_runtime::kafka::DEFAULT_DEAD_LETTER_RETENTION_HOURS)]
    pub dlq_retention_hours: u64,
    /// Also create a few products and customers, so the README's walk-through works at once.
    #[arg(long)]
    pub demo: bool,
}

impl UpArgs {
    /// Reads the secrets given as files (`OMS_DATABASE_URL_FILE`,
    /// `OMS_ADMIN_PASSWORD_FILE`, `OMS_KEY_ENCRYPTION_KEY_FILE`), as the
    /// services do: see [`service_kit::secrets`].
    ///
    /// # Errors
    /// A secret given both directly and as a file, or a file that cannot
    /// be read or is empty.
    pub fn read_secret_files(&mut self) -> Result<(), service_kit::secrets::SecretError> {
        use service_kit::secrets::read_file;
        read_file(&mut self.database_url, "OMS_DATABASE_URL")?;
        read_file(&mut self.admin_password, "OMS_ADMIN_PASSWORD")?;
        read_file(&mut self.key_encryption_key, "OMS_KEY_ENCRYPTION_KEY")
    }
}

impl Cli {
    /// Runs the command.
    ///
    /// # Errors
    /// Whatever the command fails with.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Up(mut args) => {
                args.read_secret_files()?;
                up::run(args).await
            }
            Command::Bench(args) => {
                let oms = std::env::current_exe()?;
                let report = bench::run(&args, oms).await?;
                println!("{}", report.markdown());
                eprintln!("report written to {}", args.out.join("bench.md").display());
                anyhow::ensure!(
                    report.invariants.hold(),
                    "an invariant does not hold after the run"
                );
                Ok(())
            }
            Command::Chaos(args) => {
                let report = chaos::run(&args).await?;
                println!("{}", report.markdown());
                anyhow::ensure!(report.holds(), "a promise was broken under chaos");
                Ok(())
            }
            Command::Topics(connection) => {
                let json = connection.json;
                let report =
                    tokio::task::spawn_blocking(move || ops::topics::report(&connection)).await??;
                ops::topics::print(&report, json);
                Ok(())
            }
            Command::Tail(args) => {
                let json = args.connection.json;
                let matched = tokio::task::spawn_blocking(move || {
                    ops::tail::tail(&args, |r| ops::tail::print(r, json))
                })
                .await??;
                if !json {
                    eprintln!("{matched} record(s)");
                }
                Ok(())
            }
            Command::Events(args) => {
                let json = args.connection.json;
                let records =
                    tokio::task::spawn_blocking(move || ops::tail::order_events(&args)).await??;
                for record in &records {
                    ops::tail::print(record, json);
                }
                if !json {
                    eprintln!("{} record(s)", records.len());
                }
                Ok(())
            }
            Command::Dlq(DlqCommand::List {
                selection,
                connection,
            }) => {
                let json = connection.json;
                if !json {
                    for topic in ops::dlq::retention(&connection, &selection).await? {
                        println!("{topic}");
                    }
                }
                let letters =
                    tokio::task::spawn_blocking(move || ops::dlq::select(&connection, &selection))
                        .await??;
                ops::dlq::print_list(&letters, json);
                Ok(())
            }
            Command::Dlq(DlqCommand::Show {
                selection,
                connection,
            }) => {
                anyhow::ensure!(
                    selection.at.is_some() && selection.topic.is_some(),
                    "show needs --topic and --at <partition>:<offset>"
                );
                let letters =
                    tokio::task::spawn_blocking(move || ops::dlq::select(&connection, &selection))
                        .await??;
                let letter = letters
                    .first()
                    .ok_or_else(|| anyhow::anyhow!("no such dead letter"))?;
                println!("{:#}", ops::dlq::show(letter));
                Ok(())
            }
            Command::Dlq(DlqCommand::Replay {
                selection,
                dry_run,
                connection,
            }) => {
                let summary = ops::dlq::replay(&connection, &selection, dry_run).await?;
                if connection.json {
                    println!("{}", serde_json::json!(summary));
                } else {
                    for refused in &summary.refused {
                        eprintln!("{refused}");
                    }
                    let verb = if dry_run {
                        "would re-publish"
                    } else {
                        "re-published"
                    };
                    println!(
                        "{verb} {} dead letter(s); skipped {} without an original topic; \
                         refused {} naming another topic than their own",
                        summary.replayed,
                        summary.skipped,
                        summary.refused.len()
                    );
                }
                // A refused letter is a forged or corrupted record: the
                // operator's script must notice it.
                anyhow::ensure!(
                    summary.refused.is_empty(),
                    "{} dead letter(s) refused: their dlq.original_topic names another topic",
                    summary.refused.len()
                );
                Ok(())
            }
            Command::Admin(AdminCommand::ResetPassword(args)) => {
                let id = ops::admin::reset_password(&args).await?;
                println!(
                    "the admin account {} ({id}) has its new password",
                    args.email
                );
                Ok(())
            }
            Command::Outbox(OutboxCommand::List(args)) => {
                let rows = ops::outbox::list(&args).await?;
                ops::outbox::print(&rows, args.json);
                Ok(())
            }
            Command::Outbox(OutboxCommand::Retry { ids, args }) => {
                let count = ops::outbox::retry(&args, &ids).await?;
                if args.json {
                    println!("{}", serde_json::json!({ "retried": count }));
                } else {
                    println!("put {count} row(s) back in line");
                }
                Ok(())
            }
            Command::Replay(args) => {
                let summary = ops::replay::replay(&args).await?;
                if args.connection.json {
                    println!("{}", serde_json::json!(summary));
                } else {
                    for p in &summary.partitions {
                        println!(
                            "  {}[{}]: {} .. {}",
                            summary.topic, p.partition, p.from, p.to
                        );
                    }
                    let done = if summary.dry_run { "would" } else { "did" };
                    match summary.mode.as_str() {
                        "reset" => println!(
                            "{done} reset group {}: {} record(s) to re-consume from {}",
                            summary.target, summary.records, summary.topic
                        ),
                        _ => println!(
                            "{done} copy {} record(s) from {} to {}",
                            summary.records, summary.topic, summary.target
                        ),
                    }
                }
                Ok(())
            }
        }
    }
}
