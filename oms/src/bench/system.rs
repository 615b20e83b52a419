//! The system under test: an `oms up` child process on a fresh data
//! directory (and fresh PostgreSQL databases with `--database-url`), or a
//! system that already runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::BenchArgs;
use crate::up::with_database;

/// Where the system is, and what the bench started.
pub struct System {
    /// order-svc's base URL.
    pub order_url: String,
    /// inventory-svc's base URL.
    pub inventory_url: String,
    /// customer-svc's base URL.
    pub customer_url: String,
    /// Kafka bootstrap servers.
    pub kafka: String,
    /// Topic prefix.
    pub topic_prefix: String,
    /// An admin token.
    pub admin_token: String,
    /// `SQLite`, `PostgreSQL` or `running system`.
    pub backend: String,
    /// The HTTP client every request goes through.
    pub http: reqwest::Client,
    child: Option<Child>,
    data_dir: Option<tempfile::TempDir>,
    /// PostgreSQL server and database prefix of the databases the bench made.
    databases: Option<(String, String)>,
    /// Whether `oms up` started the broker (else it runs elsewhere).
    own_broker: bool,
}

impl System {
    /// Starts `oms up` (`oms` is its binary), or attaches to the system
    /// that `--order-url` … name.
    ///
    /// # Errors
    /// When the system does not come up or the admin cannot log in.
    pub async fn start_or_attach(args: &BenchArgs, oms: PathBuf) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()?;
        if let (Some(order), Some(inventory), Some(customer), Some(kafka)) = (
            &args.order_url,
            &args.inventory_url,
            &args.customer_url,
            &args.kafka,
        ) {
            let password = args
                .admin_password
                .as_deref()
                .context("attaching to a running system needs its OMS_ADMIN_PASSWORD")?;
            let admin_token = login(&http, customer, &args.admin_email, password)
                .await
                .context("logging in as the admin of the running system")?;
            return Ok(Self {
                order_url: order.trim_end_matches('/').to_owned(),
                inventory_url: inventory.trim_end_matches('/').to_owned(),
                customer_url: customer.trim_end_matches('/').to_owned(),
                kafka: kafka.clone(),
                topic_prefix: args.topic_prefix.clone(),
                admin_token,
                backend: "running system".into(),
                http,
                child: None,
                data_dir: None,
                databases: None,
                own_broker: false,
            });
        }
        let data_dir = tempfile::Builder::new().prefix("oms-bench-").tempdir()?;
        let mut command = Command::new(&oms);
        command
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args([
                "--order-port",
                "0",
                "--inventory-port",
                "0",
                "--customer-port",
                "0",
            ])
            .args(["--kafka-port", "0", "--topic-prefix", &args.topic_prefix])
            .arg("--sqlite-synchronous")
            .arg(match args.sqlite_synchronous {
                service_kit::database::SqliteDurability::Full => "full",
                service_kit::database::SqliteDurability::Normal => "normal",
            })
            .env("OMS_ADMIN_EMAIL", &args.admin_email)
            // The load comes from one address with up to --max-in-flight
            // requests at once; a shop's clients come from many.
            .env(
                "OMS_HTTP_MAX_CONNECTIONS_PER_ADDRESS",
                args.max_in_flight.to_string(),
            )
            // oms up makes the admin password and signs in itself; the
            // banner carries the token.
            .env_remove("OMS_ADMIN_PASSWORD")
            .env_remove("OMS_KEY_ENCRYPTION_KEY")
            .env("RUST_LOG", "warn,librdkafka=error")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(
                data_dir.path().join("oms-up.log"),
            )?))
            .kill_on_drop(true);
        if let Some(kafka) = &args.kafka {
            command.arg("--kafka").arg(kafka);
        }
        let mut databases = None;
        let backend = if let Some(server) = &args.database_url {
            let created = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let prefix = format!("{}{created}_", args.database_prefix);
            command
                .arg("--database-url")
                .arg(server)
                .arg("--database-prefix")
                .arg(&prefix);
            databases = Some((server.clone(), prefix));
            "PostgreSQL"
        } else {
            // Only what the bench passes decides the backend, not the
            // caller's environment.
            command.env_remove("OMS_DATABASE_URL");
            "SQLite"
        };
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} up", oms.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let started = tokio::time::timeout(Duration::from_secs(600), read_banner(stdout))
            .await
            .context("oms up did not come up within 10 minutes")?;
        let banner = match started {
            Ok(banner) => banner,
            Err(error) => {
                let log =
                    std::fs::read_to_string(data_dir.path().join("oms-up.log")).unwrap_or_default();
                anyhow::bail!("oms up failed: {error:#}\n{log}");
            }
        };
        Ok(Self {
            order_url: banner.order,
            inventory_url: banner.inventory,
            customer_url: banner.customer,
            kafka: banner.kafka,
            topic_prefix: args.topic_prefix.clone(),
            admin_token: banner.token,
            backend: backend.into(),
            http,
            child: Some(child),
            data_dir: Some(data_dir),
            databases,
            own_broker: args.kafka.is_none(),
        })
    }

    /// The processes to measure.
    pub fn pids(&self) -> super::procs::Targets {
        super::procs::Targets {
            services: self.child.as_ref().and_then(Child::id),
            own_broker: self.own_broker,
            // A running system's backend is unknown: watch PostgreSQL too.
            postgres: self.databases.is_some() || self.child.is_none(),
        }
    }

    /// Waits until `orders` orders have left PENDING (by the order-svc's
    /// counts when the bench started the system, which then holds nothing
    /// else), at most `timeout`. Returns whether they did.
    pub async fn wait_until_decided(&self, orders: usize, timeout: Duration) -> bool {
        if self.child.is_none() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(counts) = self.order_counts().await {
                let pending = counts["PENDING"].as_u64().unwrap_or(u64::MAX);
                let total: u64 = counts
                    .as_object()
                    .map(|c| c.values().filter_map(Value::as_u64).sum())
                    .unwrap_or(0);
                if pending == 0 && total >= orders as u64 {
                    return true;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// order-svc's orders per status.
    ///
    /// # Errors
    /// When order-svc does not answer.
    pub async fn order_counts(&self) -> anyhow::Result<Value> {
        let metrics: Value = self
            .http
            .get(format!("{}/orders/metrics", self.order_url))
            .bearer_auth(&self.admin_token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(metrics["counts"].clone())
    }

    /// The invariants once the load is over.
    pub async fn invariants(&self, settled: bool) -> Invariants {
        let audit = |url: String| async move {
            let answer: Option<Value> = async {
                self.http
                    .get(url)
                    .bearer_auth(&self.admin_token)
                    .send()
                    .await
                    .ok()?
                    .json()
                    .await
                    .ok()
            }
            .await;
            answer.is_some_and(|a| a["balanced"] == true)
        };
        let stock_balanced = audit(format!("{}/stock/audit", self.inventory_url)).await;
        let credit_balanced = audit(format!("{}/credit/audit", self.customer_url)).await;
        let mut outbox_backlog = None;
        for _ in 0..40 {
            match self.outbox_backlog().await {
                Ok(Some(0)) => {
                    outbox_backlog = Some(0);
                    break;
                }
                Ok(backlog) => outbox_backlog = backlog,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "cannot read the outboxes");
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Invariants {
            every_order_decided: settled,
            stock_balanced,
            credit_balanced,
            outbox_backlog,
        }
    }

    /// Unpublished outbox rows of the three services; `None` for a running
    /// system, whose databases the bench does not know.
    async fn outbox_backlog(&self) -> anyhow::Result<Option<u64>> {
        let urls: Vec<String> = match (&self.databases, &self.data_dir) {
            (Some((server, prefix)), _) => ["order", "inventory", "customer"]
                .iter()
                .map(|s| with_database(server, &format!("{prefix}{s}")))
                .collect(),
            (None, Some(dir)) => ["order", "inventory", "customer"]
                .iter()
                .map(|s| sqlite_url(dir.path(), s))
                .collect(),
            (None, None) => return Ok(None),
        };
        let mut backlog = 0;
        for url in urls {
            let db = Database::connect(&url).await?;
            let row = db
                .query_one_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT COUNT(*) AS pending FROM outbox_messages WHERE published_at IS NULL",
                ))
                .await?
                .context("no count")?;
            let pending: i64 = row.try_get("", "pending")?;
            backlog += u64::try_from(pending).unwrap_or(0);
            db.close().await?;
        }
        Ok(Some(backlog))
    }

    /// Stops `oms up` (SIGINT, as Ctrl-C would) and drops the PostgreSQL
    /// databases the bench created.
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status();
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        if let Some((server, prefix)) = self.databases.take()
            && let Ok(admin) = Database::connect(&server).await
        {
            for service in ["order", "inventory", "customer"] {
                let _ = admin
                    .execute_unprepared(&format!(
                        "DROP DATABASE IF EXISTS \"{prefix}{service}\" WITH (FORCE)"
                    ))
                    .await;
            }
            let _ = admin.close().await;
        }
    }
}

/// What must hold after the load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Invariants {
    /// No order of the bench is still PENDING.
    pub every_order_decided: bool,
    /// inventory-svc's stock audit balances.
    pub stock_balanced: bool,
    /// customer-svc's credit audit balances.
    pub credit_balanced: bool,
    /// Unpublished outbox rows left (`None`: not known for a running system).
    pub outbox_backlog: Option<u64>,
}

