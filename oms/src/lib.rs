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
//! `oms up` reads every service variable (`OMS_SAGA_DEADLINE_SECS`,
//! `OMS_LOGIN_ATTEMPTS_PER_MINUTE`, …) as the services' binaries do, but
//! for the few it decides itself ([`up::SET_BY_OMS_UP`]: its broker, its
//! ports, its databases).
//!
//! The other commands are the operator's tools ([`ops`]): `topics`, `tail`,
//! `events`, `dlq list|show|replay`, `replay`, `outbox list|retry` and
//! `admin reset-password`. Every command that prints data takes
//! `-o text|json|jsonl` ([`output`]). Those that change much at once
//! (`replay --reset-group`, `dlq replay` without a selector, `outbox
//! retry`) show their plan and act only with `--execute`.
//!
//! `oms bench` ([`bench`](mod@bench)) measures how many orders the system confirms per
//! second and how soon, under open-loop load; `oms chaos` ([`chaos`])
//! injects faults under load and checks every promise; both show their
//! progress on standard error ([`progress`]). `oms config-reference`
//! ([`config_reference`]) prints docs/configuration.md from the settings'
//! definitions.
//!
//! ## Layout
//! - [`up`]: starting and stopping the system, and the demo data.
//! - [`bench`](mod@bench): the benchmark; [`chaos`]: the chaos suite.
//! - [`ops`]: the operator's tools.
//! - [`output`]: `-o`; [`progress`]: progress on standard error.
//! - [`config_reference`]: the configuration reference.

#![forbid(unsafe_code)]

pub mod bench;
pub mod chaos;
pub mod config_reference;
pub mod ops;
pub mod output;
pub mod progress;
pub mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use service_kit::database::SqliteDurability;

use output::{Format, Output, with_kind};
use progress::Progress;

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
    ///
    /// Each service reads its `OMS_*` variables as its own binary does,
    /// but for those `oms up` sets itself: the broker (`OMS_KAFKA_BOOTSTRAP`,
    /// see `--kafka`), the services' addresses and databases (the ports
    /// and `--database-url` below) and `OMS_JWKS_URL`. docs/configuration.md
    /// lists them.
    Up(UpArgs),
    /// Topics with partitions and end offsets, and every consumer group's lag.
    Topics {
        /// The connection.
        #[command(flatten)]
        connection: ops::Connection,
        /// The output form.
        #[command(flatten)]
        output: Output,
    },
    /// Print a topic's records, from a point, as they arrive.
    Tail {
        /// Which records.
        #[command(flatten)]
        args: ops::tail::TailArgs,
        /// The output form (`-o json` needs `--no-follow`: a followed stream never ends).
        #[command(flatten)]
        output: Output,
    },
    /// One order's records across every topic, in the order they happened.
    Events {
        /// Which order.
        #[command(flatten)]
        args: ops::tail::EventsArgs,
        /// The output form.
        #[command(flatten)]
        output: Output,
    },
    /// Dead letters: list, show, re-publish.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Re-drive a consumer group from a point (shown, done with
    /// `--execute`), or copy records to a topic.
    Replay {
        /// What to replay.
        #[command(flatten)]
        args: ops::replay::ReplayArgs,
        /// The output form.
        #[command(flatten)]
        output: Output,
    },
    /// Outbox rows a relay set aside after repeated failures: list, retry.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// The admin account: reset its password when it is lost.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Offer open-loop load to the system and report throughput, latency and resources.
    Bench {
        /// The load and the system.
        #[command(flatten)]
        args: bench::BenchArgs,
        /// The output form of the report (Markdown in text).
        #[command(flatten)]
        output: Output,
    },
    /// Faults under load against the services as separate processes; checks every promise.
    Chaos {
        /// The faults and the load.
        #[command(flatten)]
        args: chaos::ChaosArgs,
        /// The output form of the report (Markdown in text).
        #[command(flatten)]
        output: Output,
    },
    /// The configuration reference: every variable of every binary, with
    /// its default and help, as Markdown (docs/configuration.md is this
    /// output: `oms config-reference > docs/configuration.md`).
    ConfigReference {
        /// The output form (the variables as JSON in json and jsonl).
        #[command(flatten)]
        output: Output,
    },
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
        /// The output form.
        #[command(flatten)]
        output: Output,
    },
    /// One dead letter, whole (`--topic` and `--at <partition>:<offset>`).
    Show {
        /// Which.
        #[command(flatten)]
        selection: ops::dlq::Selection,
        /// The connection.
        #[command(flatten)]
        connection: ops::Connection,
        /// The output form.
        #[command(flatten)]
        output: Output,
    },
    /// Re-publish dead letters to the topic they came from. Without a
    /// selector (`--topic`, `--at`, `--key`, `--code`) that is every dead
    /// letter: shown, and done only with `--execute`.
    Replay {
        /// Which.
        #[command(flatten)]
        selection: ops::dlq::Selection,
        /// Print what would be re-published; change nothing.
        #[arg(long, conflicts_with = "execute")]
        dry_run: bool,
        /// Re-publish every dead letter when no selector narrows them.
        #[arg(long)]
        execute: bool,
        /// The connection.
        #[command(flatten)]
        connection: ops::Connection,
        /// The output form.
        #[command(flatten)]
        output: Output,
    },
}

