//! Credentials that tell nothing and cost a bounded amount: an unknown
//! email is answered like a known one however often it is tried, password
//! changes are throttled like sign-ins, and a made-up refresh token never
//! waits for the database's write lock.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rstest::rstest;
use sea_orm::{ConnectionTrait, Database, DatabaseTransaction, TransactionTrait};
use serde_json::json;
use testkit::{Backend, assert_problem};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const PASSWORD: &str = "a good password";

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        "/auth/token",
        None,
        Some(&json!({"email": email, "password": password})),
    )
    .await
}

/// What eight wrong passwords in a row get, and whether each 429 says
/// when to come back.
async fn eight_wrong_passwords(app: &TestApp, email: &str) -> Vec<(u16, bool)> {
    let mut answers = Vec::new();
    for _ in 0..8 {
        let answer = sign_in(app, email, "a wrong password").await;
        answers.push((
            answer.status().as_u16(),
            answer.headers().contains_key("retry-after"),
        ));
    }
    answers
}

/// Account enumeration: if only real accounts locked, the sixth wrong
/// password would say which emails exist. Both are answered alike.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_unknown_email_is_answered_like_a_known_one_after_repeated_failures(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (customer, _) = app.customer_with_limit(100).await;
    let known = app.email_of(customer).await;
    let unknown = format!("nobody-{}@example.com", Uuid::now_v7().simple());

    let for_known = eight_wrong_passwords(&app, &known).await;
    let for_unknown = eight_wrong_passwords(&app, &unknown).await;
    assert_eq!(
        for_known, for_unknown,
        "(status, Retry-After) for a real account, then for a made-up one"
    );
    assert_eq!(for_known[5], (429, true), "{for_known:?}");
    // The made-up email's lock is its own: another one is not locked.
    let other = format!("nobody-{}@example.com", Uuid::now_v7().simple());
    assert_problem(
        sign_in(&app, &other, "a wrong password").await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Both failed sign-ins do the same work: one password hash and the same
/// database writes. Prints the two medians (no assertion on time: the
/// report quotes them).
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_two_failed_sign_ins_take_the_same_work(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.throttle.lockout_after_failures = 10_000;
        settings.throttle.login_attempts_per_minute = 10_000;
    })
    .await;
    let (customer, _) = app.customer_with_limit(100).await;
    let known = app.email_of(customer).await;
    let unknown = format!("nobody-{}@example.com", Uuid::now_v7().simple());
    let (mut known_times, mut unknown_times) = (Vec::new(), Vec::new());
    for _ in 0..31 {
        for (email, times) in [(&known, &mut known_times), (&unknown, &mut unknown_times)] {
            let started = Instant::now();
            let answer = sign_in(&app, email, "a wrong password").await;
            times.push(started.elapsed());
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        }
    }
    println!(
        "{backend:?}: median failed sign-in, known email {:?}, unknown email {:?}",
        median(known_times),
        median(unknown_times)
    );
}

/// One customer alternating two passwords cannot keep the hashing slots
/// busy: password changes are limited per account, and other accounts are
/// not affected.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn password_changes_are_limited_per_account(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.throttle.login_attempts_per_minute = 10_000;
    })
    .await;
    let (customer, token) = app.customer_with_limit(100).await;
    let path = format!("/customers/{customer}/password");
    let passwords = [PASSWORD, "another good password"];
    let mut throttled = None;
    for change in 0..50 {
        let body = json!({"current_password": passwords[change % 2],
            "new_password": passwords[(change + 1) % 2]});
        let answer = app
            .request(Method::POST, &path, Some(&token), Some(&body))
            .await;
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((change, answer));
            break;
        }
        assert_eq!(answer.status(), StatusCode::NO_CONTENT, "change {change}");
    }
    let (change, answer) = throttled.expect("50 password changes in a row were all made");
    assert!(change >= 3, "throttled after only {change} changes");
    assert!(answer.headers().contains_key("retry-after"));
    assert_problem(answer, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS").await;
    // Another customer changes theirs.
    let (other, other_token) = app.customer_with_limit(100).await;
    let answer = app
        .request(
            Method::POST,
            &format!("/customers/{other}/password"),
            Some(&other_token),
            Some(&json!({"current_password": PASSWORD, "new_password": "a new good password"})),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::NO_CONTENT);
}

