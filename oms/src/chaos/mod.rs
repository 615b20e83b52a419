//! `oms chaos`: steady open-loop load against the services running as
//! separate processes (two instances each of inventory-svc and
//! customer-svc, two of order-svc) on a private PostgreSQL and a real Kafka
//! broker, while one fault at a time is injected, then faults at random
//! (with a printed seed). After each scenario, once the system is quiet,
//! it checks what the system promises ([`checks`]): every accepted order
//! decided and recorded once in its timeline, stock and credit held exactly
//! for the confirmed orders (so nothing was applied twice), the audits
//! balanced, every outbox drained, every consumer group caught up, and
//! every poison record in its dead-letter topic.
//!
//! ## Faults
//! `kill -9` of each service instance mid-load and its restart; broker
//! SIGKILL and restart; PostgreSQL `restart -m immediate`; an instance
//! joining and leaving its group (rebalance); duplicates of real records
//! on every topic; poison on every topic (malformed JSON, schema
//! violations, an over-long string, an overflowing amount, a record over
//! the size limit); replies after the saga's deadline; a flood of 1,100
//! silent connections (and half HTTP/2 prefaces) from one address while a
//! client on another must still be answered; a backlog of 200 orders of
//! 100 lines placed while the broker is away. And on the SQLite
//! default: `oms up` killed with SIGKILL mid-load and started again on its
//! data directory (scenario `kill-oms-up-sqlite`).
//!
//! ## The cluster form
//! `oms chaos --brokers 3`: the same system on a replicated cluster of
//! three brokers (topics with three replicas, two in sync, `acks=all`),
//! with the faults a cluster is for ([`Fault::CLUSTER`]): a broker killed
//! with SIGKILL mid-load and started again after its partitions moved, then
//! the active controller killed the same way, then a third inventory-svc
//! joining its group and leaving.

pub mod checks;
pub mod cluster;
mod faults;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::bench::{self, BenchArgs};
use crate::progress::Progress;
use cluster::{ADMIN_EMAIL, ADMIN_PASSWORD, Cluster, Service};

/// Options of `oms chaos`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// Orders offered per second during each scenario.
    #[arg(long, default_value_t = 40)]
    pub rate: u32,
    /// Seconds of load per scenario.
    #[arg(long, default_value_t = 12)]
    pub scenario_secs: u64,
    /// After the scenarios, this many seconds of faults chosen at random
    /// (0: none). The long form: `--random-secs 600`.
    #[arg(long, default_value_t = 0)]
    pub random_secs: u64,
    /// Seed of the random faults (default: the time).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only these scenarios (default: all of the form `--brokers` picks).
    #[arg(long = "scenario", value_enum)]
    pub scenarios: Vec<Scenario>,
    /// Where the binaries `order-svc`, `inventory-svc`, `customer-svc` are
    /// (default: next to this program).
    #[arg(long)]
    pub binaries: Option<PathBuf>,
    /// The saga deadline the services run with, in seconds.
    #[arg(long, default_value_t = 8)]
    pub saga_deadline_secs: u64,
    /// How long to wait for quiet after a scenario.
    #[arg(long, default_value_t = 120)]
    pub quiet_timeout_secs: u64,
    /// Keep the work directory (logs, databases) afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Kafka brokers: 1, or a replicated cluster (3: the cluster form, with
    /// its own scenarios).
    #[arg(long, default_value_t = 1)]
    pub brokers: u32,
    /// Show progress on standard error even when it is not a terminal
    /// (on a terminal it is always shown).
    #[arg(long)]
    pub progress: bool,
}

impl ChaosArgs {
    /// The short form the test suite runs: every scenario of `brokers`
    /// once, 30 orders/s for 12 s each, a fixed seed, no random faults.
    pub fn short_form(brokers: u32) -> Self {
        Self {
            rate: 30,
            scenario_secs: 12,
            random_secs: 0,
            seed: Some(42),
            scenarios: Vec::new(),
            binaries: None,
            saga_deadline_secs: 8,
            quiet_timeout_secs: 120,
            keep: false,
            brokers,
            progress: false,
        }
    }

