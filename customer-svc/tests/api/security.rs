//! What an attacker tries first: the default admin password, password
//! guessing, login and registration floods, forged key ids.

use rstest::rstest;
use testkit::{Backend, assert_problem};

use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use customer_svc::app::tokens::{KeySealer, KeyStore, LocalKeys};
use futures::future::BoxFuture;
use jsonwebtoken::jwk::JwkSet;
use service_kit::Role;
use service_kit::auth::jwt::{JwtAuthenticator, KeySource, TokenSigner};
use service_kit::auth::{AuthError, Authenticator};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app};

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After on {}", response.status()))
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        "/auth/token",
        None,
        Some(&json!({"email": email, "password": password})),
    )
    .await
}

/// After a few wrong passwords the account is locked for a while: even
/// the right password waits, and the answer says how long.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn repeated_wrong_passwords_lock_the_account_for_a_while(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (customer, _) = app.customer_with_limit(100).await;
    let email = app.email_of(customer).await;
    let mut answers = Vec::new();
    for _ in 0..8 {
        answers.push(sign_in(&app, &email, "a wrong password").await);
    }
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    let locked = answers.pop().unwrap();
    assert!(retry_after(&locked) >= 1);
    assert_problem(locked, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS").await;

    let right = sign_in(&app, &email, "a good password").await;
    assert!(retry_after(&right) >= 1);
    assert_problem(right, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS").await;
    // Another account is not affected.
    assert_eq!(
        sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
}

/// Guessing across many accounts from one address hits the address's limit.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn a_login_flood_from_one_address_is_throttled(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let mut throttled = None;
    for attempt in 0..200 {
        let email = format!("guess-{attempt}@example.com");
        let response = sign_in(&app, &email, "a guessed password").await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((attempt, response));
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let (attempt, response) = throttled.expect("200 guesses in a row were all answered");
    assert!(attempt >= 10, "throttled after only {attempt} attempts");
    assert!(retry_after(&response) >= 1);
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS").await;
}

/// One address cannot create accounts without bound.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn self_registration_is_rate_limited_per_address(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let mut throttled = None;
    for attempt in 0..100 {
        let body = json!({"email": format!("r{}@example.com", Uuid::now_v7().simple()),
            "name": "Registrant", "password": "a good password"});
        let response = app
            .request(Method::POST, "/customers", None, Some(&body))
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((attempt, response));
            break;
        }
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let (attempt, response) = throttled.expect("100 registrations in a row were all accepted");
    assert!(attempt >= 5, "throttled after only {attempt} registrations");
    assert!(retry_after(&response) >= 1);
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_ATTEMPTS").await;
    // An admin registering customers is not throttled.
    app.customer_with_limit(100).await;
}

/// A restart with another `OMS_ADMIN_PASSWORD` does not overwrite the
/// admin's password: the bootstrap creates the account once.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_bootstrap_never_overwrites_the_admin_password(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let app = app
        .restart_with(|settings| settings.admin_password = Some("a different password".into()))
        .await;
    assert_eq!(
        sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
        StatusCode::OK
    );
    assert_problem(
        sign_in(&app, ADMIN_EMAIL, "a different password").await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
}

/// Changing `OMS_ADMIN_EMAIL` creates the new admin and retires the one
/// the bootstrap made before, instead of leaving it active unnoticed.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn changing_the_admin_email_retires_the_previous_admin(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let app = app
        .restart_with(|settings| settings.admin_email = "new-root@oms.test".into())
        .await;
    assert_eq!(
        sign_in(&app, "new-root@oms.test", ADMIN_PASSWORD)
            .await
            .status(),
        StatusCode::OK
    );
    assert_problem(
        sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        StatusCode::FORBIDDEN,
        "ACCOUNT_SUSPENDED",
    )
    .await;
}

/// A registered customer's email may not become the admin's: that would
/// hand the admin role to whoever chose that customer's password.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn an_existing_customer_is_never_promoted_by_the_bootstrap(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (customer, _) = app.customer_with_limit(100).await;
    let email = app.email_of(customer).await;
    let database = app.database.clone();
    let common = app.common.clone();
    app.app.stop().await.unwrap();
    let mut settings = crate::helpers::settings(&database.url, &common, 900);
    settings.admin_email = email;
    let refused = customer_svc::build(settings).await.err().expect("refused");
    assert!(
        format!("{refused:#}").contains("OMS_ADMIN_EMAIL"),
        "{refused:#}"
    );
}

