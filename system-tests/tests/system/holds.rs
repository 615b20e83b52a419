//! A participant that gives a hold back on its own (its hold expired, or
//! an operator released it) cancels an order that is PENDING or CONFIRMED,
//! naming the release: the other participant releases too, and the
//! invariants hold. order-svc's clock stands still in these tests, so no deadline of
//! its own explains the cancellation.

use std::time::Duration;

use events::{Envelope, ReleaseReason, StockLine, StockReleased, Topic};
use rstest::rstest;
use serde_json::json;
use service_kit::Clock;
use testkit::{Backend, eventually};
use uuid::Uuid;

use crate::helpers::{SAGA_DEADLINE_SECS, System, spawn_system_with, spawn_system_with_clocks};

/// The default grace after an order's deadline (`OMS_HOLD_GRACE_SECS`).
const HOLD_GRACE_SECS: u64 = 300;

/// Places an order for 4 of a product (10 in stock) by a customer with
/// 100.00 EUR of credit while inventory-svc is down, and waits until
/// customer-svc holds its credit: the order is PENDING and stays so, since
/// order-svc's clock does not move. Returns (order, product, customer).
async fn pending_order_holding_credit(system: &mut System) -> (Uuid, Uuid, Uuid) {
    let book = system.product("BOOK", 1_000, 10).await;
    let (customer, token) = system.customer(10_000).await;
    system.stop_inventory().await;
    let order = system.place(&token, customer, &[(book, 4)]).await;
    eventually("customer-svc's reply recorded", || async {
        system
            .timeline(order)
            .await
            .contains(&"CreditReserved".to_owned())
    })
    .await;
    assert_eq!(system.reserved_credit(customer).await, 4_000);
    assert_eq!(system.order(order).await["status"], "PENDING");
    (order, book, customer)
}

/// Whether the timeline records `cause` and right after it `effect`,
/// once each.
fn followed_by(timeline: &[String], cause: &str, effect: &str) -> bool {
    let once = |t: &str| timeline.iter().filter(|e| *e == t).count() == 1;
    once(cause) && once(effect) && timeline.windows(2).any(|w| w[0] == cause && w[1] == effect)
}

/// After the cancellation: inventory-svc comes back, holds from its
/// backlog and releases on OrderCancelled; the order stays CANCELLED and
/// nothing is held anywhere.
async fn assert_everything_released(system: &mut System, order: Uuid, book: Uuid, customer: Uuid) {
    eventually("the credit released", || async {
        system.reserved_credit(customer).await == 0
    })
    .await;
    assert_eq!(
        system.credit_state(order).await.as_deref(),
        Some("RELEASED")
    );
    system.start_inventory().await;
    eventually("inventory caught up and released", || async {
        system.stock_state(order).await.as_deref() == Some("RELEASED")
    })
    .await;
    assert_eq!(
        system.stock_of(book).await,
        json!({"available": 10, "reserved": 0, "committed": 0})
    );
    assert_eq!(
        system.order(order).await["status"],
        "CANCELLED",
        "late replies do not revive it"
    );
    system.assert_invariants().await;
}

/// inventory-svc's hold of a PENDING order expires (a StockReleased with
/// `reason: HOLD_EXPIRED`, published as inventory-svc would while it is
/// away from the group): the order is CANCELLED and its credit released.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_pending_order_whose_stock_hold_expired_is_cancelled_and_its_credit_released(
    #[case] backend: Backend,
) {
    let clock = Clock::manual(chrono::Utc::now());
    let mut system = spawn_system_with(backend, clock, |_| {}).await;
    let (order, book, customer) = pending_order_holding_credit(&mut system).await;

    let kafka = system.common.kafka();
    let producer = kafka.producer("test-inventory-svc").unwrap();
    let expired = Envelope::new(
        StockReleased {
            order_id: order.into(),
            lines: vec![StockLine {
                product_id: book.into(),
                quantity: events::Quantity::new(4).unwrap(),
            }],
            reason: Some(ReleaseReason::HoldExpired),
        },
        "inventory-svc",
    );
    testkit::publish(&producer, &kafka.topics.name(Topic::Inventory), &expired).await;

    system.wait_status(order, "CANCELLED").await;
    let timeline = system.timeline(order).await;
    assert!(
        followed_by(&timeline, "StockReleased", "OrderCancelled"),
        "{timeline:?}"
    );
    assert_everything_released(&mut system, order, book, customer).await;
}

/// customer-svc's own sweeper releases the credit of a PENDING order once
/// its clock passes the order's deadline and the grace (CreditReleased,
/// `HOLD_EXPIRED`): order-svc, whose clock has not moved, cancels the
/// order, and inventory-svc, back later, releases the stock it then holds.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_pending_order_whose_credit_hold_expired_is_cancelled(#[case] backend: Backend) {
    let start = chrono::Utc::now();
    let customers_clock = Clock::manual(start);
    let mut system = spawn_system_with_clocks(
        backend,
        Clock::manual(start),
        customers_clock.clone(),
        |_| {},
    )
    .await;
    let (order, book, customer) = pending_order_holding_credit(&mut system).await;

    customers_clock.advance(Duration::from_secs(
        SAGA_DEADLINE_SECS + HOLD_GRACE_SECS + 1,
    ));
    system.wait_status(order, "CANCELLED").await;
    let timeline = system.timeline(order).await;
    assert!(
        followed_by(&timeline, "CreditReleased", "OrderCancelled"),
        "{timeline:?}"
    );
    let credit = system
        .customers
        .api()
        .get_ok(
            &format!("/credit/reservations/{order}"),
            Some(&system.admin_token),
        )
        .await;
    assert_eq!(
        (credit["state"].as_str(), credit["reason"].as_str()),
        (Some("RELEASED"), Some("HOLD_EXPIRED"))
    );
    assert_everything_released(&mut system, order, book, customer).await;
}

/// An operator releases the stock of a CONFIRMED order by hand
/// (`POST /reservations/{order}/release`): the order can no longer be
/// fulfilled, so order-svc cancels it, naming the release, and
/// customer-svc gives the credit back. Nothing stays CONFIRMED without
/// the stock behind it.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_confirmed_order_whose_stock_an_operator_releases_is_cancelled(#[case] backend: Backend) {
    let system = crate::helpers::spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 10).await;
    let (customer, token) = system.customer(10_000).await;
    let order = system.place(&token, customer, &[(book, 4)]).await;
    system.wait_status(order, "CONFIRMED").await;

    system
        .inventory
        .api()
        .expect(
            reqwest::Method::POST,
            &format!("/reservations/{order}/release"),
            Some(&system.admin_token),
            None,
            reqwest::StatusCode::OK,
        )
        .await;
    let cancelled = system.wait_status(order, "CANCELLED").await;
    assert!(
        cancelled["reason"]
            .as_str()
            .is_some_and(|r| r.contains("RELEASED_BY_OPERATOR")),
        "{cancelled}"
    );
    eventually("the credit released", || async {
        system.reserved_credit(customer).await == 0
    })
    .await;
    assert_eq!(
        system.stock_of(book).await,
        json!({"available": 10, "reserved": 0, "committed": 0})
    );
    system.assert_invariants().await;
}
