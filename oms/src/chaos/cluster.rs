//! The system under chaos, as separate processes the suite owns: a private
//! PostgreSQL cluster (its own data directory and port, `fsync` and
//! `synchronous_commit` on), a Kafka broker, and each service instance as
//! its own process, so that any of them can be killed with SIGKILL and
//! started again on the same data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::process::{Child, Command as AsyncCommand};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The admin account every chaos system bootstraps.
pub const ADMIN_EMAIL: &str = "admin@oms.local";
/// Its password (the cluster exists only for the run).
pub const ADMIN_PASSWORD: &str = "chaos admin password";
/// The key-encryption key every customer-svc instance of the cluster shares.
pub const KEY_ENCRYPTION_KEY: &str = "Y2hhb3M6IG9uZSBrZXkgZm9yIGFsbCBpbnN0YW5jZXM=";

/// A port nobody listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Where a system under chaos keeps its state.
#[derive(Debug, Clone)]
pub struct Target {
    /// Each service's database URL.
    pub databases: [(Service, String); 3],
    /// Its broker and topic prefix.
    pub connection: crate::ops::Connection,
    /// Each service's base URL, for the audits.
    pub urls: [(Service, String); 3],
}

impl Target {
    pub(super) fn database(&self, service: Service) -> &str {
        &self
            .databases
            .iter()
            .find(|(s, _)| *s == service)
            .expect("every service has a database")
            .1
    }

    pub(super) fn url(&self, service: Service) -> &str {
        &self
            .urls
            .iter()
            .find(|(s, _)| *s == service)
            .expect("every service has a URL")
            .1
    }
}

/// A PostgreSQL cluster of the suite's own.
pub struct Postgres {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    tls: Option<PathBuf>,
}

/// The certificate a [`Postgres`] serves TLS with, and the CA file that
/// verifies it.
pub struct ServerTls {
    /// The server's certificate (PEM).
    pub certificate_pem: String,
    /// Its private key (PEM).
    pub key_pem: String,
    /// Where the CA's certificate is, for the clients' `sslrootcert`.
    pub ca_file: PathBuf,
}