/// `oms admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Set the admin's password (from `OMS_NEW_ADMIN_PASSWORD` or standard
    /// input), reactivate it, and end its sign-ins.
    ResetPassword {
        /// Which database and account.
        #[command(flatten)]
        args: ops::admin::ResetPasswordArgs,
        /// The output form.
        #[command(flatten)]
        output: Output,
    },
}

/// `oms outbox …`.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// The rows set aside, with their last error.
    List {
        /// The database.
        #[command(flatten)]
        args: ops::outbox::OutboxArgs,
        /// The output form.
        #[command(flatten)]
        output: Output,
    },
    /// Put set-aside rows back in line (all, or `--id`), once the cause is
    /// fixed: shown, and done only with `--execute`.
    Retry {
        /// Only these rows (repeatable).
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// Put them back in line (without it, only show which).
        #[arg(long)]
        execute: bool,
        /// The database.
        #[command(flatten)]
        args: ops::outbox::OutboxArgs,
        /// The output form.
        #[command(flatten)]
        output: Output,
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
    /// service gets its own database on it (default: SQLite files in the
    /// data directory).
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
    /// The admin's password at its first start (default: a random one,
    /// kept in `<data dir>/admin-password` and printed).
    #[arg(long, env = "OMS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Seals the token signing keys (default: a random key kept in
    /// `<data dir>/key-encryption-key`).
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
    /// The variables `oms up` reads from a file named by `<VARIABLE>_FILE`
    /// ([`read_secret_files`](Self::read_secret_files)).
    pub const SECRET_VARIABLES: [&'static str; 3] = [
        "OMS_DATABASE_URL",
        "OMS_ADMIN_PASSWORD",
        "OMS_KEY_ENCRYPTION_KEY",
    ];

    /// Reads the secrets given as files (`OMS_DATABASE_URL_FILE`,
    /// `OMS_ADMIN_PASSWORD_FILE`, `OMS_KEY_ENCRYPTION_KEY_FILE`), as the
    /// services do: see [`service_kit::secrets`].
    ///
    /// # Errors
    /// A secret given both directly and as a file, or a file that cannot
    /// be read or is empty.
    pub fn read_secret_files(&mut self) -> Result<(), service_kit::secrets::SecretError> {
        use service_kit::secrets::read_file;
        let [database_url, admin_password, key_encryption_key] = Self::SECRET_VARIABLES;
        read_file(&mut self.database_url, database_url)?;
        read_file(&mut self.admin_password, admin_password)?;
        read_file(&mut self.key_encryption_key, key_encryption_key)
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
            Command::Bench { args, output } => {
                let oms = std::env::current_exe()?;
                let progress = Progress::on_stderr(args.progress);
                let report = bench::run_with_progress(&args, oms, &progress).await;
                progress.finish();
                let report = report?;
                if output.is_text() {
                    println!("{}", report.markdown());
                } else {
                    output.document(&serde_json::to_value(&report)?);
                }
                eprintln!("report written to {}", args.out.join("bench.md").display());
                anyhow::ensure!(
                    report.invariants.hold(),
                    "an invariant does not hold after the run"
                );
                Ok(())
            }
            Command::Chaos { args, output } => {
                let progress = Progress::on_stderr(args.progress);
                let report = chaos::run_with_progress(&args, &progress).await;
                progress.finish();
                let report = report?;
                match output.format {
                    Format::Text => println!("{}", report.markdown()),
                    Format::Json => output.document(&serde_json::to_value(&report)?),
                    Format::Jsonl => output.list(
                        report
                            .outcomes
                            .iter()
                            .map(|o| {
                                let mut line = serde_json::json!(o);
                                line["seed"] = report.seed.into();
                                line
                            })
                            .collect(),
                    ),
                }
                anyhow::ensure!(report.holds(), "a promise was broken under chaos");
                Ok(())
            }
            Command::ConfigReference { output } => {
                let reference = config_reference::Reference::build();
                if output.is_text() {
                    print!("{}", reference.markdown());
                } else {
                    output.list(reference.variables_as_json());
                }
                Ok(())
            }
            Command::Topics { connection, output } => {
                let report =
                    tokio::task::spawn_blocking(move || ops::topics::report(&connection)).await??;
                match output.format {
                    Format::Text => ops::topics::print(&report),
                    Format::Json => output.document(&serde_json::json!(report)),
                    Format::Jsonl => output.list(
                        report
                            .partitions
                            .iter()
                            .map(|p| with_kind("partition", serde_json::json!(p)))
                            .chain(
                                report
                                    .lag
                                    .iter()
                                    .map(|l| with_kind("lag", serde_json::json!(l))),
                            )
                            .collect(),
                    ),
                }
                Ok(())
            }
            Command::Tail { args, output } => {
                anyhow::ensure!(
                    output.format != Format::Json || args.no_follow,
                    "-o json prints one document, and a followed topic never ends: add \
                     --no-follow, or use -o jsonl for one record per line as they arrive"
                );
                let (matched, records) = tokio::task::spawn_blocking(move || {
                    let mut records = Vec::new();
                    let matched = ops::tail::tail(&args, |record| match output.format {
                        Format::Text => println!("{}", ops::tail::render(record, false)),
                        Format::Jsonl => println!("{record}"),
                        Format::Json => records.push(record.clone()),
                    })?;
                    anyhow::Ok((matched, records))
                })
                .await??;
                if output.format == Format::Json {
                    output.list(records);
                }
                eprintln!("{matched} record(s)");
                Ok(())
            }
            Command::Events { args, output } => {
                let records =
                    tokio::task::spawn_blocking(move || ops::tail::order_events(&args)).await??;
                let count = records.len();
                if output.is_text() {
                    for record in &records {
                        println!("{}", ops::tail::render(record, false));
                    }
                } else {
                    output.list(records);
                }
                eprintln!("{count} record(s)");
                Ok(())
            }
            Command::Dlq(DlqCommand::List {
                selection,
                connection,
                output,
            }) => {
                let retention = ops::dlq::retention(&connection, &selection).await?;
                let letters =
                    tokio::task::spawn_blocking(move || ops::dlq::select(&connection, &selection))
                        .await??;
                let letters: Vec<_> = letters.into_iter().map(|(letter, _)| letter).collect();
                match output.format {
                    Format::Text => {
                        for topic in &retention {
                            println!("{topic}");
                        }
                        for letter in &letters {
                            println!("{}", ops::dlq::render(letter, false));
                        }
                        println!("{} dead letter(s)", letters.len());
                    }
                    Format::Json => output.document(&serde_json::json!({
                        "retention": retention,
                        "dead_letters": letters,
                    })),
                    Format::Jsonl => output.list(
                        retention
                            .iter()
                            .map(|r| with_kind("retention", serde_json::json!(r)))
                            .chain(
                                letters
                                    .iter()
                                    .map(|l| with_kind("dead_letter", serde_json::json!(l))),
                            )
                            .collect(),
                    ),
                }
                Ok(())
            }
            Command::Dlq(DlqCommand::Show {
                selection,
                connection,
                output,
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
                if output.is_text() {
                    println!("{:#}", ops::dlq::show(letter));
                } else {
                    output.document(&ops::dlq::show(letter));
                }
                Ok(())
            }
            Command::Dlq(DlqCommand::Replay {
                selection,
                dry_run,
                execute,
                connection,
                output,
            }) => {
                // Every dead letter of every topic at once is the one
                // replay an operator may not mean: it waits for --execute.
                let plan_only = dry_run || (selection.is_everything() && !execute);
                let summary = ops::dlq::replay(&connection, &selection, plan_only).await?;
                if output.is_text() {
                    for refused in &summary.refused {
                        eprintln!("{refused}");
                    }
                    for planned in &summary.planned {
                        println!("  {planned}");
                    }
                    let verb = if plan_only {
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
                } else {
                    output.document(&serde_json::json!(summary));
                }
                if plan_only && !dry_run {
                    output.note(output::DRY_RUN);
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
            Command::Admin(AdminCommand::ResetPassword { args, output }) => {
                let id = ops::admin::reset_password(&args).await?;
                if output.is_text() {
                    println!(
                        "the admin account {} ({id}) has its new password",
                        args.email
                    );
                } else {
                    output.document(&serde_json::json!({"email": args.email, "id": id}));
                }
                Ok(())
            }
            Command::Outbox(OutboxCommand::List { args, output }) => {
                let rows = ops::outbox::list(&args).await?;
                if output.is_text() {
                    ops::outbox::print(&rows);
                } else {
                    output.list(rows.iter().map(ops::outbox::describe).collect());
                }
                Ok(())
            }
            Command::Outbox(OutboxCommand::Retry {
                ids,
                execute,
                args,
                output,
            }) => {
                if execute {
                    let count = ops::outbox::retry(&args, &ids).await?;
                    if output.is_text() {
                        println!("put {count} row(s) back in line");
                    } else {
                        output.document(&serde_json::json!({ "dry_run": false, "retried": count }));
                    }
                    return Ok(());
                }
                let rows = ops::outbox::planned_retry(&args, &ids).await?;
                if output.is_text() {
                    ops::outbox::print(&rows);
                    println!("would put {} row(s) back in line", rows.len());
                } else {
                    output.document(&serde_json::json!({
                        "dry_run": true,
                        "would_retry": rows.len(),
                        "rows": rows.iter().map(ops::outbox::describe).collect::<Vec<_>>(),
                    }));
                }
                output.note(output::DRY_RUN);
                Ok(())
            }
            Command::Replay { args, output } => {
                let summary = ops::replay::replay(&args).await?;
                if output.is_text() {
                    for p in &summary.partitions {
                        println!(
                            "  {}[{}]: {} .. {}",
                            summary.topic, p.partition, p.from, p.to
                        );
                    }
                    let done = if summary.dry_run { "would" } else { "did" };
                    match summary.mode.as_str() {
                        "reset" => {
                            println!(
                                "{done} reset group {}: {} record(s) to re-consume from {}",
                                summary.target, summary.records, summary.topic
                            );
                            if summary.dry_run && summary.live_members > 0 {
                                println!(
                                    "group {} has {} live member(s): stop its service before \
                                     --execute (or add --force)",
                                    summary.target, summary.live_members
                                );
                            }
                        }
                        _ => println!(
                            "{done} copy {} record(s) from {} to {}",
                            summary.records, summary.topic, summary.target
                        ),
                    }
                } else {
                    output.document(&serde_json::json!(summary));
                }
                if summary.dry_run && !args.dry_run {
                    output.note(output::DRY_RUN);
                }
                Ok(())
            }
        }
    }
}
