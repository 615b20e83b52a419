//! The fixtures the load needs, and the open-loop load itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use super::BenchArgs;
use super::system::{System, login};

/// Products with ample stock an order picks its lines from.
const PLENTIFUL_PRODUCTS: usize = 20;
/// Customers with ample credit the orders are spread over (one hot credit
/// row is not what shops look like).
const CUSTOMERS: usize = 32;
const PRICE_MINOR: i64 = 500;

/// What an order is meant to become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Intent {
    /// Stock and credit suffice.
    Confirm,
    /// One line names a product with no stock.
    RejectOnStock,
    /// Placed by a customer without credit.
    RejectOnCredit,
}

/// Products and customers created through the public API.
pub struct Fixtures {
    plentiful: Vec<Uuid>,
    sold_out: Uuid,
    customers: Vec<String>,
    broke: String,
}

impl Fixtures {
    /// Creates them and waits until order-svc's catalog copy has the products.
    ///
    /// # Errors
    /// When an API call fails.
    pub async fn create(system: &System) -> anyhow::Result<Self> {
        let run = Uuid::now_v7().simple().to_string();
        let mut plentiful = Vec::new();
        for i in 0..PLENTIFUL_PRODUCTS {
            plentiful.push(product(system, &format!("BENCH-{run}-{i}"), 1_000_000_000).await?);
        }
        let sold_out = product(system, &format!("BENCH-{run}-SOLD-OUT"), 0).await?;
        let mut customers = Vec::new();
        for i in 0..CUSTOMERS {
            customers.push(
                customer(
                    system,
                    &format!("bench-{run}-{i}@example.com"),
                    1_000_000_000_000,
                )
                .await?,
            );
        }
        let broke = customer(system, &format!("bench-{run}-broke@example.com"), 0).await?;
        let wanted: Vec<String> = plentiful
            .iter()
            .chain(std::iter::once(&sold_out))
            .map(Uuid::to_string)
            .collect();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let page: Value = system
                .http
                .get(format!("{}/catalog/products?limit=100", system.order_url))
                .send()
                .await?
                .json()
                .await?;
            let known: Vec<&str> = page["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(|p| p["product_id"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            if wanted.iter().all(|w| known.contains(&w.as_str())) {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the bench's products did not reach order-svc's catalog within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            plentiful,
            sold_out,
            customers,
            broke,
        })
    }

    /// The i-th order: who places it and its body.
    fn order(&self, i: u64, intent: Intent) -> (&str, Value) {
        let mut random = SplitMix(i);
        let line_count = 1 + (random.next_u64() % 3) as usize;
        let first = (random.next_u64() % self.plentiful.len() as u64) as usize;
        let mut lines: Vec<Value> = (0..line_count)
            .map(|k| {
                json!({
                    "product_id": self.plentiful[(first + k) % self.plentiful.len()],
                    "quantity": 1 + random.next_u64() % 3,
                })
            })
            .collect();
        let customer = match intent {
            Intent::RejectOnCredit => self.broke.as_str(),
            _ => self.customers[(i as usize) % self.customers.len()].as_str(),
        };
        if intent == Intent::RejectOnStock {
            lines[0] = json!({"product_id": self.sold_out, "quantity": 1});
        }
        (customer, json!({ "lines": lines }))
    }
}

/// What the load did.
pub struct Offered {
    /// When the first order was due.
    pub started: Instant,
    /// How long the load was offered.
    pub duration: Duration,
    /// Every accepted order: id → (intent, due time, answered after).
    pub accepted: Vec<Accepted>,
    /// Errors by kind (`HTTP 503 DATABASE_BUSY`, `CONNECTION`, …).
    pub errors: BTreeMap<String, u64>,
    /// Orders offered.
    pub offered: u64,
}

/// One accepted order.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// Its id.
    pub id: Uuid,
    /// What it was meant to become.
    pub intent: Intent,
    /// When it was due.
    pub due: Instant,
    /// From due time to the 202.
    pub answered_after: Duration,
}

impl Offered {
    /// How many orders were accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.len()
    }
}

