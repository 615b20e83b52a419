//! # local-kafka: a real single-node Apache Kafka (KRaft) on loopback
//!
//! Started from the published jars on the machine's JDK, for `oms up`,
//! `scripts/run.sh` and the tests; no Docker.
//!
//! The jars are fetched once with `mvn dependency:copy-dependencies` from
//! `infra/kafka/pom.xml` into `$OMS_CACHE_DIR/kafka-<version>/libs`
//! (default `~/.cache/oms`), outside the clone, so later runs start at once.
//! The broker listens on loopback ports chosen at start, has automatic topic
//! creation off. With a watched process id, a watchdog stops the broker
//! when that process exits, so no broker outlives its owner.
//!
//! [`start`] returns only a broker it started itself: a client port that
//! another process listens on is refused before the JVM starts, and the
//! broker that answers must be the JVM it started (alive, with the cluster
//! id of its own data directory). So a second user of a fixed port (a
//! second `oms up`) never silently joins the first one's broker.
//!
//! With [`StartOptions::sasl_ssl`], the broker also has a SASL_SSL
//! listener, as a managed Kafka has: SCRAM-SHA-512 for the user given
//! (made when the data directory is formatted), over TLS with a
//! certificate for `127.0.0.1` and `localhost` signed by a certificate
//! authority made at each start ([`SaslSslListener::ca_location`]).
//! The PLAINTEXT listener stays, on loopback, for the broker's own use.

#![forbid(unsafe_code)]

pub mod certificates;
mod cluster;

pub use cluster::{ClusterOptions, LocalCluster, start_cluster};

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The Kafka version the pom fetches.
pub const KAFKA_VERSION: &str = "4.1.1";

/// Bumped whenever `infra/kafka/pom.xml` changes otherwise, so that a
/// cache filled from an older pom is fetched again.
const JARS_REVISION: u32 = 2;

/// The broker's logging: INFO and above to its standard output, which is
/// `kafka.log` (connections refused, authentication failures, errors).
pub(crate) const LOG4J2_PROPERTIES: &str = "\
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
";

/// The cache folder for downloaded artifacts.
pub fn cache_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("OMS_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/tmp".into())).join(".cache")
        });
    base.join("oms")
}

/// Makes sure the Kafka jars are in the cache; returns their folder.
///
/// # Errors
/// When Maven is missing or the download fails.
pub fn ensure_jars() -> anyhow::Result<PathBuf> {
    let home = cache_dir().join(format!("kafka-{KAFKA_VERSION}-r{JARS_REVISION}"));
    let libs = home.join("libs");
    if libs.join(".complete").exists() {
        return Ok(libs);
    }
    eprintln!(
        "fetching Apache Kafka {KAFKA_VERSION} jars into {} (once; about 30 s)",
        libs.display()
    );
    std::fs::create_dir_all(&home)?;
    // Download beside the final folder, then rename: a concurrent or
    // interrupted fetch never leaves a half-filled libs/ behind.
    let staging = home.join(format!("libs.partial-{}", std::process::id()));
    let pom = repo_root().join("infra/kafka/pom.xml");
    let status = Command::new("mvn")
        .args(["-q", "-B", "-Dstyle.color=never", "-f"])
        .arg(&pom)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", staging.display()))
        .stdin(Stdio::null())
        // Maven reports on stdout; ours carries the bootstrap address.
        .stdout(std::io::stderr())
        .status()
        .context("could not run mvn (install Maven: apt-get install maven)")?;
    if !status.success() {
        bail!(
            "mvn dependency:copy-dependencies failed for {}",
            pom.display()
        );
    }
    std::fs::write(staging.join(".complete"), KAFKA_VERSION)?;
    if std::fs::rename(&staging, &libs).is_err() {
        // Someone else finished first.
        let _ = std::fs::remove_dir_all(&staging);
    }
    Ok(libs)
}

