//! The scenario shops ask about first: a thousand orders at once against
//! `oms up` on its defaults (SQLite) and on PostgreSQL. Every request is
//! answered 202, every order is decided, the books balance and every
//! outbox drains. The orders come from one address, over HTTP/2, as a
//! gateway would send them: over HTTP/1.1 one address holds at most 64
//! connections (`OMS_HTTP_MAX_CONNECTIONS_PER_ADDRESS`), and an HTTP/1.1
//! client's pool opens more connections than it has requests in flight.

use std::time::Duration;

use futures::StreamExt;
use oms::up::System;
use reqwest::StatusCode;
use rstest::rstest;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use testkit::Backend;
use uuid::Uuid;

use crate::ops::{World, world};

const ORDERS: usize = 1_000;
const IN_FLIGHT: usize = 64;
/// Units of the scarce product: of its orders, this many are confirmed.
const SCARCE_STOCK: i64 = 30;
/// Orders of the tight customer that fit their credit limit.
const TIGHT_ORDERS_THAT_FIT: i64 = 10;
const PRICE: i64 = 1_000;

/// What the i-th order buys, and who places it: one in twenty is for the
/// scarce product (rejected on stock once it is gone), one in twenty is
/// placed by a customer whose credit fits ten orders (rejected on credit
/// after that), the rest confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plenty,
    Scarce,
    Tight,
}

fn kind(i: usize) -> Kind {
    match i % 20 {
        0 => Kind::Scarce,
        1 => Kind::Tight,
        _ => Kind::Plenty,
    }
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_orders_are_all_accepted_and_decided(#[case] backend: Backend) {
    let world = world(backend).await;
    let plenty = product(&world, "PLENTY-1", 1_000_000).await;
    let scarce = product(&world, "SCARCE-1", SCARCE_STOCK).await;
    let rich = customer(&world, 1_000_000_000).await;
    let tight = customer(&world, TIGHT_ORDERS_THAT_FIT * PRICE).await;
    for id in [plenty, scarce] {
        crate::up::wait_for_catalog(&world.system, &id.to_string()).await;
    }

    let url = format!("{}/orders", System::url(&world.system.order));
    let gateway = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let answers: Vec<(StatusCode, String, Duration)> = futures::stream::iter(0..ORDERS)
        .map(|i| {
            let (product, token) = match kind(i) {
                Kind::Plenty => (plenty, &rich),
                Kind::Scarce => (scarce, &rich),
                Kind::Tight => (plenty, &tight),
            };
            let request = gateway
                .post(&url)
                .bearer_auth(token)
                .json(&json!({"lines": [{"product_id": product, "quantity": 1}]}));
            async move {
                let sent = std::time::Instant::now();
                let response = request.send().await.expect("order-svc answers");
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                (status, body, sent.elapsed())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    // Printed for whoever reads the log; timings are never asserted.
    let mut latencies: Vec<Duration> = answers.iter().map(|(_, _, took)| *took).collect();
    latencies.sort_unstable();
    eprintln!(
        "{ORDERS} orders ({IN_FLIGHT} in flight) answered in {:?}: POST p50 {:?}, p99 {:?}, max {:?}",
        started.elapsed(),
        latencies[ORDERS / 2],
        latencies[ORDERS * 99 / 100],
        latencies[ORDERS - 1]
    );
    let refused: Vec<_> = answers
        .iter()
        .filter(|(status, ..)| *status != StatusCode::ACCEPTED)
        .map(|(status, body, _)| (status, body))
        .collect();
    assert!(
        refused.is_empty(),
        "{} of {ORDERS} orders were not accepted, e.g. {:?}",
        refused.len(),
        refused.iter().take(3).collect::<Vec<_>>()
    );

    let expected_rejected =
        (ORDERS as i64 / 20 - SCARCE_STOCK) + (ORDERS as i64 / 20 - TIGHT_ORDERS_THAT_FIT);
    let expected_confirmed = ORDERS as i64 - expected_rejected;
    let metrics_url = format!("{}/orders/metrics", System::url(&world.system.order));
    testkit::eventually("every order decided", || async {
        let counts = world.get(metrics_url.clone()).await["counts"].clone();
        counts["PENDING"] == 0
            && counts["CONFIRMED"].as_i64().unwrap_or(0) + counts["REJECTED"].as_i64().unwrap_or(0)
                == ORDERS as i64
    })
    .await;
    let counts = world.get(metrics_url).await["counts"].clone();
    assert_eq!(counts["CONFIRMED"], expected_confirmed, "{counts}");
    assert_eq!(counts["REJECTED"], expected_rejected, "{counts}");
    let stock = world
        .get(format!(
            "{}/products/{scarce}",
            System::url(&world.system.inventory)
        ))
        .await["stock"]
        .clone();
    assert_eq!(
        stock,
        json!({"available": 0, "reserved": SCARCE_STOCK, "committed": 0}),
        "the scarce product is sold out, never oversold"
    );

    testkit::eventually("the books balance", || async {
        world
            .get(format!(
                "{}/stock/audit",
                System::url(&world.system.inventory)
            ))
            .await["balanced"]
            == true
            && world
                .get(format!(
                    "{}/credit/audit",
                    System::url(&world.system.customer)
                ))
                .await["balanced"]
                == true
    })
    .await;
    testkit::eventually("every outbox drained", || async {
        let mut pending = 0;
        for (_, url) in world.database_urls() {
            pending += unpublished(&url).await;
        }
        pending == 0
    })
    .await;
    world.stop().await;
}

async fn unpublished(url: &str) -> i64 {
    let db = Database::connect(url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS pending FROM outbox_messages WHERE published_at IS NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    let pending: i64 = row.try_get("", "pending").unwrap();
    db.close().await.unwrap();
    pending
}

async fn product(world: &World, sku: &str, stock: i64) -> Uuid {
    let response = world
        .http
        .post(format!("{}/products", System::url(&world.system.inventory)))
        .bearer_auth(world.system.admin_token.as_deref().unwrap())
        .json(&json!({"sku": sku, "name": sku, "unit_price": {"amount_minor": PRICE, "currency": "EUR"}, "initial_stock": stock}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let product: Value = response.json().await.unwrap();
    product["id"].as_str().unwrap().parse().unwrap()
}

/// A customer with `limit_minor` of credit; returns their token.
async fn customer(world: &World, limit_minor: i64) -> String {
    let customers = System::url(&world.system.customer);
    let email = format!("c{}@example.com", Uuid::now_v7().simple());
    let password = "a good password";
    let response = world
        .http
        .post(format!("{customers}/customers"))
        .bearer_auth(world.system.admin_token.as_deref().unwrap())
        .json(
            &json!({"email": email, "name": "Load", "password": password,
            "credit_limit": {"amount_minor": limit_minor, "currency": "EUR"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    crate::up::log_in(&world.system, &email, password).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}