/// Offers the load: `rate` orders per second for `duration` seconds, each
/// sent at its due time, latencies counted from then.
pub async fn offer(system: &System, fixtures: &Fixtures, args: &BenchArgs) -> Offered {
    let total = u64::from(args.rate) * args.duration;
    let interval = Duration::from_secs(1).as_secs_f64() / f64::from(args.rate);
    let reject_every = if args.reject_percent > 0.0 {
        (100.0 / args.reject_percent).round().max(1.0) as u64
    } else {
        u64::MAX
    };
    let accepted = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/orders", system.order_url);
    let started = Instant::now() + Duration::from_millis(100);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(interval * i as f64);
        tokio::time::sleep_until(due).await;
        let intent = match i % reject_every {
            0 if reject_every != u64::MAX => {
                if (i / reject_every) % 2 == 0 {
                    Intent::RejectOnStock
                } else {
                    Intent::RejectOnCredit
                }
            }
            _ => Intent::Confirm,
        };
        if in_flight.load(Ordering::Relaxed) >= args.max_in_flight {
            *errors
                .lock()
                .expect("not poisoned")
                .entry("GENERATOR_SATURATED".into())
                .or_default() += 1;
            continue;
        }
        let (token, body) = fixtures.order(i, intent);
        let request = system.http.post(&url).bearer_auth(token).json(&body);
        let (accepted, errors, in_flight) = (accepted.clone(), errors.clone(), in_flight.clone());
        in_flight.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            let outcome = match request.timeout(Duration::from_secs(60)).send().await {
                Ok(response) if response.status() == reqwest::StatusCode::ACCEPTED => {
                    let answered_after = due.elapsed();
                    match response.json::<Value>().await.ok().and_then(|order| {
                        order["id"].as_str().and_then(|id| id.parse::<Uuid>().ok())
                    }) {
                        Some(id) => Ok(Accepted {
                            id,
                            intent,
                            due,
                            answered_after,
                        }),
                        None => Err("HTTP 202 without an order id".to_owned()),
                    }
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let code = response
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|p| p["code"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    Err(format!("HTTP {status} {code}").trim().to_owned())
                }
                Err(error) if error.is_timeout() => Err("TIMEOUT".to_owned()),
                Err(_) => Err("CONNECTION".to_owned()),
            };
            in_flight.fetch_sub(1, Ordering::Relaxed);
            match outcome {
                Ok(order) => accepted.lock().expect("not poisoned").push(order),
                Err(kind) => {
                    *errors
                        .lock()
                        .expect("not poisoned")
                        .entry(kind)
                        .or_default() += 1
                }
            }
        });
        // Reap finished requests now and then, so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let duration = started.elapsed();
    while tasks.join_next().await.is_some() {}
    let accepted = std::mem::take(&mut *accepted.lock().expect("not poisoned"));
    let errors = std::mem::take(&mut *errors.lock().expect("not poisoned"));
    Offered {
        started,
        duration,
        accepted,
        errors,
        offered: total,
    }
}

/// Creates a product with `stock` units; returns its id.
pub(crate) async fn product(system: &System, sku: &str, stock: i64) -> anyhow::Result<Uuid> {
    let created: Value = system
        .http
        .post(format!("{}/products", system.inventory_url))
        .bearer_auth(&system.admin_token)
        .json(&json!({"sku": sku, "name": sku, "unit_price": {"amount_minor": PRICE_MINOR, "currency": "EUR"}, "initial_stock": stock}))
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("creating product {sku}"))?
        .json()
        .await?;
    created["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .context("no product id")
}

/// Registers a customer with `limit_minor` of credit; returns their token.
pub(crate) async fn customer(
    system: &System,
    email: &str,
    limit_minor: i64,
) -> anyhow::Result<String> {
    let password = "bench password 42";
    system
        .http
        .post(format!("{}/customers", system.customer_url))
        .bearer_auth(&system.admin_token)
        .json(
            &json!({"email": email, "name": "Bench", "password": password,
            "credit_limit": {"amount_minor": limit_minor, "currency": "EUR"}}),
        )
        .send()
        .await?
        .error_for_status()
        .with_context(|| format!("registering {email}"))?;
    login(&system.http, &system.customer_url, email, password).await
}

/// A small deterministic generator (SplitMix64): the same orders every run.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}
