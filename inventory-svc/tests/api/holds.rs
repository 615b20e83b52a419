//! Reservations that no order decision releases expire: an OrderPlaced
//! that order-svc never follows up (a forged record, a lost order) holds
//! its units only until its deadline plus `OMS_HOLD_GRACE_SECS`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rstest::rstest;
use testkit::{Backend, assert_problem, count};
use uuid::Uuid;

use events::{Envelope, Event, OrderConfirmed, OrderPlaced, OrderPlacedV1, ReleaseReason, Topic};

use crate::helpers::{TestApp, for_order, order_placed, spawn_app};

/// The default saga deadline plus the default grace, and a second more.
const PAST_DEADLINE_AND_GRACE: Duration = Duration::from_secs(30 + 300 + 1);

/// Orders placed while inventory-svc is down, ahead of a confirmation.
const OUTAGE_BACKLOG: usize = 1_000;

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

/// An order confirmed while inventory-svc was down keeps its stock when
/// the service comes back after the deadline and the grace: the hold
/// expires only once the confirmation published before the cutoff has
/// been applied, and then it no longer expires at all.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_order_confirmed_during_an_outage_keeps_its_stock_after_the_restart(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let product = app.create_product("OUTAGE-1", 1999, 5).await;
    let order = Uuid::now_v7();
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    app.publish(OrderPlaced {
        deadline_at: app.clock.now() + chrono::Duration::seconds(30),
        ..order_placed(order, &[(product, 2)])
    })
    .await;
    replies
        .until("the order's units are held", |all| {
            count(all, "StockReserved") == 1
        })
        .await;

    // While inventory-svc is down, other orders keep coming (a backlog
    // its consumer works through after the restart), then order-svc
    // confirms this one, in time.
    let busy = app.create_product("OUTAGE-BUSY", 999, 1_000).await;
    let producer = app.kafka.producer("test-order-svc-during-outage").unwrap();
    let orders = app.topics().name(Topic::Orders);
    let clock = app.clock.clone();
    let backlog: Vec<Envelope> = (0..OUTAGE_BACKLOG)
        .map(|_| {
            let placed = OrderPlaced {
                deadline_at: clock.now() + chrono::Duration::days(1),
                ..order_placed(Uuid::now_v7(), &[(busy, 1)])
            };
            Envelope::new(placed, "order-svc")
        })
        .collect();
    let confirmed = Envelope::new(
        OrderConfirmed {
            order_id: order.into(),
        },
        "order-svc",
    );
    let app = app
        .restarted_after(async move {
            futures::future::join_all(
                backlog
                    .iter()
                    .map(|placed| testkit::publish(&producer, &orders, placed)),
            )
            .await;
            testkit::publish(&producer, &orders, &confirmed).await;
            clock.advance(PAST_DEADLINE_AND_GRACE);
        })
        .await;

    let all = replies.settle(Duration::from_secs(5)).await;
    assert_eq!(
        count(&all, "StockReleased"),
        0,
        "the confirmed order's stock was released: {:?}",
        for_order(&all, order)
    );
    assert_eq!(app.reservation(order).await.unwrap()["state"], "RESERVED");
    assert_eq!(app.product(product).await["stock"]["reserved"], 2);
    app.assert_stock_conserved().await;
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

/// Far enough ahead that no test here sees a hold expire on its own.
fn far_deadline(app: &TestApp) -> chrono::DateTime<chrono::Utc> {
    app.clock.now() + chrono::Duration::days(1)
}

/// Publishes an OrderPlaced for `quantity` of `product` and waits until
/// inventory-svc has answered it (the `replies`-th answer on its topic).
async fn place_and_wait(
    app: &TestApp,
    replies: &mut testkit::TopicReader,
    product: Uuid,
    quantity: u32,
    answers: usize,
) -> Uuid {
    let order = Uuid::now_v7();
    app.publish(OrderPlaced {
        deadline_at: far_deadline(app),
        ..order_placed(order, &[(product, quantity)])
    })
    .await;
    replies
        .until("inventory-svc's answer", |all| {
            count(all, "StockReserved") + count(all, "StockRejected") == answers
        })
        .await;
    order
}

/// The order ids of a listing's page, and its `next_cursor`.
async fn held_page(app: &TestApp, query: &str) -> (Vec<Uuid>, Option<Uuid>) {
    let page = app
        .api()
        .get_ok(&format!("/reservations{query}"), Some(&app.admin_token))
        .await;
    let ids = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["state"], "RESERVED", "only holds are listed: {r}");
            r["order_id"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    let next = page["next_cursor"].as_str().map(|c| c.parse().unwrap());
    (ids, next)
}