/// The repository's root folder, where `infra/kafka/pom.xml` lives.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running broker.
#[derive(Debug, Clone)]
pub struct LocalKafka {
    /// `127.0.0.1:<port>` of the PLAINTEXT listener.
    pub bootstrap: String,
    /// Process id of the JVM.
    pub pid: u32,
    /// The SASL_SSL listener, when [`StartOptions::sasl_ssl`] asked for one.
    pub sasl_ssl: Option<SaslSslListener>,
}

/// The broker's SASL_SSL listener.
#[derive(Debug, Clone)]
pub struct SaslSslListener {
    /// `127.0.0.1:<port>` of the listener.
    pub bootstrap: String,
    /// The PEM certificate of the authority that signed the broker's
    /// certificate: what a client trusts (`ssl.ca.location`).
    pub ca_location: PathBuf,
}

/// A SCRAM-SHA-512 user of the SASL_SSL listener.
#[derive(Debug, Clone)]
pub struct ScramUser {
    /// The user name: letters, digits, `-`, `_` and `.`.
    pub username: String,
    /// The password: the same characters, at least 8 of them.
    pub password: String,
}

impl ScramUser {
    /// The `--add-scram` argument of `kafka-storage format`.
    fn storage_argument(&self) -> anyhow::Result<String> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        anyhow::ensure!(
            plain(&self.username) && plain(&self.password) && self.password.len() >= 8,
            "a SCRAM user name and password are letters, digits, '-', '_' and '.', \
             the password at least 8 of them"
        );
        Ok(format!(
            "SCRAM-SHA-512=[name={},password={}]",
            self.username, self.password
        ))
    }
}

impl LocalKafka {
    /// Stops the broker (SIGTERM: a controlled shutdown that keeps its data)
    /// and waits up to 30 s for it to exit, then kills it.
    pub fn stop(&self) {
        signal("-TERM", self.pid);
        wait_until_gone(&[self.pid], Duration::from_secs(30));
        if alive(self.pid) {
            signal("-KILL", self.pid);
        }
    }
}

/// How to start a local broker.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Holds `server.properties`, the log directories and `kafka.log`.
    /// An already formatted folder is reused, with its topics and offsets.
    pub data_dir: PathBuf,
    /// The client port; `None` picks a free one. The controller always
    /// listens on a free port.
    pub broker_port: Option<u16>,
    /// Stop the broker when this process exits.
    pub watch_pid: Option<u32>,
    /// With `watch_pid`: delete `data_dir` after the broker stopped.
    pub remove_data_on_exit: bool,
    /// Also listen for SASL_SSL clients, with this SCRAM-SHA-512 user
    /// (made when the data directory is formatted; a reused directory
    /// keeps the users it was formatted with).
    pub sasl_ssl: Option<ScramUser>,
}

