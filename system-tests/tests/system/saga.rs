//! The saga end to end, with all three services: every test ends with the
//! system-wide invariants.

use rstest::rstest;
use std::time::Duration;
use testkit::Backend;

use events::{Envelope, StockReserved, Topic};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use reqwest::{Method, StatusCode};
use serde_json::json;
use service_kit::Clock;
use uuid::Uuid;

use testkit::{assert_problem, eventually};

use crate::helpers::{SAGA_DEADLINE_SECS, spawn_system, spawn_system_with};

/// 1. Happy path: CONFIRMED; stock and credit reserved; the timeline shows every step.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_order_is_confirmed_when_stock_and_credit_are_reserved(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_999, 10).await;
    let (customer, token) = system.customer(10_000).await;
    const CONFIRMATIONS: &str = r#"oms_order_decision_seconds_count{outcome="confirmed"}"#;
    let counted_before = system.metric(CONFIRMATIONS).await;
    let order = system.place(&token, customer, &[(book, 2)]).await;

    let confirmed = system.wait_status(order, "CONFIRMED").await;
    // The saga's consumer counts the decision once its batch committed
    // (other tests of this binary share the recorder: the count only grows).
    eventually("the confirmation counted", || async {
        system.metric(CONFIRMATIONS).await > counted_before
    })
    .await;
    assert_eq!(
        confirmed["total"],
        json!({"amount_minor": 3998, "currency": "EUR"})
    );
    assert_eq!(
        confirmed["lines"][0]["unit_price"]["amount_minor"], 1999,
        "priced from the catalog"
    );
    assert_eq!(system.stock_state(order).await.as_deref(), Some("RESERVED"));
    assert_eq!(
        system.stock_of(book).await,
        json!({"available": 8, "reserved": 2, "committed": 0})
    );
    assert_eq!(
        system.credit_state(order).await.as_deref(),
        Some("RESERVED")
    );
    assert_eq!(system.reserved_credit(customer).await, 3_998);

    let timeline = system.timeline(order).await;
    assert_eq!(timeline.first().map(String::as_str), Some("OrderPlaced"));
    assert_eq!(timeline.last().map(String::as_str), Some("OrderConfirmed"));
    for step in ["StockReserved", "CreditReserved"] {
        assert!(
            timeline.iter().any(|t| t == step),
            "{step} missing from {timeline:?}"
        );
    }
    assert_eq!(timeline.len(), 4);
    system.assert_invariants().await;
}

/// 2. Out of stock: REJECTED with the reason; the customer's credit is released.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn out_of_stock_rejects_and_releases_the_credit(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let scarce = system.product("SCARCE", 500, 1).await;
    let (customer, token) = system.customer(10_000).await;
    let order = system.place(&token, customer, &[(scarce, 3)]).await;

    let rejected = system.wait_status(order, "REJECTED").await;
    assert!(
        rejected["reason"]
            .as_str()
            .unwrap()
            .contains("1 of 3 units"),
        "{rejected}"
    );
    eventually("the credit released or never held", || async {
        system.reserved_credit(customer).await == 0
            && system.credit_state(order).await.as_deref() != Some("RESERVED")
    })
    .await;
    assert_eq!(system.stock_of(scarce).await["available"], 1);
    system.assert_invariants().await;
}