impl Postgres {
    /// Creates and starts a cluster under `dir` (owned by `postgres`: the
    /// server refuses to run as root).
    ///
    /// # Errors
    /// When Debian's PostgreSQL 15 is missing or does not start.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(dir, None)
    }

    /// As [`start`](Self::start); with `tls`, the server accepts TLS
    /// connections only, with that certificate.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with(dir: &Path, tls: Option<&ServerTls>) -> anyhow::Result<Self> {
        anyhow::ensure!(
            Path::new(PG_BIN).join("initdb").exists(),
            "PostgreSQL 15 is not installed (scripts/postgres.sh installs it)"
        );
        std::fs::create_dir_all(dir)?;
        if let Some(tls) = tls {
            std::fs::write(dir.join("server.crt"), &tls.certificate_pem)?;
            local_kafka::certificates::write_private(&dir.join("server.key"), &tls.key_pem)?;
        }
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir))?;
        run(as_postgres("initdb")
            .args(["-U", "postgres", "--auth=trust", "-D"])
            .arg(dir.join("data")))?;
        if tls.is_some() {
            // TLS or nothing: a connection without it finds no rule that lets it in.
            let rules = dir.join("data/pg_hba.conf");
            std::fs::write(&rules, "hostssl all all 127.0.0.1/32 trust\n")?;
            run(Command::new("chown").arg("postgres:postgres").arg(&rules))?;
        }
        let postgres = Self {
            dir: dir.to_path_buf(),
            port: free_port()?,
            tls: tls.map(|t| t.ca_file.clone()),
        };
        postgres.pg_ctl(&["start"])?;
        Ok(postgres)
    }

    fn pg_ctl(&self, action: &[&str]) -> anyhow::Result<()> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on \
             -c max_connections=300",
            self.port,
            self.dir.display()
        );
        if self.tls.is_some() {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={dir}/server.crt -c ssl_key_file={dir}/server.key",
                dir = self.dir.display()
            ));
        }
        run(as_postgres("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-t", "60", "-l"])
            .arg(self.dir.join("postgres.log"))
            .args(["-o", &options])
            .args(action))
    }

    /// `pg_ctl restart -m immediate`: every backend dies at once, as in a
    /// crash, and the server recovers from its WAL.
    ///
    /// # Errors
    /// When the server does not come back.
    pub fn crash_restart(&self) -> anyhow::Result<()> {
        self.pg_ctl(&["-m", "immediate", "restart"])
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }

    /// The URL of database `name` on `host`, verifying the server's
    /// certificate against the CA file and its name against `host`
    /// (`sslmode=verify-full`); for a server started with TLS.
    pub fn verified_url(&self, host: &str, name: &str) -> String {
        let ca_file = self.tls.as_deref().unwrap_or(Path::new("no-ca-file"));
        format!(
            "postgres://postgres@{host}:{}/{name}?sslmode=verify-full&sslrootcert={}",
            self.port,
            ca_file.display()
        )
    }

    /// Stops the server and removes its files.
    pub fn destroy(&self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn as_postgres(program: &str) -> Command {
    let mut command = Command::new("runuser");
    command
        .args(["-u", "postgres", "--"])
        .arg(Path::new(PG_BIN).join(program));
    command
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The suite's Kafka: one broker on a fixed port, or a replicated
/// cluster of three (`oms chaos --brokers 3`); either can be killed and
/// started again on the same data.
pub struct Broker {
    kafka: Kafka,
}

enum Kafka {
    Single {
        options: local_kafka::StartOptions,
        running: Option<local_kafka::LocalKafka>,
    },
    Replicated(local_kafka::LocalCluster),
}

/// How long a killed node of a cluster stays down: longer than the
/// cluster's session timeout, so that it is fenced and its partitions get
/// new leaders while the load goes on.
pub const NODE_DOWNTIME: Duration = Duration::from_secs(6);

impl Broker {
    /// Starts a broker with its data under `dir`.
    ///
    /// # Errors
    /// When it does not come up.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let options = local_kafka::StartOptions {
            data_dir: dir.to_path_buf(),
            broker_port: Some(free_port()?),
            watch_pid: Some(std::process::id()),
            remove_data_on_exit: false,
            sasl_ssl: None,
        };
        let running = Some(local_kafka::start(&options)?);
        Ok(Self {
            kafka: Kafka::Single { options, running },
        })
    }

    /// Starts a cluster of `brokers` with its data under `dir`.
    ///
    /// # Errors
    /// When it does not come up.
    pub fn start_cluster(dir: &Path, brokers: u32) -> anyhow::Result<Self> {
        let cluster = local_kafka::start_cluster(&local_kafka::ClusterOptions {
            data_dir: dir.to_path_buf(),
            brokers,
            watch_pid: Some(std::process::id()),
        })?;
        Ok(Self {
            kafka: Kafka::Replicated(cluster),
        })
    }

    /// `host:port[,host:port…]`.
    pub fn bootstrap(&self) -> String {
        match &self.kafka {
            Kafka::Single { options, .. } => {
                format!("127.0.0.1:{}", options.broker_port.expect("a fixed port"))
            }
            Kafka::Replicated(cluster) => cluster.bootstrap.clone(),
        }
    }

    /// SIGKILL, then a start on the same data. On a cluster, of a node
    /// that is not the active controller, down for [`NODE_DOWNTIME`].
    ///
    /// # Errors
    /// When it does not come back.
    pub fn crash_restart(&mut self) -> anyhow::Result<()> {
        match &mut self.kafka {
            Kafka::Single { options, running } => {
                if let Some(broker) = running.take() {
                    kill_9(broker.pid);
                }
                *running = Some(local_kafka::start(options)?);
                Ok(())
            }
            Kafka::Replicated(cluster) => {
                let controller = cluster.active_controller()?;
                let victim = cluster
                    .node_ids()
                    .into_iter()
                    .rev()
                    .find(|&id| id != controller)
                    .context("a cluster of one has no other broker")?;
                crash_node(cluster, victim)
            }
        }
    }

    /// SIGKILL of the cluster's active controller, down for
    /// [`NODE_DOWNTIME`] (the others elect a new one), then a start on the
    /// same data. One broker is its own controller: the same as
    /// [`crash_restart`](Self::crash_restart).
    ///
    /// # Errors
    /// When it does not come back.
    pub fn crash_restart_controller(&mut self) -> anyhow::Result<()> {
        match &mut self.kafka {
            Kafka::Single { .. } => self.crash_restart(),
            Kafka::Replicated(cluster) => {
                let controller = cluster.active_controller()?;
                crash_node(cluster, controller)
            }
        }
    }

    /// SIGKILL of every broker; they stay down until
    /// [`start_again`](Self::start_again).
    pub fn kill(&mut self) {
        match &mut self.kafka {
            Kafka::Single { running, .. } => {
                if let Some(broker) = running.take() {
                    kill_9(broker.pid);
                }
            }
            Kafka::Replicated(cluster) => {
                for id in cluster.node_ids() {
                    cluster.kill(id);
                }
            }
        }
    }

    /// Starts them on the same data (after [`kill`](Self::kill)).
    ///
    /// # Errors
    /// When they do not come back.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        match &mut self.kafka {
            Kafka::Single { options, running } => {
                if running.is_none() {
                    *running = Some(local_kafka::start(options)?);
                }
                Ok(())
            }
            Kafka::Replicated(cluster) => {
                for id in cluster.node_ids() {
                    cluster.start_node(id)?;
                }
                Ok(())
            }
        }
    }

    /// Stops it (SIGTERM).
    pub fn stop(&mut self) {
        match &mut self.kafka {
            Kafka::Single { running, .. } => {
                if let Some(broker) = running.take() {
                    broker.stop();
                }
            }
            Kafka::Replicated(cluster) => cluster.stop(),
        }
    }
}

