//! A replicated Kafka cluster on loopback: `brokers` nodes, each a broker
//! and a KRaft controller, so that the controller quorum is all of them
//! and a new active controller is elected when one dies (a majority must
//! live). Topics default to a replication factor of `min(3, brokers)` and
//! `min.insync.replicas` of 2 from three replicas on (1 below), the
//! internal topics too. A killed broker is fenced after 4 s without a
//! heartbeat (Kafka's default is 9 s), so that its partitions move on
//! within a saga's deadline.
//!
//! Each node keeps its ports and data for its whole life: [`LocalCluster::kill`]
//! and [`LocalCluster::start_node`] stop and start one node on the same
//! data, as a crashed machine that comes back would. The data is never
//! removed here: it lives under the caller's directory.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::{
    Broker, LOG4J2_PROPERTIES, alive, ensure_jars, free_port, signal, spawn_broker,
    wait_until_gone, wait_until_ready,
};

/// How to start a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// One folder per node (`node-1`, …) is made under it.
    pub data_dir: PathBuf,
    /// How many nodes: 1 to 9.
    pub brokers: u32,
    /// Stop every node when this process exits.
    pub watch_pid: Option<u32>,
}

/// A running cluster.
#[derive(Debug)]
pub struct LocalCluster {
    /// Every node's `127.0.0.1:<port>`, comma-separated.
    pub bootstrap: String,
    nodes: Vec<Node>,
    classpath: String,
    cluster_id: String,
    watch_pid: Option<u32>,
}

#[derive(Debug)]
struct Node {
    id: u32,
    port: u16,
    dir: PathBuf,
    pid: Option<u32>,
}

impl Node {
    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.join("kafka.log")
    }
}

