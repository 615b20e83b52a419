//! Credit reservations that no order decision releases expire: an
//! OrderPlaced that order-svc never follows up (a forged record, a lost
//! order) holds its total only until its deadline plus
//! `OMS_HOLD_GRACE_SECS`.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rstest::rstest;
use service_kit::Clock;
use testkit::{Backend, TopicReader, assert_problem, count};
use uuid::Uuid;

use events::{Event, OrderPlaced, ReleaseReason, Topic};

use crate::helpers::{TestApp, order_placed, spawn_app, spawn_app_with};

/// The default saga deadline plus the default grace, and a second more.
const PAST_DEADLINE_AND_GRACE: Duration = Duration::from_secs(30 + 300 + 1);

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_forged_order_placed_is_released_after_its_deadline_and_grace(#[case] backend: Backend) {
    let clock = Clock::manual(chrono::Utc::now());
    let app = spawn_app_with(backend, |settings| settings.clock = clock.clone()).await;
    let (customer, _) = app.customer_with_limit(10_000).await;
    let order = Uuid::now_v7();
    app.publish(OrderPlaced {
        deadline_at: clock.now() + chrono::Duration::seconds(30),
        ..order_placed(order, customer, 3_998)
    })
    .await;
    let mut replies = app.reader(Topic::Customers);
    replies
        .until("the forged order's credit is held", |all| {
            count(all, "CreditReserved") == 1
        })
        .await;
    assert_eq!(
        app.credit(customer).await["reserved"]["amount_minor"],
        3_998
    );

    clock.advance(PAST_DEADLINE_AND_GRACE);
    let all = replies
        .until("the expired hold is released", |all| {
            count(all, "CreditReleased") == 1
        })
        .await;
    let Some(Event::CreditReleased(release)) = all.last().map(|e| &e.event) else {
        panic!("no CreditReleased: {all:?}");
    };
    assert_eq!(release.order_id, order.into());
    assert_eq!(release.amount.amount_minor(), 3_998);
    assert_eq!(release.reason, Some(ReleaseReason::HoldExpired));
    assert_eq!(app.credit(customer).await["reserved"]["amount_minor"], 0);
    app.assert_credit_balanced().await;
}

/// A customer-svc whose time is `clock`, a customer with a limit of
/// 100.00 EUR, and a reader of its replies.
async fn with_manual_clock(backend: Backend) -> (TestApp, Clock, Uuid, String, TopicReader) {
    let clock = Clock::manual(chrono::Utc::now());
    let app = spawn_app_with(backend, |settings| settings.clock = clock.clone()).await;
    let (customer, token) = app.customer_with_limit(10_000).await;
    let replies = app.reader(Topic::Customers);
    (app, clock, customer, token, replies)
}

/// Publishes an OrderPlaced of `total_minor` by `customer`, with a deadline
/// no test here reaches, and waits for customer-svc's `answers`-th answer.
async fn place_and_wait(
    app: &TestApp,
    clock: &Clock,
    replies: &mut TopicReader,
    customer: Uuid,
    total_minor: i64,
    answers: usize,
) -> Uuid {
    let order = Uuid::now_v7();
    app.publish(OrderPlaced {
        deadline_at: clock.now() + chrono::Duration::days(1),
        ..order_placed(order, customer, total_minor)
    })
    .await;
    replies
        .until("customer-svc's answer", |all| {
            count(all, "CreditReserved") + count(all, "CustomerRejected") == answers
        })
        .await;
    order
}

