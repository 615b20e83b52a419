//! `oms bench`: how many orders the system confirms per second, and how
//! soon a customer hears back, measured against the real thing.
//!
//! ## What it does
//! 1. Starts the system as a child process (`oms up` on a fresh data
//!    directory: SQLite by default, PostgreSQL with `--database-url`), or
//!    targets one that runs (`--order-url` …).
//! 2. Sets up through the public API: a product with ample stock, one
//!    whose stock runs out, a customer with ample credit and one whose
//!    credit fits few orders, so that a share of the orders
//!    (`--reject-percent`, default 5) is rejected on stock or on credit.
//! 3. Offers load **open loop**: order *i* is due at `start + i / rate`
//!    and is sent then, whatever happened to the others; every latency is
//!    counted from the due time, so a stalled server cannot hide its
//!    stall (no coordinated omission).
//! 4. Times place→confirmed and place→rejected from the `orders` topic
//!    (the OrderConfirmed/OrderRejected records), not by polling.
//! 5. Samples RSS and CPU of each process once a second: the services,
//!    the broker, PostgreSQL's processes together, and the generator.
//! 6. Once the load ends, waits until every order is decided and checks
//!    the invariants: no order PENDING, both audits balanced.
//! 7. Measures, in the same run, once the system is idle, what the machine
//!    allows ([`limits`]): transactions shaped like our hot ones on the
//!    same database engine (pgbench on PostgreSQL), and Kafka's raw
//!    produce and consume rates for records of our size; the report gives
//!    our orders/s as a share of what those allow.
//! 8. Prints the report and writes it as Markdown, JSON and a PNG plot
//!    (`bench.md`, `bench.json`, `bench.png`) into `--out`.
//!
//! A benchmark, not a test: nothing here asserts a timing.

pub mod limits;
pub mod load;
pub mod observe;
pub mod plot;
pub mod procs;
pub mod report;
pub mod system;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use service_kit::database::SqliteDurability;

use crate::progress::Progress;

/// Options of `oms bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Orders offered per second.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// How long the load is offered, in seconds.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Percent of the orders meant to be rejected (half on stock, half on credit).
    #[arg(long, default_value_t = 5.0)]
    pub reject_percent: f64,
    /// Most requests in flight; an order due while this many are in flight
    /// is counted as an error (`GENERATOR_SATURATED`) instead of being sent.
    #[arg(long, default_value_t = 20_000)]
    pub max_in_flight: usize,
    /// Where the report (`bench.md`, `bench.json`) is written.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// A PostgreSQL server for the system the bench starts (default: SQLite).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Names of the databases the bench creates on that server.
    #[arg(long, default_value = "oms_bench_")]
    pub database_prefix: String,
    /// SQLite durability of the system the bench starts.
    #[arg(long, value_enum, default_value_t = SqliteDurability::Full)]
    pub sqlite_synchronous: SqliteDurability,
    /// Use this broker (host:port) instead of the one `oms up` starts.
    #[arg(long)]
    pub kafka: Option<String>,
    /// Prefix of topics and consumer groups (of a running system, or of the one started).
    #[arg(long, default_value = "")]
    pub topic_prefix: String,
    /// A running system's order-svc (with `--inventory-url`, `--customer-url`
    /// and `--kafka`): the bench starts nothing.
    #[arg(long, requires_all = ["inventory_url", "customer_url", "kafka"])]
    pub order_url: Option<String>,
    /// A running system's inventory-svc.
    #[arg(long)]
    pub inventory_url: Option<String>,
    /// A running system's customer-svc.
    #[arg(long)]
    pub customer_url: Option<String>,
    /// The admin account of that system.
    #[arg(long, env = "OMS_ADMIN_EMAIL", default_value = "admin@oms.local")]
    pub admin_email: String,
    /// Its password (only to attach to a running system: the system the
    /// bench starts makes its own).
    #[arg(long, env = "OMS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// How long to wait for the last orders to be decided after the load.
    #[arg(long, default_value_t = 60)]
    pub settle_timeout: u64,
    /// Seconds each limit (database, Kafka) is measured for; 0 skips them.
    #[arg(long, default_value_t = 10)]
    pub limit_secs: u64,
    /// Show progress on standard error even when it is not a terminal
    /// (on a terminal it is always shown).
    #[arg(long)]
    pub progress: bool,
}

/// Runs the bench. `oms` is the binary to start `oms up` with.
///
/// # Errors
/// When the system cannot be started or set up, or the report cannot be written.
pub async fn run(args: &BenchArgs, oms: PathBuf) -> anyhow::Result<report::Report> {
    run_with_progress(args, oms, &Progress::hidden()).await
}

/// [`run`], saying each step on `progress`.
///
/// # Errors
/// As [`run`].
pub async fn run_with_progress(
    args: &BenchArgs,
    oms: PathBuf,
    progress: &Progress,
) -> anyhow::Result<report::Report> {
    let _heartbeats = progress.heartbeats();
    anyhow::ensure!(args.rate > 0, "--rate must be above 0");
    anyhow::ensure!(
        (0.0..=100.0).contains(&args.reject_percent),
        "--reject-percent is a percentage"
    );
    progress.step("starting the system (or attaching to it)");
    let system = system::System::start_or_attach(args, oms).await?;
    let outcome = async {
        progress.step("creating products and customers");
        let fixtures = load::Fixtures::create(&system).await?;
        let observer = observe::Observer::start(&system).await?;
        let sampler = procs::Sampler::start(system.pids(), Duration::from_secs(1));
        progress.step(format!(
            "offering {} orders/s for {} s",
            args.rate, args.duration
        ));
        let offered = load::offer(&system, &fixtures, args).await;
        progress.step(format!(
            "waiting for {} accepted orders to be decided (at most {} s)",
            offered.accepted(),
            args.settle_timeout
        ));
        let settled = system
            .wait_until_decided(offered.accepted(), Duration::from_secs(args.settle_timeout))
            .await;
        // Decisions can still be on their way through the topic.
        observer
            .drain(offered.accepted(), Duration::from_secs(10))
            .await;
        let resources = sampler.stop().await;
        let invariants = system.invariants(settled).await;
        let mut report =
            report::Report::build(args, &system, &offered, &observer, resources, invariants);
        // The system is idle now; the limits use its broker and database server.
        if args.limit_secs > 0 {
            progress.step(format!(
                "measuring the machine's limits ({} s each)",
                args.limit_secs
            ));
            report.set_limits(limits::measure(args, &system.kafka, args.limit_secs).await);
        }
        anyhow::Ok(report)
    }
    .await;
    progress.step("stopping the system");
    system.stop().await;
    let report = outcome?;
    progress.step("writing the report");
    report
        .write(&args.out)
        .and_then(|()| plot::draw(&report, &args.out.join("bench.png")))
        .with_context(|| format!("writing the report into {}", args.out.display()))?;
    Ok(report)
}