    /// Refuses scenarios the chosen form does not have (`poison` on the
    /// cluster form, say): a run that would silently skip them proves
    /// nothing.
    ///
    /// # Errors
    /// One line naming the scenario and the form's scenarios.
    pub fn check_scenarios(&self) -> anyhow::Result<()> {
        let offered = Scenario::for_brokers(self.brokers);
        if let Some(missing) = self.scenarios.iter().find(|s| !offered.contains(s)) {
            anyhow::bail!(
                "scenario {} is not one of the {} form's: {}",
                missing.name(),
                if self.brokers > 1 {
                    "cluster"
                } else {
                    "single-broker"
                },
                offered
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    }

    fn chose(&self, name: &str) -> bool {
        self.scenarios.is_empty() || self.scenarios.iter().any(|s| s.name() == name)
    }
}

/// A scenario `--scenario` can name: a fault ([`Fault::name`]), or
/// `kill-oms-up-sqlite`. clap checks the name against this closed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// One fault under load.
    Fault(Fault),
    /// `oms up` on SQLite killed with SIGKILL mid-load, started again.
    KillOmsUpSqlite,
}

/// Every scenario of both forms, built from the faults' own lists.
const SCENARIOS: [Scenario; Fault::ALL.len() + 2] = {
    let mut all = [Scenario::KillOmsUpSqlite; Fault::ALL.len() + 2];
    let mut i = 0;
    while i < Fault::ALL.len() {
        all[i] = Scenario::Fault(Fault::ALL[i]);
        i += 1;
    }
    all[i] = Scenario::Fault(Fault::KillController);
    all
};

impl clap::ValueEnum for Scenario {
    fn value_variants<'a>() -> &'a [Self] {
        &SCENARIOS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

impl Scenario {
    /// Its name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fault(fault) => fault.name(),
            Scenario::KillOmsUpSqlite => SQLITE_SCENARIO,
        }
    }

    /// The scenarios of the form with `brokers` brokers, in the order they run.
    pub fn for_brokers(brokers: u32) -> Vec<Scenario> {
        Fault::for_brokers(brokers)
            .iter()
            .map(|&fault| Scenario::Fault(fault))
            .chain((brokers == 1).then_some(Scenario::KillOmsUpSqlite))
            .collect()
    }
}

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL of an instance of the service, then a restart.
    Kill(Service),
    /// Broker SIGKILL and restart (on a cluster: a broker that is not the
    /// active controller, down until its partitions moved).
    KillBroker,
    /// SIGKILL of the cluster's active controller, then its restart.
    KillController,
    /// PostgreSQL `restart -m immediate`.
    CrashPostgres,
    /// A third inventory-svc joins its group, then leaves.
    Rebalance,
    /// Real records published again on every topic.
    Duplicates,
    /// Poison on every topic.
    Poison,
    /// inventory-svc is away past the saga's deadline: its replies come late.
    LateReplies,
    /// 1,100 connections from one other address that send nothing or half
    /// the HTTP/2 preface, held open against order-svc during the load.
    SilentFlood,
    /// The broker is away while 200 orders of 100 lines each are placed;
    /// when it comes back, they reach the participants at once.
    HundredLineBacklog,
}

impl Fault {
    /// Every fault, in the order the scenarios run.
    pub const ALL: [Fault; 11] = [
        Fault::Kill(Service::Inventory),
        Fault::Kill(Service::Customer),
        Fault::Kill(Service::Order),
        Fault::KillBroker,
        Fault::CrashPostgres,
        Fault::Rebalance,
        Fault::Duplicates,
        Fault::Poison,
        Fault::LateReplies,
        Fault::SilentFlood,
        Fault::HundredLineBacklog,
    ];

    /// The faults of the cluster form, in the order they run.
    pub const CLUSTER: [Fault; 3] = [Fault::KillBroker, Fault::KillController, Fault::Rebalance];