fn crash_node(cluster: &mut local_kafka::LocalCluster, id: u32) -> anyhow::Result<()> {
    tracing::info!(node = id, "chaos: SIGKILL of a Kafka node");
    cluster.kill(id);
    std::thread::sleep(NODE_DOWNTIME);
    cluster.start_node(id)
}

/// Removes every `OMS_*` variable this process has from `command`'s
/// environment, so that a child is configured by the suite alone (a test
/// run's `OMS_DATABASE_URL`, say, would send `oms up` to PostgreSQL).
pub fn without_oms_environment(command: &mut AsyncCommand) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OMS_") {
            command.env_remove(name);
        }
    }
}

/// Waits until `{url}/readyz` answers 200.
///
/// # Errors
/// When it does not within 90 s.
pub async fn wait_until_ready(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(response) = http.get(format!("{url}/readyz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{url} did not become ready within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn kill_9(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let started = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Which service a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    /// order-svc.
    Order,
    /// inventory-svc.
    Inventory,
    /// customer-svc.
    Customer,
}

impl Service {
    /// The binary's name.
    pub fn binary(self) -> &'static str {
        match self {
            Self::Order => "order-svc",
            Self::Inventory => "inventory-svc",
            Self::Customer => "customer-svc",
        }
    }

    /// The short name (`order`, …), also its database's suffix.
    pub fn short(self) -> &'static str {
        match self {
            Self::Order => "order",
            Self::Inventory => "inventory",
            Self::Customer => "customer",
        }
    }

    fn env_prefix(self) -> &'static str {
        match self {
            Self::Order => "OMS_ORDER",
            Self::Inventory => "OMS_INVENTORY",
            Self::Customer => "OMS_CUSTOMER",
        }
    }
}

/// One service process.
pub struct Instance {
    /// What it runs.
    pub service: Service,
    /// Its HTTP port.
    pub port: u16,
    child: Option<Child>,
}

impl Instance {
    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether its process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// The whole system: database, broker and service processes.
pub struct Cluster {
    work: PathBuf,
    binaries: PathBuf,
    /// The private PostgreSQL.
    pub postgres: Postgres,
    /// The broker.
    pub broker: Broker,
    /// Topic and group prefix.
    pub topic_prefix: String,
    /// Each instance by (service, number).
    pub instances: BTreeMap<(Service, usize), Instance>,
    /// The saga deadline the services run with.
    pub saga_deadline_secs: u64,
}

impl Cluster {
    /// Starts PostgreSQL, `brokers` Kafka brokers (one, or a replicated
    /// cluster) and `order`, `inventory` and `customer` instances of each
    /// service, from the binaries in `binaries`, with all data under `work`.
    ///
    /// # Errors
    /// When something does not come up.
    pub async fn start(
        work: &Path,
        binaries: &Path,
        counts: [(Service, usize); 3],
        brokers: u32,
        saga_deadline_secs: u64,
    ) -> anyhow::Result<Self> {
        for (service, _) in counts {
            let binary = binaries.join(service.binary());
            anyhow::ensure!(
                binary.exists(),
                "{} is missing: build the services first (cargo build -p {})",
                binary.display(),
                service.binary()
            );
        }
        std::fs::create_dir_all(work)?;
        let postgres = Postgres::start(&work.join("postgres"))?;
        let admin = sea_orm::Database::connect(postgres.url("postgres")).await?;
        for (service, _) in counts {
            use sea_orm::ConnectionTrait;
            admin
                .execute_unprepared(&format!("CREATE DATABASE chaos_{}", service.short()))
                .await?;
        }
        admin.close().await?;
        let broker = if brokers > 1 {
            Broker::start_cluster(&work.join("kafka"), brokers)?
        } else {
            Broker::start(&work.join("kafka"))?
        };
        let mut cluster = Self {
            work: work.to_path_buf(),
            binaries: binaries.to_path_buf(),
            postgres,
            broker,
            topic_prefix: String::new(),
            instances: BTreeMap::new(),
            saga_deadline_secs,
        };
        // customer-svc first: the others fetch its keys.
        let mut order = counts.to_vec();
        order.sort_by_key(|(s, _)| match s {
            Service::Customer => 0,
            Service::Inventory => 1,
            Service::Order => 2,
        });
        for (service, count) in order {
            for number in 0..count {
                let port = free_port()?;
                cluster.instances.insert(
                    (service, number),
                    Instance {
                        service,
                        port,
                        child: None,
                    },
                );
                cluster.start_instance(service, number).await?;
            }
        }
        Ok(cluster)
    }