/// The admin listing shows the holds only (not a refused order), oldest
/// first, by their age on the service's clock; `older_than` takes a
/// duration or an instant; pages follow `next_cursor`.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn held_reservations_are_listed_oldest_first_by_age_and_page_by_page(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let product = app.create_product("HELD-LIST", 100, 10).await;
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    let oldest = place_and_wait(&app, &mut replies, product, 1, 1).await;
    app.clock.advance(Duration::from_secs(20 * 60));
    let middle = place_and_wait(&app, &mut replies, product, 2, 2).await;
    // More than the stock left: refused, so it holds nothing and is not listed.
    place_and_wait(&app, &mut replies, product, 100, 3).await;
    app.clock.advance(Duration::from_secs(20 * 60));
    let newest = place_and_wait(&app, &mut replies, product, 3, 4).await;
    assert_eq!(count(&replies.envelopes(), "StockRejected"), 1);

    assert_eq!(
        held_page(&app, "").await,
        (vec![oldest, middle, newest], None)
    );
    // Made 40, 20 and 0 minutes ago by the service's clock.
    assert_eq!(
        held_page(&app, "?older_than=30m").await,
        (vec![oldest], None)
    );
    assert_eq!(
        held_page(&app, "?older_than=10m").await,
        (vec![oldest, middle], None)
    );
    assert_eq!(
        held_page(&app, "?older_than=1d").await,
        (vec![], None),
        "nothing is a day old"
    );
    let instant = (app.clock.now() - chrono::Duration::minutes(30)).to_rfc3339();
    assert_eq!(
        held_page(&app, &format!("?older_than={}", urlencoding_plus(&instant))).await,
        (vec![oldest], None)
    );

    let (first, cursor) = held_page(&app, "?limit=2").await;
    assert_eq!((first, cursor), (vec![oldest, middle], Some(middle)));
    assert_eq!(
        held_page(&app, &format!("?limit=2&cursor={middle}")).await,
        (vec![newest], None)
    );
}

/// `+` in an RFC 3339 offset would read as a space in a query string.
fn urlencoding_plus(raw: &str) -> String {
    raw.replace('+', "%2B")
}

/// The listing and the release are the admin's: a customer's token gets
/// 403, no token 401; an `older_than` that is neither a duration nor an
/// instant is 422 `INVALID_INPUT`, never a 500.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_hold_admin_endpoints_refuse_customers_and_bad_ages(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let order = Uuid::now_v7();
    let release = format!("/reservations/{order}/release");
    for (method, path) in [
        (Method::GET, "/reservations"),
        (Method::POST, release.as_str()),
    ] {
        let response = app
            .api()
            .send(method.clone(), path, Some(&app.customer_token), None)
            .await;
        assert_problem(response, StatusCode::FORBIDDEN, "FORBIDDEN").await;
        let response = app.api().send(method, path, None, None).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    for bad in [
        "5weeks",
        "1y",
        "-5m",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "5m%20ago",
    ] {
        let response = app
            .get(
                &format!("/reservations?older_than={bad}"),
                Some(&app.admin_token),
            )
            .await;
        let problem =
            assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "INVALID_INPUT").await;
        assert!(
            problem.to_string().contains("older_than"),
            "{bad}: {problem}"
        );
    }
}

/// An operator releases a hold by hand: 200 with the released
/// reservation, StockReleased with `RELEASED_BY_OPERATOR` on the topic, the
/// units back in stock. Releasing again is 409 `RESERVATION_NOT_HELD`; an
/// order inventory-svc never heard of is 404 `RESERVATION_NOT_FOUND`.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_operator_releases_a_hold_by_hand_once(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("BY-HAND", 100, 5).await;
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    let order = place_and_wait(&app, &mut replies, product, 2, 1).await;
    let kept = place_and_wait(&app, &mut replies, product, 1, 2).await;
    assert_eq!(app.product(product).await["stock"]["reserved"], 3);

    let released = app
        .api()
        .expect(
            Method::POST,
            &format!("/reservations/{order}/release"),
            Some(&app.admin_token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(released["order_id"], order.to_string());
    assert_eq!(released["state"], "RELEASED");
    assert_eq!(released["reason"], "RELEASED_BY_OPERATOR");
    assert_eq!(released["lines"][0]["quantity"], 2);

    let all = replies
        .until("the release on the topic", |all| {
            count(all, "StockReleased") == 1
        })
        .await;
    let Some(Event::StockReleased(release)) = for_order(&all, order).last().map(|e| &e.event)
    else {
        panic!("no StockReleased for the order: {all:?}");
    };
    assert_eq!(release.reason, Some(ReleaseReason::ReleasedByOperator));
    assert_eq!(
        (release.lines.len(), release.lines[0].quantity.get()),
        (1, 2)
    );
    let stock = &app.product(product).await["stock"];
    assert_eq!(
        (stock["available"].as_i64(), stock["reserved"].as_i64()),
        (Some(4), Some(1)),
        "the other order still holds its unit"
    );
    assert_eq!(held_page(&app, "").await, (vec![kept], None));

    let again = app
        .api()
        .send(
            Method::POST,
            &format!("/reservations/{order}/release"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_problem(again, StatusCode::CONFLICT, "RESERVATION_NOT_HELD").await;
    let unknown = app
        .api()
        .send(
            Method::POST,
            &format!("/reservations/{}/release", Uuid::now_v7()),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "RESERVATION_NOT_FOUND").await;
    app.assert_stock_conserved().await;
}
