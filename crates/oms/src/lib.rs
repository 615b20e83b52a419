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
//! ## Layout
//! - [`up`]: starting and stopping the system, and the demo data.

#![forbid(unsafe_code)]

pub mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    #[arg(long, env = "OMS_DATABASE_URL")]
    pub database_url: Option<String>,
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
    /// Admin account password.
    #[arg(
        long,
        env = "OMS_ADMIN_PASSWORD",
        default_value = "admin-change-me",
        hide_default_value = true
    )]
    pub admin_password: String,
    /// Prefix of topics and consumer groups.
    #[arg(long, env = "OMS_TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,
    /// Also create a few products and customers, so the README's walk-through works at once.
    #[arg(long)]
    pub demo: bool,
}

impl Cli {
    /// Runs the command.
    ///
    /// # Errors
    /// Whatever the command fails with.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Up(args) => up::run(args).await,
        }
    }
}
