//! Key rotation across the system: once customer-svc stops publishing a
//! retired signing key, every service refuses the tokens it signed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{Value, json};
use service_kit::Clock;
use testkit::Backend;
use uuid::Uuid;

use crate::helpers::{System, WAIT, spawn_system_with_clocks};

/// What each of the three services answers `token` on an admin read.
async fn answers(system: &System, token: &str) -> [StatusCode; 3] {
    let get = |address: String, path: String| {
        let client = system.client.clone();
        let token = token.to_owned();
        async move {
            client
                .get(format!("{address}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    [
        get(system.orders.address.clone(), "/orders?limit=1".into()).await,
        get(
            system.inventory.address.clone(),
            format!("/reservations/{}", Uuid::now_v7()),
        )
        .await,
        get(
            system.customers.address.clone(),
            "/customers?limit=1".into(),
        )
        .await,
    ]
}

fn accepted(statuses: &[StatusCode; 3]) -> bool {
    statuses
        .iter()
        .all(|s| *s == StatusCode::OK || *s == StatusCode::NOT_FOUND)
}

/// After a rotation and the retirement of the old key, a token the old key
/// signed is refused by order-svc, inventory-svc and customer-svc within
/// the verifiers' refresh interval, although it has not expired.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_retired_signing_key_is_refused_by_every_service(#[case] backend: Backend) {
    let issuer_clock = Clock::manual(chrono::Utc::now());
    let system =
        spawn_system_with_clocks(backend, Clock::system(), issuer_clock.clone(), |common| {
            common.jwks_refresh_secs = 1;
        })
        .await;
    let old_token = system.admin_token.clone();
    assert!(
        accepted(&answers(&system, &old_token).await),
        "the admin token before the rotation"
    );

    let rotation: Value = system
        .customers
        .api()
        .expect(
            Method::POST,
            "/auth/keys/rotate",
            Some(&old_token),
            None,
            StatusCode::OK,
        )
        .await;
    let new_kid = rotation["kid"].as_str().unwrap().to_owned();
    let new_token: Value = system
        .customers
        .api()
        .expect(
            Method::POST,
            "/auth/token",
            None,
            Some(&json!({"email": "root@oms.test", "password": "admin password for tests"})),
            StatusCode::OK,
        )
        .await;
    let new_token = new_token["access_token"].as_str().unwrap().to_owned();
    // Verifiers learn a new key id on first sight, at most once per few
    // seconds.
    testkit::eventually("every service accepts the new key", || async {
        accepted(&answers(&system, &new_token).await)
    })
    .await;
    assert!(
        accepted(&answers(&system, &old_token).await),
        "tokens of the old key stay valid while it is published"
    );

    // A token lifetime (15 minutes) and the minute's margin pass for the
    // issuer: the old key is no longer published, and housekeeping prunes it.
    issuer_clock.advance(Duration::from_secs(900 + 61));
    testkit::eventually("the old key unpublished", || async {
        let keys: Value = system
            .customers
            .api()
            .get_ok("/.well-known/jwks.json", None)
            .await;
        let kids: Vec<&str> = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        kids == [new_kid.as_str()]
    })
    .await;

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let statuses = answers(&system, &old_token).await;
        if statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{WAIT:?} after the old key was unpublished, a token it signed still gets \
             {statuses:?} from (order-svc, inventory-svc, customer-svc)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        accepted(&answers(&system, &new_token).await),
        "the current key still works"
    );
    let refused_by: chrono::DateTime<chrono::Utc> = rotation["retired_keys_refused_by"]
        .as_str()
        .expect("the rotation says by when the retired key is refused")
        .parse()
        .unwrap();
    assert!(refused_by > chrono::Utc::now(), "{rotation}");
}
