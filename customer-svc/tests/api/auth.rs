//! Tokens: issuing, expiry, signature, roles, key rotation, the admin bootstrap.

use rstest::rstest;
use std::time::Duration;
use testkit::Backend;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service_kit::Role;
use service_kit::auth::jwt::{AUDIENCE, Claims, ISSUER, TokenSigner};

use testkit::assert_problem;

use crate::helpers::{ADMIN_EMAIL, spawn_app, spawn_app_with_ttl};

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn wrong_credentials_get_one_answer_with_no_hint(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.customer_with_limit(100).await;
    let wrong_password = app
        .request(
            Method::POST,
            "/auth/token",
            None,
            Some(&json!({"email": ADMIN_EMAIL, "password": "wrong password"})),
        )
        .await;
    let a = assert_problem(
        wrong_password,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
    let unknown_email = app
        .request(
            Method::POST,
            "/auth/token",
            None,
            Some(&json!({"email": "nobody@example.com", "password": "wrong password"})),
        )
        .await;
    let b = assert_problem(
        unknown_email,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    )
    .await;
    assert_eq!(a, b, "the two failures are indistinguishable");
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn tokens_carry_the_customer_and_role_and_are_verified_with_published_keys(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let response = app
        .request(
            Method::POST,
            "/auth/token",
            None,
            Some(&json!({"email": ADMIN_EMAIL, "password": crate::helpers::ADMIN_PASSWORD})),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 900);
    let header = jsonwebtoken::decode_header(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);

    let jwks: Value = app
        .request(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert_eq!(keys[0]["kid"].as_str(), header.kid.as_deref());
    assert!(
        keys[0].get("d").is_none(),
        "the private key is never published"
    );

    // The admin lists customers; a token signed by a stranger's key, even
    // under the right key id, is refused.
    let list = app
        .request(
            Method::GET,
            "/customers",
            Some(body["access_token"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(list.status(), StatusCode::OK);
    let forger =
        TokenSigner::from_ed25519_pem(header.kid.unwrap(), testkit::keys::SIGNING_KEY_PEM).unwrap();
    let forged = forger
        .sign(
            uuid::Uuid::now_v7().into(),
            Role::Admin,
            Duration::from_secs(60),
        )
        .unwrap();
    let refused = app
        .request(Method::GET, "/customers", Some(&forged), None)
        .await;
    assert_problem(refused, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
}

/// The service's own signing key, read from its database.
async fn service_signer(app: &crate::helpers::TestApp) -> TokenSigner {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let db = Database::connect(&app.database.url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT kid, private_key FROM signing_keys WHERE superseded_at IS NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    let kid: String = row.try_get("", "kid").unwrap();
    let sealed: String = row.try_get("", "private_key").unwrap();
    assert!(!sealed.contains("PRIVATE KEY"), "the key is stored sealed");
    let sealer =
        customer_svc::app::tokens::KeySealer::from_base64(crate::helpers::KEY_ENCRYPTION_KEY)
            .unwrap();
    let pem = sealer.open(&kid, &sealed).unwrap();
    TokenSigner::from_ed25519_pem(kid, &pem).unwrap()
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn expired_tokens_and_tokens_for_someone_else_are_refused(#[case] backend: Backend) {
    let app = spawn_app_with_ttl(backend, 60).await;
    let (customer, _) = app.customer_with_limit(100).await;
    let (other, _) = app.customer_with_limit(100).await;
    let signer = service_signer(&app).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64| Claims {
        sub: customer.into(),
        role: Role::Customer,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        iat: now - 600,
        exp,
    };
    let path = format!("/customers/{customer}");
    let valid = signer.sign_claims(&claims(now + 60)).unwrap();
    assert_eq!(
        app.request(Method::GET, &path, Some(&valid), None)
            .await
            .status(),
        StatusCode::OK
    );
    // Expired a minute ago: beyond the verifier's leeway for clock skew.
    let expired = signer.sign_claims(&claims(now - 60)).unwrap();
    let refused = app.request(Method::GET, &path, Some(&expired), None).await;
    assert_problem(refused, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;
    let someone_else = app
        .request(
            Method::GET,
            &format!("/customers/{other}"),
            Some(&valid),
            None,
        )
        .await;
    assert_problem(someone_else, StatusCode::FORBIDDEN, "FORBIDDEN").await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn rotation_publishes_the_new_key_and_keeps_old_tokens_valid(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (customer, old_token) = app.customer_with_limit(100).await;
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();

    let customer_rotates = app
        .request(Method::POST, "/auth/keys/rotate", Some(&old_token), None)
        .await;
    assert_problem(customer_rotates, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let rotated: Value = app
        .request(
            Method::POST,
            "/auth/keys/rotate",
            Some(&app.admin_token),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    let jwks: Value = app
        .request(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    let path = format!("/customers/{customer}");
    assert_eq!(
        app.request(Method::GET, &path, Some(&old_token), None)
            .await
            .status(),
        StatusCode::OK,
        "old tokens stay valid"
    );
    let admin_email = ADMIN_EMAIL;
    let new_token = app.token(admin_email, crate::helpers::ADMIN_PASSWORD).await;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .unwrap(),
        new_kid,
        "new tokens use the new key"
    );
    // Verifiers learn the new key on first sight of its id.
    assert_eq!(
        app.request(Method::GET, &path, Some(&new_token), None)
            .await
            .status(),
        StatusCode::OK
    );
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn the_admin_account_is_bootstrapped_from_configuration(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let page: Value = app
        .request(Method::GET, "/customers", Some(&app.admin_token), None)
        .await
        .json()
        .await
        .unwrap();
    let admin = &page["items"][0];
    assert_eq!(admin["email"], ADMIN_EMAIL);
    assert_eq!(admin["role"], "admin");
    // A restart with the same configuration keeps one admin account.
    let app = app.restart().await;
    let page: Value = app
        .request(Method::GET, "/customers", Some(&app.admin_token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

/// A suspended customer cannot sign in (even with the right password), a
/// token answer may not be cached, and no answer may be sniffed.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn suspended_customers_cannot_sign_in_and_tokens_are_never_cached(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (customer, _) = app.customer_with_limit(100).await;
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
    let email = record["email"].as_str().unwrap().to_owned();
    let credentials = json!({"email": email, "password": "a good password"});
    let sign_in = || app.request(Method::POST, "/auth/token", None, Some(&credentials));
    let signed_in = sign_in().await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let header = |name: &str| {
        signed_in
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(header("x-content-type-options").as_deref(), Some("nosniff"));

    app.set_status(customer, "SUSPENDED").await;
    assert_problem(sign_in().await, StatusCode::FORBIDDEN, "ACCOUNT_SUSPENDED").await;
    app.set_status(customer, "ACTIVE").await;
    assert_eq!(sign_in().await.status(), StatusCode::OK);
}

/// `--help` names the secret variables but never prints their values.
#[test]
fn help_never_prints_a_secret_from_the_environment() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_customer-svc"))
        .arg("--help")
        .env("OMS_ADMIN_PASSWORD", "pa55-from-the-environment")
        .env(
            "OMS_CUSTOMER_DATABASE_URL",
            "postgres://svc:db-pa55@db.internal/customer",
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("OMS_ADMIN_PASSWORD"), "{text}");
    assert!(!text.contains("pa55"), "{text}");
}

/// Signing keys are stored sealed; a key stored in plain PEM by an earlier
/// version is sealed at the next start (and its tokens stay valid); keys
/// superseded longer ago than any token lives are deleted.
#[rstest]
#[case::postgres(Backend::Postgres)]
#[case::sqlite(Backend::Sqlite)]
#[tokio::test]
async fn signing_keys_are_sealed_at_rest_and_pruned_when_no_token_names_them(
    #[case] backend: Backend,
) {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let app = spawn_app(backend).await;
    let (customer, token) = app.customer_with_limit(100).await;
    let signer = service_signer(&app).await;
    let db = Database::connect(&app.database.url).await.unwrap();
    let backend = db.get_database_backend();
    let sealer =
        customer_svc::app::tokens::KeySealer::from_base64(crate::helpers::KEY_ENCRYPTION_KEY)
            .unwrap();

    // As an earlier version stored it: the current key in plain PEM.
    let stored: String = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT private_key FROM signing_keys WHERE kid = $1",
            [signer.kid().into()],
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "private_key")
        .unwrap();
    let pem = sealer.open(signer.kid(), &stored).unwrap();
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE signing_keys SET private_key = $1 WHERE kid = $2",
        [pem.clone().into(), signer.kid().into()],
    ))
    .await
    .unwrap();
    // A key retired two days ago: no token it signed can still be valid.
    let retired = "retired0000000000000000000000000";
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "INSERT INTO signing_keys (kid, private_key, created_at, superseded_at) VALUES ($1, $2, $3, $4)",
        [
            retired.into(),
            sealer.seal(retired, &pem).unwrap().into(),
            (chrono::Utc::now() - chrono::Duration::days(3)).into(),
            (chrono::Utc::now() - chrono::Duration::days(2)).into(),
        ],
    ))
    .await
    .unwrap();

    let app = app.restart().await;
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT kid, private_key FROM signing_keys",
        ))
        .await
        .unwrap();
    let rows: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r.try_get("", "kid").unwrap(),
                r.try_get("", "private_key").unwrap(),
            )
        })
        .collect();
    assert!(
        rows.iter().all(|(_, key)| !key.contains("PRIVATE KEY")),
        "every key is sealed: {rows:?}"
    );
    testkit::eventually("the retired key is deleted", || async {
        db.query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT kid FROM signing_keys WHERE kid = $1",
            [retired.into()],
        ))
        .await
        .unwrap()
        .is_none()
    })
    .await;
    assert_eq!(
        app.request(
            Method::GET,
            &format!("/customers/{customer}"),
            Some(&token),
            None
        )
        .await
        .status(),
        StatusCode::OK,
        "tokens of the re-sealed key stay valid"
    );
    drop(app);
}
