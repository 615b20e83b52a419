//! customer-svc in the saga: credit never exceeds the limit, rejections name
//! their reason, and duplicates and out-of-order delivery keep the books.

use rstest::rstest;
use std::time::Duration;
use testkit::Backend;

use events::{
    Actor, ActorKind, CustomerRejectionReason, Event, OrderCancelled, OrderDelivered,
    OrderRejected, Participant, Topic,
};
use futures::future::join_all;
use uuid::Uuid;

use testkit::count;

use crate::helpers::{TestApp, order_placed, spawn_app};

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

async fn reserved_minor(app: &TestApp, customer: Uuid) -> i64 {
    app.credit(customer).await["reserved"]["amount_minor"]
        .as_i64()
        .unwrap()
}

/// Twenty orders of 10.00 against a limit of 75.00: exactly seven fit.
async fn orders_beyond_the_limit(app: &TestApp) {
    let (customer, _) = app.customer_with_limit(7_500).await;
    let orders: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    join_all(
        orders
            .iter()
            .map(|&order| app.publish(order_placed(order, customer, 1_000))),
    )
    .await;

    let mut replies = app.reader(Topic::Customers);
    let all = replies
        .until("a reply to each order", |all| all.len() >= 20)
        .await;
    assert_eq!(
        count(&all, "CreditReserved"),
        7,
        "the accepted orders fit the limit"
    );
    assert_eq!(count(&all, "CustomerRejected"), 13);
    for reply in &all {
        if let Event::CustomerRejected(rejected) = &reply.event {
            assert_eq!(
                rejected.reason,
                CustomerRejectionReason::CreditLimitExceeded
            );
        }
    }
    assert_eq!(
        replies.settle(Duration::from_secs(1)).await.len(),
        20,
        "one reply per order"
    );
    assert_eq!(reserved_minor(app, customer).await, 7_000);
    app.assert_credit_balanced().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn concurrent_orders_beyond_the_limit_reserve_only_what_fits(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    orders_beyond_the_limit(&app).await;
}

#[tokio::test]
async fn two_instances_in_one_group_never_exceed_the_limit() {
    let app = spawn_app(Backend::Postgres).await;
    let second = app.spawn_second_instance().await;
    orders_beyond_the_limit(&app).await;
    second.stop().await.unwrap();
}

/// Two instances apply batches whose orders name the same customers in
/// different orders: every batch locks its customers in one global order
/// (by id), so PostgreSQL never has to break a deadlock.
#[tokio::test]
async fn two_instances_lock_customers_in_one_order_and_never_deadlock() {
    let app = spawn_app(Backend::Postgres).await;
    let second = app.spawn_second_instance().await;
    let mut customers = Vec::new();
    for _ in 0..6 {
        customers.push(app.customer_with_limit(1_000_000).await.0);
    }
    let orders: Vec<(Uuid, Uuid)> = (0..120)
        .map(|n| (Uuid::now_v7(), customers[(n * 7 + n / 6) % customers.len()]))
        .collect();
    join_all(
        orders
            .iter()
            .map(|&(order, customer)| app.publish(order_placed(order, customer, 100))),
    )
    .await;
    let mut replies = app.reader(Topic::Customers);
    replies
        .until("every order reserved", |all| {
            count(all, "CreditReserved") == orders.len()
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deadlocks = testkit::postgres::deadlocks(&app.database.url).await;
    assert_eq!(deadlocks, 0, "PostgreSQL broke a deadlock between batches");
    app.assert_credit_balanced().await;
    second.stop().await.unwrap();
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn suspended_and_unknown_customers_are_rejected_with_the_reason(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (suspended, _) = app.customer_with_limit(10_000).await;
    app.set_status(suspended, "SUSPENDED").await;
    let unknown = Uuid::now_v7();
    let (usd_buyer, _) = app.customer_with_limit(10_000).await;
    let mut in_dollars = order_placed(Uuid::now_v7(), usd_buyer, 100);
    in_dollars.total = events::Money::parse(in_dollars.total.amount_minor(), "USD").unwrap();

    app.publish(order_placed(Uuid::now_v7(), suspended, 100))
        .await;
    app.publish(order_placed(Uuid::now_v7(), unknown, 100))
        .await;
    app.publish(in_dollars).await;
    let mut replies = app.reader(Topic::Customers);
    let all = replies
        .until("three rejections", |all| {
            count(all, "CustomerRejected") == 3
        })
        .await;
    let mut reasons: Vec<(Uuid, CustomerRejectionReason)> = all
        .iter()
        .filter_map(|e| match &e.event {
            Event::CustomerRejected(r) => Some((r.customer_id.as_uuid(), r.reason)),
            _ => None,
        })
        .collect();
    reasons.sort_by_key(|(c, _)| *c);
    let mut expected = vec![
        (suspended, CustomerRejectionReason::CustomerSuspended),
        (unknown, CustomerRejectionReason::UnknownCustomer),
        (usd_buyer, CustomerRejectionReason::CreditLimitExceeded),
    ];
    expected.sort_by_key(|(c, _)| *c);
    assert_eq!(reasons, expected);
    assert_eq!(reserved_minor(&app, suspended).await, 0);
    app.assert_credit_balanced().await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn release_settle_duplicates_and_out_of_order_delivery_keep_the_books(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (customer, _) = app.customer_with_limit(10_000).await;
    let mut replies = app.reader(Topic::Customers);

    // Reserve, duplicate (same record, and a new id for the same order), release twice.
    let first = Uuid::now_v7();
    let placed = app.publish(order_placed(first, customer, 2_500)).await;
    app.publish_envelope(&placed).await;
    app.publish(order_placed(first, customer, 2_500)).await;
    replies
        .until("the reservation", |all| count(all, "CreditReserved") == 1)
        .await;
    assert_eq!(reserved_minor(&app, customer).await, 2_500);
    app.publish(OrderRejected {
        order_id: first.into(),
        rejected_by: Participant::Inventory,
        reason: "out of stock".into(),
    })
    .await;
    app.publish(cancelled(first)).await;
    replies
        .until("the release", |all| count(all, "CreditReleased") == 1)
        .await;
    assert_eq!(reserved_minor(&app, customer).await, 0);
    app.assert_credit_balanced().await;

    // Cancelled before it was placed: the late OrderPlaced holds nothing.
    let early = Uuid::now_v7();
    app.publish(cancelled(early)).await;
    app.publish(order_placed(early, customer, 1_000)).await;

    // Reserved, then delivered twice: settled once.
    let delivered = Uuid::now_v7();
    app.publish(order_placed(delivered, customer, 4_000)).await;
    replies
        .until("the second reservation", |all| {
            count(all, "CreditReserved") == 2
        })
        .await;
    app.publish(OrderDelivered {
        order_id: delivered.into(),
    })
    .await;
    app.publish(OrderDelivered {
        order_id: delivered.into(),
    })
    .await;
    replies
        .until("the settlement", |all| count(all, "CreditSettled") == 1)
        .await;

    let all = replies.settle(Duration::from_secs(2)).await;
    assert_eq!(
        count(&all, "CreditReserved"),
        2,
        "the early-cancelled order reserved nothing"
    );
    assert_eq!(count(&all, "CreditReleased"), 1);
    assert_eq!(count(&all, "CreditSettled"), 1);
    assert_eq!(reserved_minor(&app, customer).await, 0);
    app.assert_credit_balanced().await;
}

/// An order total beyond the contract's money ceiling (one that overflows
/// a customer's reserved credit) is dead-lettered with the reason instead
/// of stalling its partition or corrupting the books; the next record for
/// the same order is applied.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_overflowing_total_is_dead_lettered_and_its_partition_flows(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (customer, _) = app.customer_with_limit(10_000).await;
    let mut replies = app.reader(Topic::Customers);
    app.publish(order_placed(Uuid::now_v7(), customer, 2_500))
        .await;
    replies
        .until("the first reservation", |all| {
            count(all, "CreditReserved") == 1
        })
        .await;

    let order = Uuid::now_v7();
    let mut poison = events::Envelope::new(order_placed(order, customer, 1), "order-svc").to_json();
    let near_max = i64::MAX - 1_000;
    poison["payload"]["total"]["amount_minor"] = near_max.into();
    poison["payload"]["lines"][0]["unit_price"]["amount_minor"] = near_max.into();
    app.publish_json(order, &poison).await;
    app.publish(order_placed(order, customer, 1_000)).await;

    let mut dead =
        testkit::TopicReader::new(&app.kafka, &app.kafka.topics.dead_letter(Topic::Orders));
    let record = &dead.records("the poison dead-lettered", 1).await[0];
    assert_eq!(
        rdkafka::Message::key(record),
        Some(order.to_string().as_bytes())
    );
    assert_eq!(
        testkit::header(record, events::headers::DLQ_ERROR_CODE).as_deref(),
        Some("SCHEMA_VIOLATION")
    );
    let reason = testkit::header(record, events::headers::DLQ_ERROR).unwrap();
    assert!(reason.contains("amount_minor"), "{reason}");
    replies
        .until("the corrected order reserved", |all| {
            count(all, "CreditReserved") == 2
        })
        .await;
    assert_eq!(reserved_minor(&app, customer).await, 3_500);
    app.assert_credit_balanced().await;
}
