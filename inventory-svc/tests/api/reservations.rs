//! inventory-svc in the saga: reservations never oversell, are all or
//! nothing, and survive duplicates, replays and out-of-order releases with
//! stock conserved.

use rstest::rstest;
use std::time::Duration;
use testkit::Backend;

use events::{
    Actor, ActorKind, Event, OrderCancelled, OrderRejected, OrderShipped, Participant,
    ShortageKind, Topic, headers,
};
use futures::future::join_all;
use serde_json::Value;
use uuid::Uuid;

use testkit::{count, eventually};

use crate::helpers::{TestApp, for_order, order_placed, spawn_app};

fn cancelled(order_id: Uuid) -> OrderCancelled {
    OrderCancelled {
        order_id: order_id.into(),
        reason: "customer request".into(),
        cancelled_by: Actor {
            kind: ActorKind::Customer,
            id: None,
        },
    }
}

fn rejected(order_id: Uuid) -> OrderRejected {
    OrderRejected {
        order_id: order_id.into(),
        rejected_by: Participant::Customer,
        reason: "credit limit".into(),
    }
}

async fn state_of(app: &TestApp, order_id: Uuid) -> Option<String> {
    app.reservation(order_id)
        .await
        .map(|r| r["state"].as_str().unwrap().to_owned())
}

async fn stock(app: &TestApp, product: Uuid) -> Value {
    app.product(product).await["stock"].clone()
}