impl Invariants {
    /// Whether all of them hold.
    pub fn hold(&self) -> bool {
        self.every_order_decided
            && self.stock_balanced
            && self.credit_balanced
            && self.outbox_backlog.is_none_or(|b| b == 0)
    }
}

fn sqlite_url(dir: &Path, service: &str) -> String {
    format!("sqlite://{}/{service}-svc.sqlite", dir.display())
}

/// Logs in; returns the access token.
///
/// # Errors
/// When the credentials are refused.
pub async fn login(
    http: &reqwest::Client,
    customer_url: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let token: Value = http
        .post(format!("{customer_url}/auth/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    token["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("no access_token in the answer")
}

struct Banner {
    order: String,
    inventory: String,
    customer: String,
    kafka: String,
    token: String,
}

/// Reads `oms up`'s start-up banner; keeps reading (and discarding) its
/// output afterwards so that the child never blocks on a full pipe.
async fn read_banner(stdout: tokio::process::ChildStdout) -> anyhow::Result<Banner> {
    let mut lines = BufReader::new(stdout).lines();
    let (mut order, mut inventory, mut customer, mut kafka, mut token) =
        (None, None, None, None, None);
    while let Some(line) = lines.next_line().await? {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["order-svc", url, ..] => order = Some((*url).to_owned()),
            ["inventory-svc", url, ..] => inventory = Some((*url).to_owned()),
            ["customer-svc", url, ..] => customer = Some((*url).to_owned()),
            ["Kafka", bootstrap, ..] => kafka = Some((*bootstrap).to_owned()),
            ["export", assignment] => {
                token = assignment
                    .strip_prefix("OMS_ADMIN_TOKEN=")
                    .map(str::to_owned);
            }
            _ => {}
        }
        if let (Some(order), Some(inventory), Some(customer), Some(kafka), Some(token)) =
            (&order, &inventory, &customer, &kafka, &token)
        {
            let banner = Banner {
                order: order.clone(),
                inventory: inventory.clone(),
                customer: customer.clone(),
                kafka: kafka.clone(),
                token: token.clone(),
            };
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(banner);
        }
    }
    anyhow::bail!("oms up exited before it printed its addresses")
}
