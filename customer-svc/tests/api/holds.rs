//! Credit reservations that no order decision releases expire: an
//! OrderPlaced that order-svc never follows up (a forged record, a lost
//! order) holds its total only until its deadline plus
//! `OMS_HOLD_GRACE_SECS`.

use std::time::Duration;

use rstest::rstest;
use service_kit::Clock;
use testkit::{Backend, count};
use uuid::Uuid;

use events::{Event, OrderPlaced, ReleaseReason, Topic};

use crate::helpers::{order_placed, spawn_app_with};

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
    assert_eq!(release.amount.amount_minor, 3_998);
    assert_eq!(release.reason, Some(ReleaseReason::HoldExpired));
    assert_eq!(app.credit(customer).await["reserved"]["amount_minor"], 0);
    app.assert_credit_balanced().await;
}