    /// The faults the suite runs against `brokers` brokers.
    pub fn for_brokers(brokers: u32) -> &'static [Fault] {
        if brokers > 1 {
            &Self::CLUSTER
        } else {
            &Self::ALL
        }
    }

    /// Its name on the command line and in the table.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill(Service::Inventory) => "kill-inventory",
            Fault::Kill(Service::Customer) => "kill-customer",
            Fault::Kill(Service::Order) => "kill-order",
            Fault::KillBroker => "kill-broker",
            Fault::KillController => "kill-controller",
            Fault::CrashPostgres => "crash-postgres",
            Fault::Rebalance => "rebalance",
            Fault::Duplicates => "duplicates",
            Fault::Poison => "poison",
            Fault::LateReplies => "late-replies",
            Fault::SilentFlood => "silent-connections",
            Fault::HundredLineBacklog => "hundred-line-backlog",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    /// The scenario.
    pub scenario: String,
    /// Orders the load placed (answered 202).
    pub placed: usize,
    /// Every order of the system by status, once quiet.
    pub statuses: String,
    /// Faults injected.
    pub faults: usize,
    /// Broken promises (must be empty).
    pub violations: Vec<String>,
    /// From the end of the load until the system was quiet.
    pub quiescence_secs: f64,
}

/// Every scenario's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The seed of the random faults.
    pub seed: u64,
    /// One per scenario.
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// Whether no scenario broke a promise.
    pub fn holds(&self) -> bool {
        self.outcomes.iter().all(|o| o.violations.is_empty())
    }

    /// What makes a run worthless or wrong, scenario by scenario: one that
    /// placed no order (it proved nothing), one that broke a promise.
    pub fn problems(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .flat_map(|o| {
                let idle = (o.placed == 0).then(|| format!("{} placed no order", o.scenario));
                let broken = (!o.violations.is_empty())
                    .then(|| format!("{} broke a promise: {:#?}", o.scenario, o.violations));
                idle.into_iter().chain(broken)
            })
            .collect()
    }

    /// The table, in Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| scenario | orders placed | faults injected | violations | time to quiescence | all orders by status |\n\
             |---|---|---|---|---|---|\n",
        );
        for o in &self.outcomes {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.1} s | {} |\n",
                o.scenario,
                o.placed,
                o.faults,
                o.violations.len(),
                o.quiescence_secs,
                o.statuses
            ));
        }
        out.push_str(&format!("\nrandom faults seed: {}\n", self.seed));
        for o in &self.outcomes {
            for v in o.violations.iter().take(20) {
                out.push_str(&format!("- {}: {v}\n", o.scenario));
            }
        }
        out
    }
}

/// Runs the suite.
///
/// # Errors
/// When the system cannot be started or a fault cannot be injected (a
/// broken promise is not an error: it is in the report).
pub async fn run(args: &ChaosArgs) -> anyhow::Result<Report> {
    run_with_progress(args, &Progress::hidden()).await
}