/// Password changes take from the client address's bucket, like sign-ins:
/// one address changing many accounts' passwords is throttled.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn password_changes_are_limited_per_address(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.throttle.login_attempts_per_minute = 10;
    })
    .await;
    let mut throttled = None;
    for change in 0..30 {
        let body = json!({"email": format!("r{}@example.com", Uuid::now_v7().simple()),
            "name": "Customer", "password": PASSWORD});
        let created = app
            .api()
            .expect(
                Method::POST,
                "/customers",
                Some(&app.admin_token),
                Some(&body),
                StatusCode::CREATED,
            )
            .await;
        let answer = app
            .request(
                Method::POST,
                &format!("/customers/{}/password", created["id"].as_str().unwrap()),
                Some(&app.admin_token),
                Some(&json!({"new_password": "reset by the admin"})),
            )
            .await;
        if answer.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((change, answer));
            break;
        }
        assert_eq!(answer.status(), StatusCode::NO_CONTENT, "change {change}");
    }
    let (change, answer) = throttled.expect("30 password changes from one address were all made");
    assert!(change >= 5, "throttled after only {change} changes");
    assert!(answer.headers().contains_key("retry-after"));
    assert_problem(answer, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS").await;
}

/// Holds the database's write lock (SQLite) or a lock on the refresh
/// tokens that every `SELECT … FOR UPDATE` waits for (PostgreSQL), until
/// the returned transaction is dropped.
async fn hold_writers_off(app: &TestApp) -> (sea_orm::DatabaseConnection, DatabaseTransaction) {
    let db = Database::connect(&app.database.url).await.unwrap();
    let txn = match app.database.backend {
        Backend::Sqlite => db
            .begin_with_options(sea_orm::TransactionOptions {
                sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await
            .unwrap(),
        Backend::Postgres => {
            let txn = db.begin().await.unwrap();
            txn.execute_unprepared("LOCK TABLE refresh_tokens IN EXCLUSIVE MODE")
                .await
                .unwrap();
            txn
        }
    };
    (db, txn)
}

/// A flood of made-up refresh tokens must not queue for the write lock
/// ahead of the credit consumer: an unknown token is refused (refresh) or
/// ignored (sign-out) from a read, while another writer holds the lock.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn unknown_refresh_tokens_are_answered_without_the_write_lock(#[case] backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.common.sqlite_busy_timeout_ms = 200;
        settings.common.http_request_timeout_secs = 5;
    })
    .await;
    let (_db, held) = hold_writers_off(&app).await;
    let made_up = json!({"refresh_token": "bm90IGEgcmVmcmVzaCB0b2tlbiBhbnlib2R5IGhhcw"});
    let refreshed = app
        .request(Method::POST, "/auth/refresh", None, Some(&made_up))
        .await;
    let refresh_status = refreshed.status();
    let refresh_body = refreshed.text().await.unwrap();
    let signed_out = app
        .request(Method::POST, "/auth/logout", None, Some(&made_up))
        .await;
    let logout_status = signed_out.status();
    let logout_body = signed_out.text().await.unwrap();
    held.rollback().await.unwrap();
    assert_eq!(
        (refresh_status, logout_status),
        (StatusCode::UNAUTHORIZED, StatusCode::NO_CONTENT),
        "while another writer held the lock: refresh {refresh_body}, logout {logout_body}"
    );
    assert!(
        refresh_body.contains("INVALID_REFRESH_TOKEN"),
        "{refresh_body}"
    );
}