/// 3. Over the credit limit, suspended or unknown customer: REJECTED; the stock is released.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn customer_refusals_reject_and_release_the_stock(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 100).await;
    let (poor, poor_token) = system.customer(500).await;
    let (suspended, suspended_token) = system.customer(100_000).await;
    system
        .customers
        .api()
        .expect(
            Method::PATCH,
            &format!("/customers/{suspended}"),
            Some(&system.admin_token),
            Some(&json!({"status": "SUSPENDED"})),
            StatusCode::OK,
        )
        .await;
    let over_limit = system.place(&poor_token, poor, &[(book, 1)]).await;
    let while_suspended = system
        .place(&suspended_token, suspended, &[(book, 1)])
        .await;
    // An admin may order for anyone, even a customer id nobody has.
    let unknown = system
        .place(&system.admin_token, Uuid::now_v7(), &[(book, 1)])
        .await;

    for (order, words) in [
        (over_limit, "exceeds"),
        (while_suspended, "suspended"),
        (unknown, "does not exist"),
    ] {
        let rejected = system.wait_status(order, "REJECTED").await;
        assert!(
            rejected["reason"].as_str().unwrap().contains(words),
            "{rejected}"
        );
    }
    eventually("the stock released", || async {
        system.stock_of(book).await["reserved"] == 0
    })
    .await;
    assert_eq!(system.stock_of(book).await["available"], 100);
    system.assert_invariants().await;
}