/// [`run`], saying each step on `progress`.
///
/// # Errors
/// As [`run`], and a scenario the chosen form does not have.
pub async fn run_with_progress(args: &ChaosArgs, progress: &Progress) -> anyhow::Result<Report> {
    args.check_scenarios()?;
    let _heartbeats = progress.heartbeats();
    progress.step(format!(
        "starting PostgreSQL, {} and six service instances",
        if args.brokers > 1 {
            format!("{} Kafka brokers", args.brokers)
        } else {
            "a Kafka broker".to_owned()
        }
    ));
    let binaries = match &args.binaries {
        Some(dir) => dir.clone(),
        None => {
            let exe = std::env::current_exe()?;
            let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
            // A test binary lives in `deps/`, the services one level up.
            if dir.join(Service::Order.binary()).exists() {
                dir
            } else {
                dir.parent().map(PathBuf::from).unwrap_or(dir)
            }
        }
    };
    let work = std::env::temp_dir().join(format!("oms-chaos-{}", Uuid::now_v7().simple()));
    let mut cluster = Cluster::start(
        &work,
        &binaries,
        [
            (Service::Order, 2),
            (Service::Inventory, 2),
            (Service::Customer, 2),
        ],
        args.brokers,
        args.saga_deadline_secs,
    )
    .await?;
    let mut outcome = scenarios(&mut cluster, args, progress).await;
    // `oms up` runs one broker of its own: not a scenario of the cluster form.
    if let Ok(report) = &mut outcome
        && args.brokers == 1
        && args.chose(SQLITE_SCENARIO)
    {
        progress.step(format!(
            "scenario {SQLITE_SCENARIO}: {} s of load, then waiting for quiet",
            args.scenario_secs
        ));
        match sqlite_oms_up(&cluster, args, &binaries, &work).await {
            Ok(sqlite) => {
                progress.println(&format!(
                    "{}: {} orders, {} violations, quiet after {:.1} s",
                    sqlite.scenario,
                    sqlite.placed,
                    sqlite.violations.len(),
                    sqlite.quiescence_secs
                ));
                report.outcomes.push(sqlite);
            }
            Err(error) => outcome = Err(error),
        }
    }
    progress.step("stopping the services, the broker and PostgreSQL");
    cluster.destroy(args.keep).await;
    if args.keep {
        eprintln!("logs and data kept in {}", work.display());
    }
    outcome
}

