//! The bench's figures, printed and written as Markdown and JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::BenchArgs;
use super::limits::Limits;
use super::load::{Intent, Offered};
use super::observe::Observer;
use super::procs::{GENERATOR, Usage};
use super::system::{Invariants, System};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// How many were measured.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<Duration>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples[index].as_secs_f64() * 1000.0
        };
        Self {
            count: samples.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// `cpu_seconds` per order of `orders`, in milliseconds (0 without orders).
fn per_order_ms(cpu_seconds: f64, orders: usize) -> f64 {
    if orders == 0 {
        return 0.0;
    }
    cpu_seconds * 1000.0 / orders as f64
}

/// One stage of the saga and its latency.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// What the stage covers.
    pub name: &'static str,
    /// Its latency.
    pub ms: Percentiles,
}

/// The stages of the confirmed orders' sagas.
fn stages(offered: &Offered, observer: &Observer) -> Vec<Stage> {
    let mut relay = Vec::new();
    let mut stock = Vec::new();
    let mut credit = Vec::new();
    let mut decide = Vec::new();
    for order in &offered.accepted {
        let Some(trail) = observer.trail(order.id) else {
            continue;
        };
        let (Some(placed), Some(reserved), Some(held), Some(decision)) =
            (trail.placed, trail.stock, trail.credit, trail.decision)
        else {
            continue;
        };
        if !decision.confirmed {
            continue;
        }
        let answered = order.due + order.answered_after;
        relay.push(placed.saturating_duration_since(answered));
        stock.push(reserved.saturating_duration_since(placed));
        credit.push(held.saturating_duration_since(placed));
        decide.push(decision.seen.saturating_duration_since(reserved.max(held)));
    }
    [
        (
            "202 answered → OrderPlaced on `orders` (order-svc's relay)",
            relay,
        ),
        (
            "OrderPlaced → StockReserved on `inventory` (inventory-svc: consume, reserve, relay)",
            stock,
        ),
        (
            "OrderPlaced → CreditReserved on `customers` (customer-svc: consume, hold, relay)",
            credit,
        ),
        (
            "last reply → OrderConfirmed on `orders` (order-svc: consume, decide, relay)",
            decide,
        ),
    ]
    .into_iter()
    .map(|(name, samples)| Stage {
        name,
        ms: Percentiles::of(samples),
    })
    .collect()
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Second {
    /// Seconds since the load started.
    pub at: u64,
    /// Orders due in this second that were accepted.
    pub accepted: u64,
    /// Confirmations seen in this second.
    pub confirmed: u64,
    /// Rejections seen in this second.
    pub rejected: u64,
    /// 99th percentile of place→confirmed of the orders due in this second, ms.
    pub confirm_p99_ms: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The command line's figures.
    pub offered_rate: u32,
    /// Seconds of load.
    pub duration_secs: f64,
    /// `SQLite`, `PostgreSQL` or `running system`.
    pub backend: String,
    /// The machine.
    pub machine: String,
    /// Orders offered.
    pub offered: u64,
    /// Orders answered 202.
    pub accepted: usize,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Confirmations seen per second over the load (decisions after it not counted).
    pub confirmed_per_sec: f64,
    /// Rejections seen per second over the load.
    pub rejected_per_sec: f64,
    /// Orders confirmed in all.
    pub confirmed: usize,
    /// Orders rejected in all.
    pub rejected: usize,
    /// Accepted orders whose decision was never seen.
    pub undecided: usize,
    /// Orders decided otherwise than they were meant to be.
    pub unexpected_decisions: usize,
    /// Due time → 202.
    pub post_ms: Percentiles,
    /// Due time → OrderConfirmed seen on the topic.
    pub place_to_confirmed_ms: Percentiles,
    /// Due time → OrderRejected seen on the topic.
    pub place_to_rejected_ms: Percentiles,
    /// Where the time of a confirmed order goes, stage by stage, from the
    /// moments its records reached the bench.
    pub stages: Vec<Stage>,
    /// Peak RSS and mean CPU per process group.
    pub resources: BTreeMap<String, Usage>,
    /// CPU time per confirmed order, milliseconds, per process group, over
    /// the whole run (load, then until the last decision).
    pub cpu_ms_per_confirmed: BTreeMap<String, f64>,
    /// The same summed over every group but the generator: what the
    /// system costs per confirmed order.
    pub system_cpu_ms_per_confirmed: f64,
    /// The invariants after the run.
    pub invariants: Invariants,
    /// What the machine allows, measured in the same run.
    pub limits: Option<Limits>,
    /// Confirmed orders/s as a share of `limits.orders_per_sec_allowed`.
    pub share_of_limit: Option<f64>,
    /// Per second.
    pub timeline: Vec<Second>,
}

impl Report {
    /// Computes the figures.
    pub fn build(
        args: &BenchArgs,
        system: &System,
        offered: &Offered,
        observer: &Observer,
        resources: BTreeMap<String, Usage>,
        invariants: Invariants,
    ) -> Self {
        let seconds = offered.duration.as_secs_f64().max(0.001);
        let load_end = offered.started + offered.duration;
        let mut timeline: Vec<Second> = (0..=offered.duration.as_secs())
            .map(|at| Second {
                at,
                ..Second::default()
            })
            .collect();
        let mut per_second_confirm: Vec<Vec<Duration>> = vec![Vec::new(); timeline.len()];
        let (mut to_confirmed, mut to_rejected) = (Vec::new(), Vec::new());
        let (mut confirmed, mut rejected, mut undecided, mut unexpected) = (0, 0, 0, 0);
        let (mut confirmed_in_load, mut rejected_in_load) = (0u64, 0u64);
        for order in &offered.accepted {
            let due_second = order
                .due
                .saturating_duration_since(offered.started)
                .as_secs() as usize;
            if let Some(second) = timeline.get_mut(due_second) {
                second.accepted += 1;
            }
            let Some(decision) = observer.decision(order.id) else {
                undecided += 1;
                continue;
            };
            let latency = decision.seen.saturating_duration_since(order.due);
            let seen_second = decision
                .seen
                .saturating_duration_since(offered.started)
                .as_secs() as usize;
            let in_load = decision.seen <= load_end;
            if decision.confirmed {
                confirmed += 1;
                confirmed_in_load += u64::from(in_load);
                to_confirmed.push(latency);
                if let Some(bucket) = per_second_confirm.get_mut(due_second) {
                    bucket.push(latency);
                }
                if let Some(second) = timeline.get_mut(seen_second) {
                    second.confirmed += 1;
                }
            } else {
                rejected += 1;
                rejected_in_load += u64::from(in_load);
                to_rejected.push(latency);
                if let Some(second) = timeline.get_mut(seen_second) {
                    second.rejected += 1;
                }
            }
            if decision.confirmed != (order.intent == Intent::Confirm) {
                unexpected += 1;
            }
        }
        for (second, latencies) in timeline.iter_mut().zip(per_second_confirm) {
            second.confirm_p99_ms = Percentiles::of(latencies).p99;
        }
        Self {
            offered_rate: args.rate,
            duration_secs: seconds,
            backend: system.backend.clone(),
            machine: machine(),
            offered: offered.offered,
            accepted: offered.accepted.len(),
            errors: offered.errors.clone(),
            confirmed_per_sec: confirmed_in_load as f64 / seconds,
            rejected_per_sec: rejected_in_load as f64 / seconds,
            confirmed,
            rejected,
            undecided,
            unexpected_decisions: unexpected,
            post_ms: Percentiles::of(offered.accepted.iter().map(|o| o.answered_after).collect()),
            place_to_confirmed_ms: Percentiles::of(to_confirmed),
            place_to_rejected_ms: Percentiles::of(to_rejected),
            stages: stages(offered, observer),
            cpu_ms_per_confirmed: resources
                .iter()
                .map(|(group, usage)| (group.clone(), per_order_ms(usage.cpu_seconds, confirmed)))
                .collect(),
            system_cpu_ms_per_confirmed: per_order_ms(
                resources
                    .iter()
                    .filter(|(group, _)| *group != GENERATOR)
                    .map(|(_, usage)| usage.cpu_seconds)
                    .sum(),
                confirmed,
            ),
            resources,
            invariants,
            limits: None,
            share_of_limit: None,
            timeline,
        }
    }

    /// Adds the limits and our share of them.
    pub fn set_limits(&mut self, limits: Limits) {
        self.share_of_limit = (limits.orders_per_sec_allowed > 0.0)
            .then(|| self.confirmed_per_sec / limits.orders_per_sec_allowed);
        self.limits = Some(limits);
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# oms bench: {} orders/s offered for {:.0} s on {}\n",
            self.offered_rate, self.duration_secs, self.backend
        );
        let _ = writeln!(md, "Machine: {}\n", self.machine);
        let _ = writeln!(md, "| figure | value |\n|---|---|");
        let _ = writeln!(
            md,
            "| confirmed/s (during the load) | {:.1} |",
            self.confirmed_per_sec
        );
        let _ = writeln!(
            md,
            "| rejected/s (during the load) | {:.1} |",
            self.rejected_per_sec
        );
        let _ = writeln!(
            md,
            "| orders offered / accepted / confirmed / rejected / undecided | {} / {} / {} / {} / {} |",
            self.offered, self.accepted, self.confirmed, self.rejected, self.undecided
        );
        let _ = writeln!(
            md,
            "| decided otherwise than meant | {} |",
            self.unexpected_decisions
        );
        let _ = writeln!(
            md,
            "| CPU per confirmed order, every process but the generator | {:.2} ms |",
            self.system_cpu_ms_per_confirmed
        );
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(kind, n)| format!("{kind}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(md, "| errors | {errors} |\n");
        let _ = writeln!(
            md,
            "| latency (ms, from the due time) | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|"
        );
        for (name, p) in [
            ("POST /orders", &self.post_ms),
            ("place → confirmed", &self.place_to_confirmed_ms),
            ("place → rejected", &self.place_to_rejected_ms),
        ] {
            let _ = writeln!(
                md,
                "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                p.count, p.p50, p.p90, p.p99, p.max
            );
        }
        let _ = writeln!(
            md,
            "\n| stage of a confirmed order (ms) | n | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|"
        );
        for stage in &self.stages {
            let p = &stage.ms;
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                stage.name, p.count, p.p50, p.p90, p.p99, p.max
            );
        }
        let _ = writeln!(
            md,
            "\n| process | peak memory (PSS, MiB) | at the end (MiB) | mean CPU (100 % = one core) | CPU per confirmed order (ms) |\n|---|---|---|---|---|"
        );
        for (group, usage) in &self.resources {
            let _ = writeln!(
                md,
                "| {group} | {:.0} | {:.0} | {:.0} % | {:.2} |",
                usage.peak_rss_mib,
                usage.last_rss_mib,
                usage.mean_cpu_percent,
                self.cpu_ms_per_confirmed
                    .get(group)
                    .copied()
                    .unwrap_or_default()
            );
        }
        if let Some(limits) = &self.limits {
            let _ = writeln!(
                md,
                "\n| limit, measured in the same run | value |\n|---|---|"
            );
            let _ = writeln!(
                md,
                "| database: reservation-shaped transactions/s ({}) | {:.0} |",
                limits.database_method, limits.database_tps
            );
            let _ = writeln!(
                md,
                "| Kafka: records of our size produced/s (idempotent, acks=all) | {:.0} |",
                limits.kafka_produced_per_sec
            );
            let _ = writeln!(
                md,
                "| Kafka: records consumed/s | {:.0} |",
                limits.kafka_consumed_per_sec
            );
            let _ = writeln!(
                md,
                "| orders/s those allow ({} transactions and {} messages per order) | {:.0} |",
                super::limits::TRANSACTIONS_PER_ORDER,
                super::limits::MESSAGES_PER_ORDER,
                limits.orders_per_sec_allowed
            );
            if let Some(share) = self.share_of_limit {
                let _ = writeln!(md, "| confirmed/s as a share of that | {share:.2} |");
            }
            for note in &limits.notes {
                let _ = writeln!(md, "\nNot measured: {note}");
            }
        }
        let i = &self.invariants;
        let _ = writeln!(
            md,
            "\nInvariants: every order decided: {}; stock audit balanced: {}; credit audit balanced: {}; outbox backlog: {}.",
            yes(i.every_order_decided),
            yes(i.stock_balanced),
            yes(i.credit_balanced),
            i.outbox_backlog
                .map_or_else(|| "not known".to_owned(), |b| b.to_string())
        );
        md
    }

    /// Writes `bench.md` and `bench.json` into `dir`.
    ///
    /// # Errors
    /// When the files cannot be written.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("bench.md"), self.markdown())?;
        std::fs::write(
            dir.join("bench.json"),
            serde_json::to_string_pretty(self)? + "\n",
        )?;
        Ok(())
    }
}

fn yes(value: bool) -> &'static str {
    if value { "yes" } else { "**NO**" }
}

/// Cores, memory and CPU model, from `/proc`.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores ({model}), {memory_gib:.0} GiB")
}