/// Formats the data directory (when new) and starts a broker on loopback.
/// With `watch_pid`, a watchdog stops the broker when that process exits.
///
/// # Errors
/// When the client port is taken, Java or the jars are missing, or the
/// broker does not come up within 60 s (its log is in `data_dir/kafka.log`).
pub fn start(options: &StartOptions) -> anyhow::Result<LocalKafka> {
    let broker_port = match options.broker_port {
        Some(port) => {
            // Kafka would fail to bind and exit, and whatever listens
            // there would answer in its place.
            TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
                anyhow::anyhow!(
                    "port {port} is taken ({e}): another broker, or another program, listens \
                     on 127.0.0.1:{port}"
                )
            })?;
            port
        }
        None => free_port()?,
    };
    let libs = ensure_jars()?;
    let data_dir = options.data_dir.as_path();
    std::fs::create_dir_all(data_dir)?;
    let controller_port = free_port()?;
    let secured = match &options.sasl_ssl {
        Some(user) => Some((user.storage_argument()?, free_port()?)),
        None => None,
    };
    let properties = data_dir.join("server.properties");
    let log_dirs = data_dir.join("logs");
    let mut listeners =
        format!("PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}");
    let mut advertised = format!("PLAINTEXT://127.0.0.1:{broker_port}");
    let mut protocols = String::from("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT");
    let mut sasl_ssl = None;
    let mut security = String::new();
    if let Some((_, port)) = &secured {
        listeners.push_str(&format!(",SASL_SSL://127.0.0.1:{port}"));
        advertised.push_str(&format!(",SASL_SSL://127.0.0.1:{port}"));
        protocols.push_str(",SASL_SSL:SASL_SSL");
        let tls = data_dir.join("tls");
        std::fs::create_dir_all(&tls)?;
        let authority = certificates::Authority::new("oms local-kafka CA")?;
        let server = authority.issue(&["localhost", "127.0.0.1"])?;
        let ca_location = tls.join("ca.pem");
        std::fs::write(&ca_location, authority.certificate_pem())?;
        // Kafka's PEM key store: the key, then the certificate chain.
        let key_store = tls.join("broker.pem");
        certificates::write_private(
            &key_store,
            &format!("{}{}", server.key_pem, server.certificate_pem),
        )?;
        security = format!(
            "sasl.enabled.mechanisms=SCRAM-SHA-512\n\
             listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
             org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
             listener.name.sasl_ssl.ssl.keystore.type=PEM\n\
             listener.name.sasl_ssl.ssl.keystore.location={}\n",
            key_store.display()
        );
        sasl_ssl = Some(SaslSslListener {
            bootstrap: format!("127.0.0.1:{port}"),
            ca_location,
        });
    }
    std::fs::write(
        &properties,
        format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller_port}\n\
             listeners={listeners}\n\
             advertised.listeners={advertised}\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map={protocols}\n\
             log.dirs={}\n\
             num.partitions=1\n\
             auto.create.topics.enable=false\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions=10\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             group.initial.rebalance.delay.ms=0\n\
             log.flush.interval.messages=9223372036854775807\n\
             {security}",
            log_dirs.display()
        ),
    )?;
    let classpath = format!("{}/*", libs.display());
    if !log_dirs.join("meta.properties").exists() {
        let cluster_id = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(uuid::Uuid::new_v4().as_bytes());
        let mut storage = Command::new("java");
        storage
            .args([
                "-cp",
                &classpath,
                "kafka.tools.StorageTool",
                "format",
                // One argument, `=`-joined: an id is URL-safe base64 and
                // one in 64 starts with `-`, which the tool's parser would
                // take for an option.
                &format!("--cluster-id={cluster_id}"),
                "-c",
            ])
            .arg(&properties);
        if let Some((scram, _)) = &secured {
            storage.args(["--add-scram", scram]);
        }
        let output = storage.stdin(Stdio::null()).output().context(
            "could not run java (install a JDK 17: apt-get install openjdk-17-jre-headless)",
        )?;
        if !output.status.success() {
            bail!(
                "formatting the Kafka log directory failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let log = data_dir.join("kafka.log");
    let logging = data_dir.join("log4j2.properties");
    std::fs::write(&logging, LOG4J2_PROPERTIES)?;
    let cleanup = options.remove_data_on_exit.then_some(data_dir);
    let pid = spawn_broker(
        &classpath,
        &logging,
        &properties,
        &log,
        options.watch_pid,
        cleanup,
    )?;
    let bootstrap = format!("127.0.0.1:{broker_port}");
    let ours = Broker {
        pid,
        cluster_id: cluster_id(&log_dirs)?,
        log: &log,
    };
    wait_until_ready(&bootstrap, &ours, Duration::from_secs(60))?;
    Ok(LocalKafka {
        bootstrap,
        pid,
        sasl_ssl,
    })
}

/// Starts a broker's JVM in a process group of its own, its output to
/// `log`, and returns its pid. With `watch_pid`, a watchdog stops it when
/// that process exits, then removes `cleanup` (when given).
pub(crate) fn spawn_broker(
    classpath: &str,
    logging: &Path,
    properties: &Path,
    log: &Path,
    watch_pid: Option<u32>,
    cleanup: Option<&Path>,
) -> anyhow::Result<u32> {
    let logging = format!("-Dlog4j2.configurationFile={}", logging.display());
    let java = [
        "java",
        "-Xms256m",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        &logging,
        "-cp",
        classpath,
        "kafka.Kafka",
    ]
    .iter()
    .map(|s| shell_quote(s))
    .chain(std::iter::once(shell_quote(&properties.to_string_lossy())))
    .collect::<Vec<_>>()
    .join(" ");
    let log_q = shell_quote(&log.to_string_lossy());
    let cleanup = match cleanup {
        Some(dir) => format!("rm -rf {}", shell_quote(&dir.to_string_lossy())),
        None => "true".to_owned(),
    };
    let script = match watch_pid {
        Some(pid) => format!(
            "{java} >{log_q} 2>&1 & child=$!; echo $child; \
             while kill -0 {pid} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; \
             kill $child 2>/dev/null; wait $child; {cleanup}"
        ),
        None => format!("{java} >{log_q} 2>&1 & echo $!"),
    };
    let mut watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("could not start the broker")?;
    let mut first_line = String::new();
    {
        use std::io::BufRead;
        let stdout = watchdog.stdout.take().expect("piped stdout");
        std::io::BufReader::new(stdout).read_line(&mut first_line)?;
    }
    first_line.trim().parse().context("the broker's pid")
}

/// The broker [`start`] launched, to tell it from another on the same port.
pub(crate) struct Broker<'a> {
    pub(crate) pid: u32,
    pub(crate) cluster_id: String,
    pub(crate) log: &'a Path,
}

impl Broker<'_> {
    /// Fails when the JVM has exited (it could not bind its ports, say).
    fn ensure_alive(&self) -> anyhow::Result<()> {
        if alive(self.pid) {
            return Ok(());
        }
        bail!(
            "the Kafka process exited at start; see {}",
            self.log.display()
        )
    }
}

