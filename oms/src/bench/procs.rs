//! Peak memory (PSS) and mean CPU of the processes under test, sampled
//! from `/proc` once a second (Linux).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// The group of the bench's own process, which generates the load.
pub const GENERATOR: &str = "generator";

/// Which processes to watch besides the generator (this process).
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    /// The `oms up` child, holding the three services.
    pub services: Option<u32>,
    /// Whether the broker is a child of it (else a running broker is looked for).
    pub own_broker: bool,
    /// Whether the system's databases are on this machine's PostgreSQL.
    pub postgres: bool,
}

/// Peak RSS and mean CPU of one group of processes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Usage {
    /// Highest memory (PSS, summed over the group's processes), MiB.
    pub peak_rss_mib: f64,
    /// Memory at the end, MiB.
    pub last_rss_mib: f64,
    /// Mean CPU over the sampling, percent of one core.
    pub mean_cpu_percent: f64,
    /// CPU time used over the sampling (user and system), seconds.
    pub cpu_seconds: f64,
}

/// Samples until stopped.
pub struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<BTreeMap<String, Usage>>,
}

impl Sampler {
    /// Starts sampling every `every`.
    pub fn start(targets: Targets, every: Duration) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let ticks_per_second = clock_ticks();
            let started = Instant::now();
            let first = snapshot(targets);
            let mut peak: BTreeMap<String, u64> = BTreeMap::new();
            let last = loop {
                let now = snapshot(targets);
                for (group, sample) in &now {
                    let entry = peak.entry(group.clone()).or_default();
                    *entry = (*entry).max(sample.rss_kib);
                }
                tokio::select! {
                    _ = &mut stopped => break now,
                    _ = tokio::time::sleep(every) => {}
                }
            };
            let seconds = started.elapsed().as_secs_f64().max(0.001);
            last.iter()
                .map(|(group, end)| {
                    let start_ticks = first.get(group).map_or(0, |s| s.cpu_ticks);
                    let cpu_seconds =
                        end.cpu_ticks.saturating_sub(start_ticks) as f64 / ticks_per_second;
                    (
                        group.clone(),
                        Usage {
                            peak_rss_mib: peak.get(group).copied().unwrap_or(0) as f64 / 1024.0,
                            last_rss_mib: end.rss_kib as f64 / 1024.0,
                            mean_cpu_percent: cpu_seconds / seconds * 100.0,
                            cpu_seconds,
                        },
                    )
                })
                .collect()
        });
        Self { stop, task }
    }

    /// Stops and returns the usage per group (`services`, `kafka`,
    /// `postgresql`, `generator`).
    pub async fn stop(self) -> BTreeMap<String, Usage> {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default)]
struct Sample {
    rss_kib: u64,
    cpu_ticks: u64,
}

/// Sums RSS and CPU time per group. A process that ended between two
/// samples drops out of its group's CPU, which only under-reports.
fn snapshot(targets: Targets) -> BTreeMap<String, Sample> {
    let mut groups: BTreeMap<String, Sample> = BTreeMap::new();
    let mut add = |group: &str, pid: u32| {
        if let Some(sample) = read(pid) {
            let entry = groups.entry(group.to_owned()).or_default();
            entry.rss_kib += sample.rss_kib;
            entry.cpu_ticks += sample.cpu_ticks;
        }
    };
    add(GENERATOR, std::process::id());
    if let Some(services) = targets.services {
        add("services", services);
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return groups;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        match comm.trim() {
            "postgres" if targets.postgres => add("postgresql", pid),
            "java" => {
                let cmdline =
                    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let is_broker = cmdline.contains("kafka.Kafka");
                let ours =
                    !targets.own_broker || targets.services.is_some_and(|s| descends_from(pid, s));
                if is_broker && ours {
                    add("kafka", pid);
                }
            }
            _ => {}
        }
    }
    groups
}

fn read(pid: u32) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which may hold spaces, in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // PSS (proportional set size) shares pages among the processes that
    // map them, so PostgreSQL's shared buffers are not counted once per
    // backend; VmRSS where smaps_rollup cannot be read.
    let kib_of = |file: &str, field: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let rss_kib = kib_of("smaps_rollup", "Pss:")
        .or_else(|| kib_of("status", "VmRSS:"))
        .unwrap_or(0);
    Some(Sample {
        rss_kib,
        cpu_ticks: utime + stime,
    })
}

/// Whether `ancestor` is `pid`'s parent, grandparent or further up
/// (the broker runs under a watchdog shell that `oms up` started).
fn descends_from(pid: u32, ancestor: u32) -> bool {
    let mut current = pid;
    for _ in 0..8 {
        match parent(current) {
            Some(p) if p == ancestor => return true,
            Some(p) if p > 1 => current = p,
            _ => return false,
        }
    }
    false
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// `getconf CLK_TCK`, 100 when it cannot be asked.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