/// The order ids of a listing's page, and its `next_cursor`.
async fn held_page(app: &TestApp, query: &str) -> (Vec<Uuid>, Option<Uuid>) {
    let page = app
        .api()
        .get_ok(
            &format!("/credit/reservations{query}"),
            Some(&app.admin_token),
        )
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
async fn held_credit_is_listed_oldest_first_by_age_and_page_by_page(#[case] backend: Backend) {
    let (app, clock, customer, _, mut replies) = with_manual_clock(backend).await;
    let oldest = place_and_wait(&app, &clock, &mut replies, customer, 1_000, 1).await;
    clock.advance(Duration::from_secs(20 * 60));
    let middle = place_and_wait(&app, &clock, &mut replies, customer, 2_000, 2).await;
    // Over what is left of the limit: refused, so it holds nothing.
    place_and_wait(&app, &clock, &mut replies, customer, 9_000, 3).await;
    clock.advance(Duration::from_secs(20 * 60));
    let newest = place_and_wait(&app, &clock, &mut replies, customer, 3_000, 4).await;
    assert_eq!(count(&replies.envelopes(), "CustomerRejected"), 1);

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
        held_page(&app, "?older_than=600").await,
        (vec![oldest, middle], None)
    );
    assert_eq!(held_page(&app, "?older_than=2h").await, (vec![], None));
    let instant = (clock.now() - chrono::Duration::minutes(30)).to_rfc3339();
    assert_eq!(
        held_page(
            &app,
            &format!("?older_than={}", instant.replace('+', "%2B"))
        )
        .await,
        (vec![oldest], None)
    );

    assert_eq!(
        held_page(&app, "?limit=2").await,
        (vec![oldest, middle], Some(middle))
    );
    assert_eq!(
        held_page(&app, &format!("?limit=2&cursor={middle}")).await,
        (vec![newest], None)
    );
}

/// The listing and the release are the admin's: a customer's token gets
/// 403, no token 401; an `older_than` that is neither a duration nor an
/// instant is 422 `INVALID_INPUT`, never a 500.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_credit_hold_admin_endpoints_refuse_customers_and_bad_ages(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, customer_token) = app.customer_with_limit(10_000).await;
    let release = format!("/credit/reservations/{}/release", Uuid::now_v7());
    for (method, path) in [
        (Method::GET, "/credit/reservations"),
        (Method::POST, release.as_str()),
    ] {
        let response = app
            .api()
            .send(method.clone(), path, Some(&customer_token), None)
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
            .api()
            .send(
                Method::GET,
                &format!("/credit/reservations?older_than={bad}"),
                Some(&app.admin_token),
                None,
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

/// An operator releases a credit hold by hand: 200 with the released
/// reservation, CreditReleased with `RELEASED_BY_OPERATOR` on the topic,
/// the amount back with the customer. Releasing again is 409
/// `CREDIT_RESERVATION_NOT_HELD`; an order customer-svc never heard of is
/// 404.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_operator_releases_a_credit_hold_by_hand_once(#[case] backend: Backend) {
    let (app, clock, customer, _, mut replies) = with_manual_clock(backend).await;
    let order = place_and_wait(&app, &clock, &mut replies, customer, 2_500, 1).await;
    let kept = place_and_wait(&app, &clock, &mut replies, customer, 1_000, 2).await;
    assert_eq!(
        app.credit(customer).await["reserved"]["amount_minor"],
        3_500
    );

    let released = app
        .api()
        .expect(
            Method::POST,
            &format!("/credit/reservations/{order}/release"),
            Some(&app.admin_token),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(released["order_id"], order.to_string());
    assert_eq!(released["state"], "RELEASED");
    assert_eq!(released["reason"], "RELEASED_BY_OPERATOR");
    assert_eq!(released["amount_minor"], 2_500);

    let all = replies
        .until("the release on the topic", |all| {
            count(all, "CreditReleased") == 1
        })
        .await;
    let Some(Event::CreditReleased(release)) = all
        .iter()
        .rev()
        .map(|e| &e.event)
        .find(|e| matches!(e, Event::CreditReleased(_)))
    else {
        panic!("no CreditReleased: {all:?}");
    };
    assert_eq!(release.order_id, order.into());
    assert_eq!(release.customer_id, customer.into());
    assert_eq!(release.amount.amount_minor(), 2_500);
    assert_eq!(release.reason, Some(ReleaseReason::ReleasedByOperator));
    assert_eq!(
        app.credit(customer).await["reserved"]["amount_minor"],
        1_000,
        "the other order still holds its amount"
    );
    assert_eq!(held_page(&app, "").await, (vec![kept], None));

    let again = app
        .api()
        .send(
            Method::POST,
            &format!("/credit/reservations/{order}/release"),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_problem(again, StatusCode::CONFLICT, "CREDIT_RESERVATION_NOT_HELD").await;
    let unknown = app
        .api()
        .send(
            Method::POST,
            &format!("/credit/reservations/{}/release", Uuid::now_v7()),
            Some(&app.admin_token),
            None,
        )
        .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    app.assert_credit_balanced().await;
}