/// The cluster id `kafka-storage format` wrote into `log_dirs`.
fn cluster_id(log_dirs: &Path) -> anyhow::Result<String> {
    let meta = log_dirs.join("meta.properties");
    let text =
        std::fs::read_to_string(&meta).with_context(|| format!("reading {}", meta.display()))?;
    text.lines()
        .find_map(|line| line.strip_prefix("cluster.id="))
        .map(|id| id.trim().to_owned())
        .with_context(|| format!("no cluster.id in {}", meta.display()))
}

pub(crate) fn wait_until_ready(
    bootstrap: &str,
    ours: &Broker<'_>,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while TcpStream::connect(bootstrap).is_err() {
        ours.ensure_alive()?;
        if started.elapsed() > limit {
            bail!(
                "Kafka did not open {bootstrap} within {limit:?}; see {}",
                ours.log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()?;
    loop {
        ours.ensure_alive()?;
        match consumer.fetch_metadata(None, Duration::from_secs(5)) {
            Ok(metadata) if !metadata.brokers().is_empty() => {
                let answered = consumer.client().fetch_cluster_id(Duration::from_secs(5));
                if answered.as_deref() != Some(ours.cluster_id.as_str()) {
                    bail!(
                        "the broker at {bootstrap} is not the one started here (cluster id \
                         {answered:?}, expected {}): another broker listens on its port",
                        ours.cluster_id
                    );
                }
                return Ok(());
            }
            _ if started.elapsed() > limit => {
                bail!(
                    "Kafka at {bootstrap} did not answer metadata requests; see {}",
                    ours.log.display()
                )
            }
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

pub(crate) fn signal(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` runs: a zombie (dead, not yet reaped by its watchdog,
/// which looks once a second) does not.
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name.
        stat.rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

pub(crate) fn wait_until_gone(pids: &[u32], limit: Duration) {
    let started = Instant::now();
    while pids.iter().any(|&pid| alive(pid)) && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
}
