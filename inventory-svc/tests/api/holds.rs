//! Reservations that no order decision releases expire: an OrderPlaced
//! that order-svc never follows up (a forged record, a lost order) holds
//! its units only until its deadline plus `OMS_HOLD_GRACE_SECS`.

use std::time::Duration;

use rstest::rstest;
use testkit::{Backend, count};
use uuid::Uuid;

use events::{Envelope, Event, OrderPlaced, OrderPlacedV1, ReleaseReason, Topic};

use crate::helpers::{TestApp, for_order, order_placed, spawn_app};

/// The default saga deadline plus the default grace, and a second more.
const PAST_DEADLINE_AND_GRACE: Duration = Duration::from_secs(30 + 300 + 1);

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_forged_order_placed_is_released_after_its_deadline_and_grace(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("FORGED-1", 1999, 5).await;
    let order = Uuid::now_v7();
    app.publish(OrderPlaced {
        deadline_at: app.clock.now() + chrono::Duration::seconds(30),
        ..order_placed(order, &[(product, 2)])
    })
    .await;
    assert_expires(&app, product, order).await;
}

/// A version 1 OrderPlaced names no deadline: it is its `occurred_at` plus
/// the default saga deadline.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_version_1_order_placed_expires_after_the_default_deadline_and_grace(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let product = app.create_product("FORGED-V1", 1999, 5).await;
    let order = Uuid::now_v7();
    let placed = order_placed(order, &[(product, 2)]);
    let v1 = OrderPlacedV1 {
        order_id: placed.order_id,
        customer_id: placed.customer_id,
        lines: placed.lines,
        total: placed.total,
        shipping_address: None,
    };
    let mut envelope = Envelope::new(v1, "order-svc");
    envelope.occurred_at = app.clock.now();
    app.publish_envelope(&envelope).await;
    assert_expires(&app, product, order).await;
}

/// The order's 2 units of `product` (of 5) are held, and given back with
/// the reason once the clock passes the deadline and the grace.
async fn assert_expires(app: &TestApp, product: Uuid, order: Uuid) {
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    replies
        .until("the forged order's units are held", |all| {
            count(all, "StockReserved") == 1
        })
        .await;
    assert_eq!(app.product(product).await["stock"]["reserved"], 2);

    app.clock.advance(PAST_DEADLINE_AND_GRACE);
    let all = replies
        .until("the expired hold is released", |all| {
            count(all, "StockReleased") == 1
        })
        .await;
    let released = for_order(&all, order);
    let Some(Event::StockReleased(release)) = released.last().map(|e| &e.event) else {
        panic!("no StockReleased for the order: {released:?}");
    };
    assert_eq!(release.reason, Some(ReleaseReason::HoldExpired));
    assert_eq!(release.lines.len(), 1);
    assert_eq!(release.lines[0].quantity.get(), 2);
    let stock = &app.product(product).await["stock"];
    assert_eq!(
        (stock["available"].as_i64(), stock["reserved"].as_i64()),
        (Some(5), Some(0))
    );
    let reservation = app.reservation(order).await.unwrap();
    assert_eq!(reservation["state"], "RELEASED");
    assert_eq!(reservation["reason"], "HOLD_EXPIRED");
    app.assert_stock_conserved().await;
}