/// Formats every node's data directory and starts the nodes, then waits
/// until every broker has joined.
///
/// # Errors
/// When Java or the jars are missing, or the cluster does not come up
/// within 90 s (each node's log is in `node-<id>/kafka.log`).
pub fn start_cluster(options: &ClusterOptions) -> anyhow::Result<LocalCluster> {
    anyhow::ensure!(
        (1..=9).contains(&options.brokers),
        "a local cluster has 1 to 9 brokers, not {}",
        options.brokers
    );
    let libs = ensure_jars()?;
    let classpath = format!("{}/*", libs.display());
    let mut nodes = Vec::new();
    let mut voters = Vec::new();
    let mut controller_ports = Vec::new();
    for id in 1..=options.brokers {
        let port = free_port()?;
        let controller_port = free_port()?;
        voters.push(format!("{id}@127.0.0.1:{controller_port}"));
        controller_ports.push(controller_port);
        nodes.push(Node {
            id,
            port,
            dir: options.data_dir.join(format!("node-{id}")),
            pid: None,
        });
    }
    let replication = options.brokers.min(3);
    let min_insync = if replication >= 3 { 2 } else { 1 };
    let cluster_id =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes());
    for (node, controller_port) in nodes.iter().zip(&controller_ports) {
        std::fs::create_dir_all(&node.dir)?;
        let properties = node.dir.join("server.properties");
        std::fs::write(
            &properties,
            format!(
                "process.roles=broker,controller\n\
                 node.id={id}\n\
                 controller.quorum.voters={voters}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
                 controller.listener.names=CONTROLLER\n\
                 inter.broker.listener.name=PLAINTEXT\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
                 log.dirs={logs}\n\
                 num.partitions=1\n\
                 default.replication.factor={replication}\n\
                 min.insync.replicas={min_insync}\n\
                 auto.create.topics.enable=false\n\
                 offsets.topic.replication.factor={replication}\n\
                 offsets.topic.num.partitions=10\n\
                 transaction.state.log.replication.factor={replication}\n\
                 transaction.state.log.min.isr={min_insync}\n\
                 share.coordinator.state.topic.replication.factor={replication}\n\
                 share.coordinator.state.topic.min.isr={min_insync}\n\
                 group.initial.rebalance.delay.ms=0\n\
                 broker.heartbeat.interval.ms=1000\n\
                 broker.session.timeout.ms=4000\n",
                id = node.id,
                voters = voters.join(","),
                port = node.port,
                logs = node.dir.join("logs").display(),
            ),
        )?;
        std::fs::write(node.dir.join("log4j2.properties"), LOG4J2_PROPERTIES)?;
        let output = Command::new("java")
            .args(["-cp", &classpath, "kafka.tools.StorageTool", "format"])
            .arg(format!("--cluster-id={cluster_id}"))
            .arg("-c")
            .arg(&properties)
            .stdin(Stdio::null())
            .output()
            .context(
                "could not run java (install a JDK 17: apt-get install openjdk-17-jre-headless)",
            )?;
        if !output.status.success() {
            bail!(
                "formatting node {}'s log directory failed: {}{}",
                node.id,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let bootstrap = nodes
        .iter()
        .map(Node::bootstrap)
        .collect::<Vec<_>>()
        .join(",");
    let mut cluster = LocalCluster {
        bootstrap,
        nodes,
        classpath,
        cluster_id,
        watch_pid: options.watch_pid,
    };
    // Every JVM first: a controller quorum elects no leader alone.
    for index in 0..cluster.nodes.len() {
        cluster.spawn(index)?;
    }
    for index in 0..cluster.nodes.len() {
        cluster.wait_for(index)?;
    }
    cluster.wait_for_every_broker(Duration::from_secs(90))?;
    Ok(cluster)
}

impl LocalCluster {
    /// The nodes' ids, `1..=brokers`.
    pub fn node_ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Whether node `id` runs.
    pub fn is_running(&self, id: u32) -> bool {
        self.node(id).and_then(|n| n.pid).is_some_and(alive)
    }

    /// SIGKILL of node `id`, as a crashed machine; it stays down until
    /// [`start_node`](Self::start_node).
    pub fn kill(&mut self, id: u32) {
        if let Some(node) = self.nodes.iter_mut().find(|n| n.id == id)
            && let Some(pid) = node.pid.take()
        {
            signal("-KILL", pid);
            wait_until_gone(&[pid], Duration::from_secs(10));
        }
    }

    /// Starts node `id` again on its data and ports, and waits until the
    /// cluster counts it among its brokers.
    ///
    /// # Errors
    /// When it does not come back within 90 s.
    pub fn start_node(&mut self, id: u32) -> anyhow::Result<()> {
        let index = self
            .nodes
            .iter()
            .position(|n| n.id == id)
            .with_context(|| format!("no node {id}"))?;
        if !self.is_running(id) {
            self.spawn(index)?;
            self.wait_for(index)?;
        }
        self.wait_for_every_broker(Duration::from_secs(90))
    }

    /// The node that is the active controller now: the live node that
    /// last became the quorum's leader (the highest epoch its log names).
    ///
    /// # Errors
    /// When no live node has led the quorum within 30 s.
    pub fn active_controller(&self) -> anyhow::Result<u32> {
        let started = Instant::now();
        loop {
            let leader = self
                .nodes
                .iter()
                .filter_map(|node| {
                    let log = std::fs::read_to_string(node.log()).ok()?;
                    let epoch = log
                        .lines()
                        .filter_map(|line| {
                            let rest = line.split("Completed transition to Leader(").nth(1)?;
                            let digits = rest.split("epoch=").nth(1)?;
                            digits
                                .split(|c: char| !c.is_ascii_digit())
                                .next()?
                                .parse::<u64>()
                                .ok()
                        })
                        .max()?;
                    Some((epoch, node.id))
                })
                .max();
            match leader {
                Some((_, id)) if self.is_running(id) => return Ok(id),
                _ if started.elapsed() > Duration::from_secs(30) => {
                    bail!("no live node leads the controller quorum")
                }
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Stops every node: SIGTERM to all at once (one by one, the last
    /// brokers would wait for a controller quorum that is already gone),
    /// then SIGKILL to those still running after 15 s.
    pub fn stop(&mut self) {
        let pids: Vec<u32> = self.nodes.iter_mut().filter_map(|n| n.pid.take()).collect();
        for &pid in &pids {
            signal("-TERM", pid);
        }
        wait_until_gone(&pids, Duration::from_secs(15));
        for &pid in pids.iter().filter(|&&pid| alive(pid)) {
            signal("-KILL", pid);
        }
    }

    fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn spawn(&mut self, index: usize) -> anyhow::Result<()> {
        let node = &self.nodes[index];
        let pid = spawn_broker(
            &self.classpath,
            &node.dir.join("log4j2.properties"),
            &node.dir.join("server.properties"),
            &node.log(),
            self.watch_pid,
            None,
        )?;
        self.nodes[index].pid = Some(pid);
        Ok(())
    }

    fn wait_for(&self, index: usize) -> anyhow::Result<()> {
        let node = &self.nodes[index];
        let log = node.log();
        let ours = Broker {
            pid: node.pid.context("the node runs")?,
            cluster_id: self.cluster_id.clone(),
            log: &log,
        };
        wait_until_ready(&node.bootstrap(), &ours, Duration::from_secs(90))
    }

    /// Waits until the cluster's metadata names every node as a broker.
    fn wait_for_every_broker(&self, limit: Duration) -> anyhow::Result<()> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3")
            .create()?;
        let started = Instant::now();
        loop {
            let brokers = consumer
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|m| m.brokers().len())
                .unwrap_or(0);
            if brokers == self.nodes.len() {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!(
                    "the cluster names {brokers} of {} brokers after {limit:?}; see the nodes' kafka.log",
                    self.nodes.len()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