async fn scenarios(
    cluster: &mut Cluster,
    args: &ChaosArgs,
    progress: &Progress,
) -> anyhow::Result<Report> {
    let http = reqwest::Client::new();
    let token = bench::system::login(
        &http,
        &cluster.url(Service::Customer),
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    )
    .await?;
    let system = Arc::new(attach(cluster, args).await?);
    let fixtures = Arc::new(bench::load::Fixtures::create(&system).await?);
    let seed = args
        .seed
        .unwrap_or_else(|| u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(1));
    let mut accepted = BTreeSet::new();
    let mut report = Report {
        seed,
        outcomes: Vec::new(),
    };
    let faults = Fault::for_brokers(args.brokers);
    let chosen: Vec<Fault> = faults
        .iter()
        .copied()
        .filter(|f| args.chose(f.name()))
        .collect();
    let mut round = 0;
    let count = chosen.len();
    for fault in chosen {
        round += 1;
        progress.step(format!(
            "scenario {round}/{count}: {} ({} s of load, then waiting for quiet)",
            fault.name(),
            args.scenario_secs
        ));
        let outcome = scenario(
            cluster,
            args,
            &system,
            &fixtures,
            &http,
            &token,
            fault.name(),
            &[fault],
            round,
            &mut accepted,
        )
        .await?;
        progress.println(&format!(
            "{}: {} orders, {} violations, quiet after {:.1} s",
            outcome.scenario,
            outcome.placed,
            outcome.violations.len(),
            outcome.quiescence_secs
        ));
        report.outcomes.push(outcome);
    }
    if args.random_secs > 0 {
        let mut random = bench::load::SplitMix(seed);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(args.random_secs) {
            round += 1;
            let faults: Vec<Fault> = (0..3)
                .map(|_| faults[(random.next_u64() % faults.len() as u64) as usize])
                .collect();
            progress.step(format!(
                "random faults, {} of {} s",
                started.elapsed().as_secs(),
                args.random_secs
            ));
            let name = format!(
                "random: {}",
                faults
                    .iter()
                    .map(|f| f.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let outcome = scenario(
                cluster,
                args,
                &system,
                &fixtures,
                &http,
                &token,
                &name,
                &faults,
                round,
                &mut accepted,
            )
            .await?;
            progress.println(&format!("{name}: {} violations", outcome.violations.len()));
            report.outcomes.push(outcome);
        }
    }
    Ok(report)
}

/// The name of the SQLite scenario.
const SQLITE_SCENARIO: &str = "kill-oms-up-sqlite";

/// `oms up` on SQLite files (its default), on the suite's broker under its
/// own topic prefix, killed with SIGKILL in the middle of the load and
/// started again on the same data directory.
async fn sqlite_oms_up(
    cluster: &Cluster,
    args: &ChaosArgs,
    binaries: &std::path::Path,
    work: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let data_dir = work.join("oms-up-sqlite");
    let prefix = "sqlite.";
    let ports = [
        cluster::free_port()?,
        cluster::free_port()?,
        cluster::free_port()?,
    ];
    let start = || -> anyhow::Result<tokio::process::Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(work.join("oms-up-sqlite.log"))?;
        let mut command = tokio::process::Command::new(binaries.join("oms"));
        cluster::without_oms_environment(&mut command);
        Ok(command
            .arg("up")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--kafka", &cluster.broker.bootstrap()])
            .args(["--topic-prefix", prefix])
            .args(["--order-port", &ports[0].to_string()])
            .args(["--inventory-port", &ports[1].to_string()])
            .args(["--customer-port", &ports[2].to_string()])
            .env("OMS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?)
    };
    let urls = [Service::Order, Service::Inventory, Service::Customer]
        .into_iter()
        .zip(ports)
        .map(|(s, port)| (s, format!("http://127.0.0.1:{port}")))
        .collect::<Vec<_>>();
    let urls: [(Service, String); 3] = urls.try_into().expect("three services");
    let http = reqwest::Client::new();
    let wait_ready = |urls: [(Service, String); 3]| {
        let http = http.clone();
        async move {
            for (_, url) in &urls {
                cluster::wait_until_ready(&http, url).await?;
            }
            anyhow::Ok(())
        }
    };
    let mut oms_up = start()?;
    wait_ready(urls.clone()).await?;
    let mut load_args = bench_args(cluster, args);
    load_args.topic_prefix = prefix.into();
    load_args.order_url = Some(urls[0].1.clone());
    load_args.inventory_url = Some(urls[1].1.clone());
    load_args.customer_url = Some(urls[2].1.clone());
    let system =
        Arc::new(bench::system::System::start_or_attach(&load_args, PathBuf::new()).await?);
    let token = system.admin_token.clone();
    let fixtures = Arc::new(bench::load::Fixtures::create(&system).await?);
    let load = {
        let (system, fixtures, load_args) = (system.clone(), fixtures.clone(), load_args.clone());
        tokio::spawn(async move { bench::load::offer(&system, &fixtures, &load_args).await })
    };
    tokio::time::sleep(Duration::from_secs(args.scenario_secs) / 2).await;
    let _ = oms_up.start_kill();
    let _ = oms_up.wait().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    oms_up = start()?;
    wait_ready(urls.clone()).await?;
    let offered = load.await?;
    let placed: BTreeSet<Uuid> = offered.accepted.iter().map(|a| a.id).collect();
    let sqlite = |service: Service| {
        format!(
            "sqlite://{}/{}-svc.sqlite",
            data_dir.display(),
            service.short()
        )
    };
    let target = cluster::Target {
        databases: [Service::Order, Service::Inventory, Service::Customer].map(|s| (s, sqlite(s))),
        connection: crate::ops::Connection {
            kafka: cluster.broker.bootstrap(),
            topic_prefix: prefix.into(),
        },
        urls,
    };
    let end_of_load = Instant::now();
    let outcome = settle(&target, args, &http, &token, &placed, end_of_load).await;
    if let Some(pid) = oms_up.id() {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), oms_up.wait()).await;
    let (violations, quiescence_secs, statuses) = outcome?;
    Ok(Outcome {
        scenario: SQLITE_SCENARIO.into(),
        placed: placed.len(),
        statuses,
        faults: 1,
        violations,
        quiescence_secs,
    })
}

/// Waits until `target` is quiet (or the timeout), then checks it; returns
/// the violations, the seconds it took and the orders by status.
async fn settle(
    target: &cluster::Target,
    args: &ChaosArgs,
    http: &reqwest::Client,
    token: &str,
    accepted: &BTreeSet<Uuid>,
    end_of_load: Instant,
) -> anyhow::Result<(Vec<String>, f64, String)> {
    let deadline = end_of_load + Duration::from_secs(args.quiet_timeout_secs);
    let snapshot = loop {
        match checks::Snapshot::read(target).await {
            Ok(s) if s.quiet() => break s,
            Ok(s) if Instant::now() > deadline => break s,
            Err(error) if Instant::now() > deadline => return Err(error),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    let quiescence_secs = end_of_load.elapsed().as_secs_f64();
    let mut violations = snapshot.violations(accepted);
    violations.extend(checks::audits_balance(target, http, token).await);
    Ok((violations, quiescence_secs, snapshot.statuses()))
}

async fn attach(cluster: &Cluster, args: &ChaosArgs) -> anyhow::Result<bench::system::System> {
    let bench_args = bench_args(cluster, args);
    bench::system::System::start_or_attach(&bench_args, PathBuf::new()).await
}

fn bench_args(cluster: &Cluster, args: &ChaosArgs) -> BenchArgs {
    BenchArgs {
        rate: args.rate,
        duration: args.scenario_secs,
        reject_percent: 20.0,
        max_in_flight: 2_000,
        out: PathBuf::new(),
        database_url: None,
        database_prefix: String::new(),
        sqlite_synchronous: Default::default(),
        kafka: Some(cluster.broker.bootstrap()),
        topic_prefix: cluster.topic_prefix.clone(),
        order_url: Some(cluster.url(Service::Order)),
        inventory_url: Some(cluster.url(Service::Inventory)),
        customer_url: Some(cluster.url(Service::Customer)),
        admin_email: ADMIN_EMAIL.into(),
        admin_password: Some(ADMIN_PASSWORD.into()),
        settle_timeout: 60,
        limit_secs: 0,
        progress: false,
    }
}

#[allow(clippy::too_many_arguments)]
async fn scenario(
    cluster: &mut Cluster,
    args: &ChaosArgs,
    system: &Arc<bench::system::System>,
    fixtures: &Arc<bench::load::Fixtures>,
    http: &reqwest::Client,
    token: &str,
    name: &str,
    faults: &[Fault],
    round: usize,
    accepted: &mut BTreeSet<Uuid>,
) -> anyhow::Result<Outcome> {
    let load_args = bench_args(cluster, args);
    let load = {
        let (system, fixtures) = (system.clone(), fixtures.clone());
        tokio::spawn(async move { bench::load::offer(&system, &fixtures, &load_args).await })
    };
    let spacing = Duration::from_secs(args.scenario_secs) / (faults.len() as u32 + 1);
    let mut poison = 0;
    let mut seen_by_faults = Vec::new();
    for fault in faults {
        tokio::time::sleep(spacing).await;
        let injected = faults::inject(cluster, args, system, *fault, round).await?;
        poison += injected.poison;
        seen_by_faults.extend(injected.violations);
    }
    let offered = load.await?;
    let placed: Vec<Uuid> = offered.accepted.iter().map(|a| a.id).collect();
    // Some of the orders are cancelled by an admin (one that was already
    // rejected answers 409, which is right).
    for id in placed.iter().skip(3).step_by(7) {
        let _ = http
            .post(format!(
                "{}/orders/{id}/cancel",
                cluster.url(Service::Order)
            ))
            .bearer_auth(token)
            .send()
            .await;
    }
    accepted.extend(placed.iter().copied());
    let end_of_load = Instant::now();
    let (mut violations, quiescence_secs, statuses) =
        settle(&cluster.target(), args, http, token, accepted, end_of_load).await?;
    violations.extend(seen_by_faults);
    let dead = faults::dead_letters(cluster).await?;
    if dead < poison {
        violations.push(format!(
            "{poison} poison records injected, {dead} dead letters in all"
        ));
    }
    Ok(Outcome {
        scenario: name.to_owned(),
        statuses,
        placed: placed.len(),
        faults: faults.len(),
        violations,
        quiescence_secs,
    })
}
