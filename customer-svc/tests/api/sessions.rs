//! The account lifecycle: refresh tokens that rotate, sign-out, password
//! changes, suspension, and the bounds on password hashing.

use rstest::rstest;
use std::time::Duration;
use testkit::{Backend, assert_problem};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::Clock;
use uuid::Uuid;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app, spawn_app_with};

const PASSWORD: &str = "a good password";

async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        "/auth/refresh",
        None,
        Some(&json!({"refresh_token": refresh_token})),
    )
    .await
}

async fn sign_out(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        "/auth/logout",
        None,
        Some(&json!({"refresh_token": refresh_token})),
    )
    .await
}

fn refresh_token_of(answer: &Value) -> String {
    answer["refresh_token"].as_str().unwrap().to_owned()
}

/// A customer registered by the admin, signed in: id, email, token answer.
async fn signed_in_customer(app: &TestApp) -> (Uuid, String, Value) {
    let (customer, _) = app.customer_with_limit(100).await;
    let email = app.email_of(customer).await;
    let answer = app.sign_in(&email, PASSWORD).await;
    (customer, email, answer)
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_ends_the_sign_in(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (customer, _, first) = signed_in_customer(&app).await;
    assert!(first["refresh_expires_in"].as_u64().unwrap() > 86_400);
    let first_refresh = refresh_token_of(&first);
    assert!(first_refresh.len() >= 43, "256 bits at least");

    let renewed = refresh(&app, &first_refresh).await;
    assert_eq!(renewed.status(), StatusCode::OK);
    assert_eq!(renewed.headers()["cache-control"], "no-store");
    let renewed: Value = renewed.json().await.unwrap();
    assert_eq!(renewed["customer_id"], customer.to_string());
    let second_refresh = refresh_token_of(&renewed);
    assert_ne!(second_refresh, first_refresh);
    let access = renewed["access_token"].as_str().unwrap();
    let own = app
        .request(
            Method::GET,
            &format!("/customers/{customer}"),
            Some(access),
            None,
        )
        .await;
    assert_eq!(
        own.status(),
        StatusCode::OK,
        "the renewed access token works"
    );

    // The first token again: somebody kept a copy. The whole sign-in ends.
    assert_problem(
        refresh(&app, &first_refresh).await,
        StatusCode::UNAUTHORIZED,
        "REFRESH_TOKEN_REUSED",
    )
    .await;
    assert_problem(
        refresh(&app, &second_refresh).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    assert_problem(
        refresh(&app, "not a token we issued").await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn signing_out_revokes_that_sign_in_only(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, email, laptop) = signed_in_customer(&app).await;
    let phone = app.sign_in(&email, PASSWORD).await;

    assert_eq!(
        sign_out(&app, &refresh_token_of(&laptop)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        refresh(&app, &refresh_token_of(&laptop)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    assert_eq!(
        refresh(&app, &refresh_token_of(&phone)).await.status(),
        StatusCode::OK,
        "the other sign-in goes on"
    );
    // Signing out twice, or with a token we never issued, is not an error.
    assert_eq!(
        sign_out(&app, &refresh_token_of(&laptop)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sign_out(&app, "unknown").await.status(),
        StatusCode::NO_CONTENT
    );
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn suspension_revokes_every_refresh_token(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (customer, _, answer) = signed_in_customer(&app).await;
    // Statuses are read in any case, written upper case.
    app.set_status(customer, "suspended").await;
    let record: Value = app
        .request(
            Method::GET,
            &format!("/customers/{customer}"),
            Some(&app.admin_token),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(record["status"], "SUSPENDED");
    assert_problem(
        refresh(&app, &refresh_token_of(&answer)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
    // Reactivation does not bring the old sign-ins back.
    app.set_status(customer, "ACTIVE").await;
    assert_problem(
        refresh(&app, &refresh_token_of(&answer)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn customers_change_their_password_with_the_current_one(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (customer, email, answer) = signed_in_customer(&app).await;
    let access = answer["access_token"].as_str().unwrap().to_owned();
    let path = format!("/customers/{customer}/password");
    let change = |body: Value, token: String| {
        let path = path.clone();
        let app = &app;
        async move {
            app.request(Method::POST, &path, Some(&token), Some(&body))
                .await
        }
    };

    let without_current = change(json!({"new_password": "a new password"}), access.clone()).await;
    let body = assert_problem(
        without_current,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    assert_eq!(body["field"], "current_password");
    assert_problem(
        change(
            json!({"current_password": "not it", "new_password": "a new password"}),
            access.clone(),
        )
        .await,
        StatusCode::FORBIDDEN,
        "WRONG_PASSWORD",
    )
    .await;
    assert_problem(
        change(
            json!({"current_password": PASSWORD, "new_password": "short"}),
            access.clone(),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "INVALID_INPUT",
    )
    .await;
    let (_, someone_else) = app.customer_with_limit(100).await;
    assert_problem(
        change(
            json!({"current_password": PASSWORD, "new_password": "a new password"}),
            someone_else,
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    let changed = change(
        json!({"current_password": PASSWORD, "new_password": "a new password"}),
        access.clone(),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.request(
            Method::POST,
            "/auth/token",
            None,
            Some(&json!({"email": email, "password": PASSWORD})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
    app.sign_in(&email, "a new password").await;
    assert_problem(
        refresh(&app, &refresh_token_of(&answer)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_REFRESH_TOKEN",
    )
    .await;

    // An admin resets it without knowing it.
    let reset = change(
        json!({"new_password": "reset by the admin"}),
        app.admin_token.clone(),
    )
    .await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    app.sign_in(&email, "reset by the admin").await;
}

/// The admin's password changed over the API survives a restart.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_admin_password_changed_over_the_api_survives_a_restart(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let admin: Value = app
        .request(Method::GET, "/customers", Some(&app.admin_token), None)
        .await
        .json()
        .await
        .unwrap();
    let admin_id = admin["items"][0]["id"].as_str().unwrap().to_owned();
    let changed = app
        .request(
            Method::POST,
            &format!("/customers/{admin_id}/password"),
            Some(&app.admin_token),
            Some(&json!({"current_password": ADMIN_PASSWORD, "new_password": "the admin's own"})),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    let app = app.restart().await;
    app.sign_in(ADMIN_EMAIL, "the admin's own").await;
}

/// The lock-out grows with each failure past the threshold.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_lockout_grows_with_each_further_failure(#[case] backend: Backend) {
    let clock = Clock::manual(chrono::Utc::now());
    let app = spawn_app_with(backend, |settings| {
        settings.throttle.lockout_after_failures = 2;
        settings.throttle.lockout_secs = 1;
        settings.clock = clock.clone();
    })
    .await;
    let (customer, _) = app.customer_with_limit(100).await;
    let email = app.email_of(customer).await;
    let attempt = |password: &'static str| {
        let email = email.clone();
        let app = &app;
        async move {
            app.request(
                Method::POST,
                "/auth/token",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await
        }
    };
    assert_eq!(
        attempt("wrong one").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        attempt("wrong two").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let locked = attempt(PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(locked.headers()["retry-after"], "1");
    clock.advance(Duration::from_millis(1_100));
    assert_eq!(
        attempt("wrong three").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let longer = attempt(PASSWORD).await;
    assert_eq!(longer.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(longer.headers()["retry-after"], "2", "doubled");
    clock.advance(Duration::from_millis(2_100));
    // The right password after the lock clears the count.
    app.sign_in(&email, PASSWORD).await;
    assert_eq!(
        attempt("wrong four").await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.sign_in(&email, PASSWORD).await;
}

/// More logins at once than hashing slots: the ones that cannot get a
/// slot in time are answered 503 with `Retry-After`, never 500, and the
/// others are answered normally.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_flood_of_logins_waits_for_a_bounded_number_of_hashes(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.throttle.password_hash_concurrency = Some(1);
        settings.throttle.password_hash_queue_ms = 20;
        settings.throttle.login_attempts_per_minute = 1_000;
    })
    .await;
    let attempts = (0..40).map(|i| {
        let app = &app;
        async move {
            app.request(
                Method::POST,
                "/auth/token",
                None,
                Some(&json!({"email": format!("flood-{i}@example.com"), "password": "a guess"})),
            )
            .await
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let mut busy = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(answer.headers()["retry-after"], "1");
                assert_problem(
                    answer,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "PASSWORD_HASHING_BUSY",
                )
                .await;
            }
            other => panic!("a login in the flood was answered {other}"),
        }
    }
    assert!(
        busy > 0,
        "40 logins at once all got a hashing slot in 20 ms"
    );
    // When the flood is over, logins work again.
    app.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
}