/// Outside development mode the service refuses to start with the default
/// or an empty admin password.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_default_admin_password_is_refused_outside_dev_mode(#[case] backend: Backend) {
    let database = testkit::TestDatabase::create_on(backend).await;
    let mut common = service_kit::CommonSettings::local(testkit::kafka_bootstrap().await);
    common.topic_prefix = testkit::topic_prefix();
    for password in [Some("admin-change-me"), Some(""), None] {
        let mut settings = crate::helpers::settings(&database.url, &common, 900);
        settings.admin_password = password.map(str::to_owned);
        let refused = customer_svc::build(settings).await.err().expect("refused");
        assert!(
            format!("{refused:#}").contains("OMS_ADMIN_PASSWORD"),
            "{refused:#}"
        );
    }
    // Without a key-encryption key it refuses too.
    let mut settings = crate::helpers::settings(&database.url, &common, 900);
    settings.key_encryption_key = None;
    let refused = customer_svc::build(settings).await.err().expect("refused");
    assert!(
        format!("{refused:#}").contains("OMS_KEY_ENCRYPTION_KEY"),
        "{refused:#}"
    );
    // Dev mode allows both defaults: the admin gets the default password,
    // the key-encryption key is made in the data directory.
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = crate::helpers::settings(&database.url, &common, 900);
    settings.admin_password = None;
    settings.key_encryption_key = None;
    settings.dev_mode = true;
    settings.common.data_dir = data_dir.path().to_owned();
    let app = customer_svc::build(settings)
        .await
        .expect("dev mode starts");
    let signed_in = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/auth/token", app.port()))
        .json(&json!({"email": ADMIN_EMAIL, "password": "admin-change-me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    assert!(
        data_dir
            .path()
            .join("customer-svc.key-encryption-key")
            .exists()
    );
    app.stop().await.unwrap();
}

/// Counts the fetches of the key source it wraps, keeping its interval.
struct Counting<S>(S, std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl<S: KeySource> KeySource for Counting<S> {
    fn min_refresh_interval(&self) -> std::time::Duration {
        self.0.min_refresh_interval()
    }

    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, AuthError>> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.fetch()
    }
}

/// Tokens naming key ids that do not exist do not make customer-svc read
/// its key table once each.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn forged_key_ids_do_not_make_the_issuer_reread_its_keys(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let db = sea_orm::Database::connect(&app.database.url).await.unwrap();
    let sealer = KeySealer::from_base64(crate::helpers::KEY_ENCRYPTION_KEY).unwrap();
    let keys = Arc::new(KeyStore::new(
        db,
        std::time::Duration::from_secs(900),
        sealer,
    ));
    let fetches = Arc::new(AtomicUsize::new(0));
    let verifier = JwtAuthenticator::with_source(Counting(LocalKeys(keys), fetches.clone()));
    let forger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    for _ in 0..50 {
        let token = TokenSigner::from_signing_key(Uuid::now_v7().simple().to_string(), &forger)
            .unwrap()
            .sign(
                Uuid::now_v7().into(),
                Role::Admin,
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        assert!(verifier.authenticate(&token).await.is_err());
    }
    let fetched = fetches.load(Ordering::SeqCst);
    assert!(
        fetched <= 2,
        "50 forged tokens fetched the key set {fetched} times"
    );
}

/// The binary, started the way a careless deployment would (no admin
/// password, no dev mode), stops at once and says what to set.
#[test]
fn the_binary_refuses_to_start_without_an_admin_password() {
    let data_dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_customer-svc"))
        .env_remove("OMS_ADMIN_PASSWORD")
        .env_remove("OMS_DEV_MODE")
        .env("OMS_KEY_ENCRYPTION_KEY", crate::helpers::KEY_ENCRYPTION_KEY)
        .env("OMS_DATA_DIR", data_dir.path())
        .env("OMS_CUSTOMER_HTTP_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OMS_ADMIN_PASSWORD is not set"), "{stderr}");
    assert!(
        std::fs::read_dir(data_dir.path()).unwrap().next().is_none(),
        "it stopped before creating anything"
    );
}