/// 4. Both participants refuse: REJECTED once, nothing stays reserved.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn both_refusing_rejects_once(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let scarce = system.product("SCARCE", 1_000, 1).await;
    let (poor, token) = system.customer(100).await;
    let order = system.place(&token, poor, &[(scarce, 5)]).await;
    system.wait_status(order, "REJECTED").await;
    eventually("both refusals recorded", || async {
        let timeline = system.timeline(order).await;
        timeline.contains(&"StockRejected".to_owned())
            && timeline.contains(&"CustomerRejected".to_owned())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let timeline = system.timeline(order).await;
    assert_eq!(
        timeline.iter().filter(|t| *t == "OrderRejected").count(),
        1,
        "{timeline:?}"
    );
    system.assert_invariants().await;
}

/// 5. inventory-svc is down: the order is CANCELLED at its deadline; when
/// inventory-svc returns it works through the backlog and ends holding nothing.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_order_is_cancelled_at_its_deadline_and_the_late_reservation_released(
    #[case] backend: Backend,
) {
    let clock = Clock::manual(chrono::Utc::now());
    let mut system = spawn_system_with(backend, clock.clone(), |_| {}).await;
    let book = system.product("BOOK", 1_000, 10).await;
    let (customer, token) = system.customer(10_000).await;
    system.stop_inventory().await;

    const DEADLINE_CANCELLATIONS: &str =
        r#"oms_order_decision_seconds_count{outcome="cancelled_at_deadline"}"#;
    let counted_before = system.metric(DEADLINE_CANCELLATIONS).await;
    let order = system.place(&token, customer, &[(book, 4)]).await;
    eventually("customer-svc's reply recorded", || async {
        system
            .timeline(order)
            .await
            .contains(&"CreditReserved".to_owned())
    })
    .await;
    assert_eq!(
        system.order(order).await["status"],
        "PENDING",
        "order-svc's clock stands still: the deadline has not passed"
    );
    clock.advance(Duration::from_secs(SAGA_DEADLINE_SECS + 1));
    let cancelled = system.wait_status(order, "CANCELLED").await;
    assert!(
        cancelled["reason"].as_str().unwrap().contains("deadline"),
        "{cancelled}"
    );
    let timeline = system.timeline(order).await;
    assert!(timeline.contains(&"OrderCancelled".to_owned()));
    assert!(
        !timeline.contains(&"StockReserved".to_owned()),
        "inventory was down"
    );
    // Counted where it was decided, once committed (other tests of this
    // binary share the recorder, so the count only has to grow).
    eventually("the deadline cancellation counted", || async {
        system.metric(DEADLINE_CANCELLATIONS).await > counted_before
    })
    .await;
    eventually("credit released", || async {
        system.reserved_credit(customer).await == 0
    })
    .await;

    system.start_inventory().await;
    // inventory-svc reserves from the backlog, then releases on OrderCancelled.
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

/// 6. Cancel while PENDING and after CONFIRMED: everything released; after SHIPPED: 409.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn cancellation_releases_everything_until_the_order_ships(#[case] backend: Backend) {
    let mut system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 10).await;
    let (customer, token) = system.customer(100_000).await;

    // PENDING: inventory is down, so the order cannot confirm.
    system.stop_inventory().await;
    let pending = system.place(&token, customer, &[(book, 1)]).await;
    let response = system
        .order_api(
            Method::POST,
            &format!("/orders/{pending}/cancel"),
            &token,
            Some(&json!({"reason": "changed my mind"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let cancelled: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (cancelled["status"].as_str(), cancelled["reason"].as_str()),
        (Some("CANCELLED"), Some("changed my mind"))
    );
    system.start_inventory().await;

    // CONFIRMED, cancelled with DELETE (the record stays).
    let confirmed = system.place(&token, customer, &[(book, 2)]).await;
    system.wait_status(confirmed, "CONFIRMED").await;
    let response = system
        .order_api(
            Method::DELETE,
            &format!("/orders/{confirmed}"),
            &token,
            None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(system.order(confirmed).await["status"], "CANCELLED");
    eventually("both released", || async {
        system.stock_state(confirmed).await.as_deref() == Some("RELEASED")
            && system.credit_state(confirmed).await.as_deref() == Some("RELEASED")
    })
    .await;

    // SHIPPED: too late.
    let shipped = system.place(&token, customer, &[(book, 1)]).await;
    system.wait_status(shipped, "CONFIRMED").await;
    let response = system
        .order_api(
            Method::PATCH,
            &format!("/orders/{shipped}/status"),
            &system.admin_token,
            Some(&json!({"status": "SHIPPED", "carrier": "DHL", "tracking_number": "JD0001"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let too_late = system
        .order_api(
            Method::POST,
            &format!("/orders/{shipped}/cancel"),
            &token,
            None,
        )
        .await;
    let problem = assert_problem(too_late, StatusCode::CONFLICT, "INVALID_TRANSITION").await;
    assert_eq!(problem["allowed_transitions"], json!(["DELIVERED"]));
    eventually("the shipment committed", || async {
        system.stock_state(shipped).await.as_deref() == Some("COMMITTED")
    })
    .await;
    eventually("the cancelled order released", || async {
        system
            .stock_state(pending)
            .await
            .as_deref()
            .is_none_or(|s| s == "RELEASED")
    })
    .await;
    assert_eq!(
        system.stock_of(book).await,
        json!({"available": 9, "reserved": 0, "committed": 1})
    );
    system.assert_invariants().await;
}

/// 7. Duplicate replies, replies for unknown orders, and a restart mid-saga.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn duplicates_unknown_replies_and_restarts_leave_every_order_right(#[case] backend: Backend) {
    let mut system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 10).await;
    let (customer, token) = system.customer(100_000).await;
    let order = system.place(&token, customer, &[(book, 1)]).await;
    system.wait_status(order, "CONFIRMED").await;

    // A duplicate StockReserved under a new id, and one for an order nobody placed.
    let kafka = system.common.kafka();
    let producer = kafka.producer("test").unwrap();
    let topic = kafka.topics.name(Topic::Inventory);
    let stranger = Uuid::now_v7();
    for order_id in [order, stranger] {
        let line = events::StockLine {
            product_id: book.into(),
            quantity: events::Quantity::new(1).unwrap(),
        };
        let envelope = Envelope::new(
            StockReserved {
                order_id: order_id.into(),
                lines: vec![line],
            },
            "inventory-svc",
        );
        let key = order_id.to_string();
        let payload = envelope.to_bytes();
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&payload),
                Timeout::After(Duration::from_secs(10)),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let dead_letters = kafka.topics.dead_letter(Topic::Inventory);
    eventually("the stranger's reply dead-lettered", || async {
        let consumer: rdkafka::consumer::BaseConsumer =
            kafka.client_config("count").create().unwrap();
        let total: i64 = (0..kafka.partitions)
            .map(|p| {
                use rdkafka::consumer::Consumer;
                let (low, high) = consumer
                    .fetch_watermarks(&dead_letters, p, Duration::from_secs(5))
                    .unwrap();
                high - low
            })
            .sum();
        total == 1
    })
    .await;
    assert_eq!(system.order(order).await["status"], "CONFIRMED");
    assert_eq!(
        system
            .timeline(order)
            .await
            .iter()
            .filter(|t| *t == "OrderConfirmed")
            .count(),
        1,
        "the duplicate confirms nothing twice"
    );

    // order-svc restarts right after accepting an order.
    let in_flight = system.place(&token, customer, &[(book, 2)]).await;
    system.restart_orders().await;
    system.wait_status(in_flight, "CONFIRMED").await;
    assert_eq!(system.stock_of(book).await["reserved"], 3);
    system.assert_invariants().await;
}

/// Fifty customers order the last ten units at once: every request is
/// answered 202 (none fails because another one is writing, on either
/// backend), exactly ten orders are confirmed and the rest rejected.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn fifty_concurrent_orders_for_ten_units_are_all_accepted_and_ten_confirmed(
    #[case] backend: Backend,
) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 10).await;
    let (customer, token) = system.customer(1_000_000).await;
    let lines = [(book, 1)];
    let attempts = (0..50).map(|_| system.place_raw(&token, customer, &lines, None));
    let mut ids = Vec::new();
    let mut refused = Vec::new();
    for response in futures::future::join_all(attempts).await {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap();
        if status == StatusCode::ACCEPTED {
            ids.push(body["id"].as_str().unwrap().parse::<Uuid>().unwrap());
        } else {
            refused.push(format!("{status}: {body}"));
        }
    }
    assert!(refused.is_empty(), "refused: {refused:#?}");
    let mut confirmed = 0;
    for id in &ids {
        let order = system.wait_decided(*id).await;
        if order["status"] == "CONFIRMED" {
            confirmed += 1;
        }
    }
    assert_eq!(confirmed, 10, "exactly the stock's worth is confirmed");
    assert_eq!(
        system.stock_of(book).await,
        json!({"available": 0, "reserved": 10, "committed": 0})
    );
    system.assert_invariants().await;
}

/// 8. Ten concurrent retries with one Idempotency-Key create one order.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn concurrent_retries_with_one_idempotency_key_create_one_order(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 1_000, 100).await;
    let (customer, token) = system.customer(100_000).await;
    let lines = [(book, 1)];
    let attempts = (0..10).map(|_| system.place_raw(&token, customer, &lines, Some("checkout-42")));
    let responses = futures::future::join_all(attempts).await;
    let mut ids = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let order: serde_json::Value = response.json().await.unwrap();
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry got the same order");

    let different = system
        .place_raw(&token, customer, &[(book, 2)], Some("checkout-42"))
        .await;
    assert_problem(
        different,
        StatusCode::UNPROCESSABLE_ENTITY,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    let page: serde_json::Value = system
        .order_api(Method::GET, "/orders", &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "one order exists"
    );
    system
        .wait_status(ids[0].parse().unwrap(), "CONFIRMED")
        .await;
    assert_eq!(system.stock_of(book).await["reserved"], 1);
    system.assert_invariants().await;
}

/// The whole life: confirmed, shipped (stock committed), delivered (credit settled).
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_order_ships_and_is_delivered(#[case] backend: Backend) {
    let system = spawn_system(backend).await;
    let book = system.product("BOOK", 2_500, 5).await;
    let (customer, token) = system.customer(100_000).await;
    let order = system.place(&token, customer, &[(book, 2)]).await;
    system.wait_status(order, "CONFIRMED").await;

    let admin = &system.admin_token;
    let ship =
        json!({"status": "SHIPPED", "carrier": "DHL", "tracking_number": "JD014600006281230704"});
    let shipped: serde_json::Value = system
        .order_api(
            Method::PATCH,
            &format!("/orders/{order}/status"),
            admin,
            Some(&ship),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (shipped["status"].as_str(), shipped["carrier"].as_str()),
        (Some("SHIPPED"), Some("DHL"))
    );
    let address = json!({"shipping_address": {"name": "Ada", "line1": "1 Road", "city": "London", "postal_code": "N1", "country": "GB"}});
    let moved = system
        .order_api(
            Method::PATCH,
            &format!("/orders/{order}/shipping"),
            &token,
            Some(&address),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let delivered = system
        .order_api(
            Method::PATCH,
            &format!("/orders/{order}/status"),
            admin,
            Some(&json!({"status": "DELIVERED"})),
        )
        .await;
    assert_eq!(
        delivered.json::<serde_json::Value>().await.unwrap()["status"],
        "DELIVERED"
    );
    let again = system
        .order_api(
            Method::PATCH,
            &format!("/orders/{order}/status"),
            admin,
            Some(&json!({"status": "DELIVERED"})),
        )
        .await;
    let problem = assert_problem(again, StatusCode::CONFLICT, "INVALID_TRANSITION").await;
    assert_eq!(problem["allowed_transitions"], json!([]));
    let locked = system
        .order_api(
            Method::PATCH,
            &format!("/orders/{order}/shipping"),
            &token,
            Some(&address),
        )
        .await;
    assert_problem(locked, StatusCode::CONFLICT, "SHIPPING_LOCKED").await;

    eventually("stock committed and credit settled", || async {
        system.stock_state(order).await.as_deref() == Some("COMMITTED")
            && system.credit_state(order).await.as_deref() == Some("SETTLED")
    })
    .await;
    assert_eq!(
        system.stock_of(book).await,
        json!({"available": 3, "reserved": 0, "committed": 2})
    );
    assert_eq!(system.reserved_credit(customer).await, 0);
    let timeline = system.timeline(order).await;
    for step in [
        "OrderShipped",
        "ShippingUpdated",
        "OrderDelivered",
        "StockCommitted",
        "CreditSettled",
    ] {
        eventually("the step in the timeline", || async {
            system.timeline(order).await.iter().any(|t| t == step)
        })
        .await;
    }
    assert!(timeline.len() >= 7);
    system.assert_invariants().await;
}

/// A reply whose `producer` is longer than the timeline's column holds
/// breaks the contract (`maxLength`): it is dead-lettered with the reason
/// instead of stalling its partition, and the real reply behind it, for
/// the same order, confirms the order.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_reply_that_breaks_the_contract_is_dead_lettered_and_the_saga_goes_on(
    #[case] backend: Backend,
) {
    let mut system = spawn_system(backend).await;
    let book = system.product("LONG-1", 1_000, 10).await;
    let (customer, token) = system.customer(100_000).await;
    system.stop_inventory().await;
    let order = system.place(&token, customer, &[(book, 1)]).await;

    let kafka = system.common.kafka();
    let producer = kafka.producer("test").unwrap();
    let mut poison = Envelope::new(
        StockReserved {
            order_id: order.into(),
            lines: vec![events::StockLine {
                product_id: book.into(),
                quantity: events::Quantity::new(1).unwrap(),
            }],
        },
        "inventory-svc",
    )
    .to_json();
    poison["producer"] = "i".repeat(100).into();
    testkit::produce(
        &producer,
        &kafka.topics.name(Topic::Inventory),
        &order.to_string(),
        "StockReserved",
        &serde_json::to_vec(&poison).unwrap(),
    )
    .await;
    system.start_inventory().await;

    system.wait_status(order, "CONFIRMED").await;
    let mut dead = testkit::TopicReader::new(&kafka, &kafka.topics.dead_letter(Topic::Inventory));
    let record = &dead.records("the poison dead-lettered", 1).await[0];
    assert_eq!(
        testkit::header(record, events::headers::DLQ_ERROR_CODE).as_deref(),
        Some("SCHEMA_VIOLATION")
    );
    let reason = testkit::header(record, events::headers::DLQ_ERROR).unwrap();
    assert!(reason.contains("/producer"), "{reason}");
    system.assert_invariants().await;
}

/// A reply is believed only from its participant's topic and only when it
/// matches the order: a StockReserved forged onto the customers topic and
/// a CreditReserved for the wrong amount are dead-lettered, and the order
/// waits for its real replies.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn forged_replies_are_dead_lettered_and_change_nothing(#[case] backend: Backend) {
    let mut system = spawn_system(backend).await;
    let book = system.product("FORGED-1", 1_000, 10).await;
    let (customer, token) = system.customer(100_000).await;
    system.stop_inventory().await;
    let order = system.place(&token, customer, &[(book, 2)]).await;
    eventually("the real credit reservation", || async {
        system.credit_state(order).await.as_deref() == Some("RESERVED")
    })
    .await;

    let kafka = system.common.kafka();
    let producer = kafka.producer("test").unwrap();
    let customers_topic = kafka.topics.name(Topic::Customers);
    let wrong_topic = Envelope::new(
        StockReserved {
            order_id: order.into(),
            lines: vec![events::StockLine {
                product_id: book.into(),
                quantity: events::Quantity::new(2).unwrap(),
            }],
        },
        "inventory-svc",
    );
    let wrong_amount = Envelope::new(
        events::CreditReserved {
            order_id: order.into(),
            customer_id: customer.into(),
            amount: events::Money::new(1, events::Currency::parse("EUR").unwrap()).unwrap(),
        },
        "customer-svc",
    );
    for forged in [&wrong_topic, &wrong_amount] {
        testkit::publish(&producer, &customers_topic, forged).await;
    }
    let mut dead = testkit::TopicReader::new(&kafka, &kafka.topics.dead_letter(Topic::Customers));
    let records = dead.records("both forged replies dead-lettered", 2).await;
    let mut codes: Vec<String> = records
        .iter()
        .map(|r| testkit::header(r, events::headers::DLQ_ERROR_CODE).unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, ["HANDLER_REJECTED", "WRONG_TOPIC"]);
    assert_eq!(system.order(order).await["status"], "PENDING");

    system.start_inventory().await;
    system.wait_status(order, "CONFIRMED").await;
    system.assert_invariants().await;
}

/// 9. A backlog too big for one statement: 200 orders of 100 lines each
/// wait while inventory-svc is down (what arrives at once after an
/// outage). When it comes back, its first batch holds 20,000 reservation
/// lines, more bound values than SQLite allows in one statement; the
/// backlog is applied all the same, and the next order confirms.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_backlog_of_hundred_line_orders_is_applied_and_the_next_order_confirms(
    #[case] backend: Backend,
) {
    use futures::StreamExt;
    const ORDERS: usize = 200;
    const LINES: usize = 100;
    // Deadlines stand still: the backlog waits as long as it must.
    let clock = Clock::manual(chrono::Utc::now());
    let mut system = spawn_system_with(backend, clock, |_| {}).await;
    let products = system.products("LINE", LINES, 1_000).await;
    let (customer, token) = system.customer(10_000_000).await;
    let lines: Vec<(Uuid, u32)> = products.iter().map(|&p| (p, 1)).collect();

    system.stop_inventory().await;
    let backlog: Vec<Uuid> = futures::stream::iter(0..ORDERS)
        .map(|_| system.place(&token, customer, &lines))
        .buffer_unordered(8)
        .collect()
        .await;
    eventually("customer-svc's replies to the backlog", || async {
        system.reserved_credit(customer).await == (ORDERS * LINES) as i64 * 100
    })
    .await;
    system.start_inventory().await;

    let next = system.place(&token, customer, &lines[..1]).await;
    system.wait_status(next, "CONFIRMED").await;
    for order in backlog {
        system.wait_status(order, "CONFIRMED").await;
    }
    assert_eq!(
        system.stock_of(products[0]).await,
        json!({"available": 1_000 - ORDERS - 1, "reserved": ORDERS + 1, "committed": 0})
    );
    system.assert_invariants().await;
}