    /// Where the checks read this system's state.
    pub fn target(&self) -> Target {
        let each = |f: &dyn Fn(Service) -> String| {
            [Service::Order, Service::Inventory, Service::Customer].map(|s| (s, f(s)))
        };
        Target {
            databases: each(&|s| self.database_url(s)),
            connection: crate::ops::Connection {
                kafka: self.broker.bootstrap(),
                topic_prefix: self.topic_prefix.clone(),
            },
            urls: each(&|s| self.url(s)),
        }
    }

    /// The database URL of `service`.
    pub fn database_url(&self, service: Service) -> String {
        self.postgres.url(&format!("chaos_{}", service.short()))
    }

    /// The base URL of the first running instance of `service`.
    pub fn url(&self, service: Service) -> String {
        self.instances
            .values()
            .find(|i| i.service == service && i.is_running())
            .or_else(|| self.instances.values().find(|i| i.service == service))
            .map(Instance::url)
            .expect("every service has an instance")
    }

    /// Starts instance `number` of `service` (again) and waits until it
    /// is ready.
    ///
    /// # Errors
    /// When it does not become ready within 60 s.
    pub async fn start_instance(&mut self, service: Service, number: usize) -> anyhow::Result<()> {
        let jwks = self
            .instances
            .get(&(Service::Customer, 0))
            .map(|c| format!("{}/.well-known/jwks.json", c.url()))
            .unwrap_or_default();
        let database = self.database_url(service);
        let bootstrap = self.broker.bootstrap();
        let log =
            std::fs::File::create(self.work.join(format!("{}-{number}.log", service.short())))?;
        let instance = self
            .instances
            .get_mut(&(service, number))
            .context("no such instance")?;
        let prefix = service.env_prefix();
        let mut command = AsyncCommand::new(self.binaries.join(service.binary()));
        without_oms_environment(&mut command);
        let child = command
            .env(
                format!("{prefix}_HTTP_ADDR"),
                format!("127.0.0.1:{}", instance.port),
            )
            .env(format!("{prefix}_DATABASE_URL"), database)
            .env("OMS_KAFKA_BOOTSTRAP", bootstrap)
            .env("OMS_TOPIC_PREFIX", &self.topic_prefix)
            .env("OMS_TOPIC_PARTITIONS", "6")
            .env("OMS_JWKS_URL", jwks)
            .env("OMS_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("OMS_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("OMS_KEY_ENCRYPTION_KEY", KEY_ENCRYPTION_KEY)
            .env(
                "OMS_SAGA_DEADLINE_SECS",
                self.saga_deadline_secs.to_string(),
            )
            .env("OMS_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", service.binary()))?;
        instance.child = Some(child);
        let url = instance.url();
        wait_until_ready(&reqwest::Client::new(), &url)
            .await
            .with_context(|| {
                format!(
                    "{} {number} (see its log in {})",
                    service.binary(),
                    self.work.display()
                )
            })
    }

    /// SIGKILL of instance `number` of `service`.
    pub async fn kill_instance(&mut self, service: Service, number: usize) {
        if let Some(instance) = self.instances.get_mut(&(service, number))
            && let Some(mut child) = instance.child.take()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// SIGTERM of instance `number` of `service` (a clean leave).
    pub async fn stop_instance(&mut self, service: Service, number: usize) {
        if let Some(instance) = self.instances.get_mut(&(service, number))
            && let Some(mut child) = instance.child.take()
        {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            if tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }

    /// Adds instance `number` of `service` (a new group member).
    ///
    /// # Errors
    /// When it does not become ready.
    pub async fn add_instance(&mut self, service: Service, number: usize) -> anyhow::Result<()> {
        self.instances.insert(
            (service, number),
            Instance {
                service,
                port: free_port()?,
                child: None,
            },
        );
        self.start_instance(service, number).await
    }

    /// Stops everything and removes the data, unless `keep`.
    pub async fn destroy(mut self, keep: bool) {
        let keys: Vec<(Service, usize)> = self.instances.keys().copied().collect();
        for (service, number) in keys {
            self.stop_instance(service, number).await;
        }
        self.broker.stop();
        self.postgres.destroy();
        if !keep {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}