async fn fifty_orders_for_ten_units(app: &TestApp) {
    let product = app.create_product("HOT-1", 100, 10).await;
    let orders: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
    join_all(
        orders
            .iter()
            .map(|&order| app.publish(order_placed(order, &[(product, 1)]))),
    )
    .await;

    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    let all = replies
        .until("a reply to each of the 50 orders", |all| all.len() >= 50)
        .await;
    assert_eq!(
        count(&all, "StockReserved"),
        10,
        "exactly the 10 units are reserved"
    );
    assert_eq!(
        count(&all, "StockRejected"),
        40,
        "the other 40 orders are rejected"
    );
    for order in &orders {
        assert_eq!(for_order(&all, *order).len(), 1, "one reply per order");
    }
    let settled = replies.settle(Duration::from_secs(1)).await;
    assert_eq!(settled.len(), 50, "no further replies");
    assert_eq!(
        stock(app, product).await,
        serde_json::json!({"available": 0, "reserved": 10, "committed": 0})
    );
    app.assert_stock_conserved().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn fifty_concurrent_orders_for_ten_units_reserve_exactly_ten(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    fifty_orders_for_ten_units(&app).await;
}

/// Two instances share one database only on PostgreSQL: a second
/// inventory-svc on the same SQLite file would run a second relay over
/// one outbox (publishing every event twice), so it is refused at start,
/// and the first keeps serving.
#[tokio::test]
async fn a_second_instance_on_the_same_sqlite_file_is_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let error = match app.try_spawn_second_instance().await {
        Ok(_) => panic!("a second instance started on the same SQLite file"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("already in use by another process") && error.contains(".sqlite"),
        "{error}"
    );
    fifty_orders_for_ten_units(&app).await;
}

/// On PostgreSQL, instances share the database and split the partitions.
#[tokio::test]
async fn two_instances_in_one_group_never_oversell() {
    let app = spawn_app(Backend::Postgres).await;
    let second = app.spawn_second_instance().await;
    fifty_orders_for_ten_units(&app).await;
    second.stop().await.unwrap();
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_multi_line_order_with_one_short_line_reserves_nothing(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let plenty = app.create_product("PLENTY", 100, 100).await;
    let scarce = app.create_product("SCARCE", 100, 1).await;
    let ghost = Uuid::now_v7();
    let order = Uuid::now_v7();
    let placed = app
        .publish(order_placed(order, &[(plenty, 5), (scarce, 2), (ghost, 1)]))
        .await;

    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    let all = replies.until("the rejection", |all| !all.is_empty()).await;
    let Event::StockRejected(rejection) = &all[0].event else {
        panic!("expected StockRejected, got {:?}", all[0])
    };
    let mut problems: Vec<(Uuid, ShortageKind)> = rejection
        .short_lines
        .iter()
        .map(|l| (l.product_id.as_uuid(), l.problem))
        .collect();
    problems.sort();
    let mut expected = vec![
        (scarce, ShortageKind::InsufficientStock),
        (ghost, ShortageKind::UnknownProduct),
    ];
    expected.sort();
    assert_eq!(
        problems, expected,
        "names exactly the short and unknown lines"
    );
    assert_eq!(
        all[0].causation_id,
        Some(placed.event_id),
        "caused by the OrderPlaced"
    );
    assert_eq!(all[0].correlation_id, order, "correlated by the order");
    assert_eq!(
        stock(&app, plenty).await["available"],
        100,
        "the available line was not reserved"
    );
    assert_eq!(stock(&app, scarce).await["available"], 1);
    assert_eq!(state_of(&app, order).await.as_deref(), Some("REJECTED"));
    app.assert_stock_conserved().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn release_after_reserve_gives_the_units_back_once(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("REL-1", 100, 5).await;
    let order = Uuid::now_v7();
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    app.publish(order_placed(order, &[(product, 3)])).await;
    replies
        .until("StockReserved", |all| count(all, "StockReserved") == 1)
        .await;
    assert_eq!(stock(&app, product).await["reserved"], 3);
    app.assert_stock_conserved().await;

    app.publish(cancelled(order)).await;
    replies
        .until("StockReleased", |all| count(all, "StockReleased") == 1)
        .await;
    assert_eq!(
        stock(&app, product).await,
        serde_json::json!({"available": 5, "reserved": 0, "committed": 0})
    );
    assert_eq!(state_of(&app, order).await.as_deref(), Some("RELEASED"));
    app.assert_stock_conserved().await;

    // A duplicate release, and a rejection after the cancellation.
    app.publish(cancelled(order)).await;
    app.publish(rejected(order)).await;
    let all = replies.settle(Duration::from_secs(2)).await;
    assert_eq!(count(&all, "StockReleased"), 1, "released once");
    assert_eq!(stock(&app, product).await["available"], 5);
    app.assert_stock_conserved().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_cancellation_before_its_reservation_leaks_nothing(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("EARLY-1", 100, 5).await;
    let order = Uuid::now_v7();
    app.publish(cancelled(order)).await;
    eventually("the cancellation recorded", || async {
        state_of(&app, order).await.is_some()
    })
    .await;
    assert_eq!(state_of(&app, order).await.as_deref(), Some("RELEASED"));

    app.publish(order_placed(order, &[(product, 2)])).await;
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    let all = replies.settle(Duration::from_secs(3)).await;
    assert!(
        for_order(&all, order).is_empty(),
        "a cancelled order gets no reservation: {all:?}"
    );
    assert_eq!(stock(&app, product).await["available"], 5);
    assert_eq!(state_of(&app, order).await.as_deref(), Some("RELEASED"));
    app.assert_stock_conserved().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn duplicate_order_placed_reserves_once(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let product = app.create_product("DUPE-1", 100, 10).await;
    let order = Uuid::now_v7();
    let first = app.publish(order_placed(order, &[(product, 4)])).await;
    // The same record again (relay or replay), and the same order under a new event id.
    app.publish_envelope(&first).await;
    app.publish(order_placed(order, &[(product, 4)])).await;

    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    replies
        .until("the reservation", |all| count(all, "StockReserved") == 1)
        .await;
    let all = replies.settle(Duration::from_secs(2)).await;
    assert_eq!(for_order(&all, order).len(), 1, "one reply");
    assert_eq!(stock(&app, product).await["reserved"], 4);
    app.assert_stock_conserved().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn shipping_commits_the_reservation_and_a_bogus_shipment_is_dead_lettered(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let product = app.create_product("SHIP-1", 100, 5).await;
    let order = Uuid::now_v7();
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    app.publish(order_placed(order, &[(product, 2)])).await;
    replies
        .until("StockReserved", |all| count(all, "StockReserved") == 1)
        .await;

    let shipped = OrderShipped {
        order_id: order.into(),
        carrier: "DHL".into(),
        tracking_number: "123".into(),
    };
    app.publish(shipped.clone()).await;
    app.publish(shipped).await;
    replies
        .until("StockCommitted", |all| count(all, "StockCommitted") == 1)
        .await;
    assert_eq!(
        stock(&app, product).await,
        serde_json::json!({"available": 3, "reserved": 0, "committed": 2})
    );
    assert_eq!(state_of(&app, order).await.as_deref(), Some("COMMITTED"));

    // A cancellation after shipping changes nothing.
    app.publish(cancelled(order)).await;
    let never_reserved = Uuid::now_v7();
    app.publish(OrderShipped {
        order_id: never_reserved.into(),
        carrier: "DHL".into(),
        tracking_number: "456".into(),
    })
    .await;
    let mut dead = app.reader(&app.topics().dead_letter(Topic::Orders));
    dead.until("the bogus shipment dead-lettered", |all| !all.is_empty())
        .await;
    let (envelope, record) = &dead.seen[0];
    assert_eq!(envelope.key(), never_reserved);
    let code = testkit::header(record, headers::DLQ_ERROR_CODE);
    assert_eq!(code.as_deref(), Some("HANDLER_REJECTED"));

    let all = replies.settle(Duration::from_secs(2)).await;
    assert_eq!(count(&all, "StockCommitted"), 1);
    assert_eq!(
        count(&all, "StockReleased"),
        0,
        "shipped units are not released"
    );
    assert_eq!(stock(&app, product).await["committed"], 2);
    app.assert_stock_conserved().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_rejection_naming_many_lines_still_fits_the_event_contract(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let order = Uuid::now_v7();
    let lines: Vec<(Uuid, u32)> = (0..60).map(|_| (Uuid::now_v7(), 1)).collect();
    app.publish(order_placed(order, &lines)).await;
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    replies.until("the rejection", |all| !all.is_empty()).await;
    let (envelope, record) = &replies.seen[0];
    let Event::StockRejected(rejection) = &envelope.event else {
        panic!("expected StockRejected")
    };
    assert_eq!(rejection.short_lines.len(), 60, "every line is named");
    assert!(rejection.reason.chars().count() <= 1000);
    let checked = event_runtime::validation::decode(rdkafka::Message::payload(record));
    assert!(checked.is_ok(), "the reply breaks its schema: {checked:?}");
    assert_eq!(state_of(&app, order).await.as_deref(), Some("REJECTED"));
}

/// An OrderPlaced that names one product on two lines, with quantities
/// whose sum no counter holds, breaks the contract: it is dead-lettered
/// with the reason instead of stalling its partition, and the next record
/// for the same order (a corrected placement) is applied.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_order_naming_a_product_twice_is_dead_lettered_and_its_partition_flows(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let product = app.create_product("TWICE-1", 100, 10).await;
    let order = Uuid::now_v7();
    let placed = events::Envelope::new(order_placed(order, &[(product, 1)]), "order-svc").to_json();
    let line = placed["payload"]["lines"][0].clone();
    let mut twice = placed.clone();
    twice["payload"]["lines"] = serde_json::json!([line.clone(), line]);
    let mut huge = twice.clone();
    for index in [0, 1] {
        huge["payload"]["lines"][index]["quantity"] = 4_000_000_000u32.into();
    }
    app.publish_json(order, &twice).await;
    app.publish_json(order, &huge).await;
    app.publish(order_placed(order, &[(product, 3)])).await;

    let mut dead = app.reader(&app.topics().dead_letter(Topic::Orders));
    let records = dead.records("both poison records dead-lettered", 2).await;
    let reasons: Vec<String> = records
        .iter()
        .map(|record| {
            assert_eq!(
                rdkafka::Message::key(record),
                Some(order.to_string().as_bytes())
            );
            assert_eq!(
                testkit::header(record, headers::DLQ_ERROR_CODE).as_deref(),
                Some("SCHEMA_VIOLATION")
            );
            testkit::header(record, headers::DLQ_ERROR).unwrap()
        })
        .collect();
    assert!(reasons[0].contains("more than one line"), "{}", reasons[0]);
    assert!(reasons[1].contains("/quantity"), "{}", reasons[1]);
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    replies
        .until("the corrected order reserved", |all| {
            count(all, "StockReserved") == 1
        })
        .await;
    assert_eq!(stock(&app, product).await["reserved"], 3);
    app.assert_stock_conserved().await;
}

/// Two instances apply batches of multi-line orders that name the same
/// products in opposite orders: every batch locks its products in one
/// global order (by id), so PostgreSQL never has to break a deadlock.
#[tokio::test]
async fn two_instances_lock_products_in_one_order_and_never_deadlock() {
    let app = spawn_app(Backend::Postgres).await;
    let second = app.spawn_second_instance().await;
    let mut products = Vec::new();
    for n in 0..6 {
        products.push(app.create_product(&format!("LOCK-{n}"), 100, 10_000).await);
    }
    let orders: Vec<(Uuid, Vec<(Uuid, u32)>)> = (0..120)
        .map(|n| {
            let mut lines: Vec<(Uuid, u32)> = products.iter().map(|&p| (p, 1)).collect();
            if n % 2 == 1 {
                lines.reverse();
            }
            (Uuid::now_v7(), lines)
        })
        .collect();
    join_all(
        orders
            .iter()
            .map(|(order, lines)| app.publish(order_placed(*order, lines))),
    )
    .await;
    let mut replies = app.reader(&app.topics().name(Topic::Inventory));
    replies
        .until("every order reserved", |all| {
            count(all, "StockReserved") == orders.len()
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deadlocks = testkit::postgres::deadlocks(&app._database.url).await;
    assert_eq!(deadlocks, 0, "PostgreSQL broke a deadlock between batches");
    for product in &products {
        assert_eq!(stock(&app, *product).await["reserved"], orders.len());
    }
    app.assert_stock_conserved().await;
    second.stop().await.unwrap();
}
