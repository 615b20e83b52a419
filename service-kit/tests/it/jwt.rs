//! Token verification against a published key set: valid, expired, forged,
//! wrong algorithm, unknown issuer, and key rotation.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use events::CustomerId;
use service_kit::auth::jwt::{
    AUDIENCE, Claims, ISSUER, JwksAuthenticator, TokenSigner, jwks, jwks_router,
};
use service_kit::{Authenticator, Role};
use tokio::sync::RwLock;

use crate::helpers::{assert_problem, spawn_app_with};

fn signer(kid: &str, pem: &str) -> TokenSigner {
    TokenSigner::from_ed25519_pem(kid, pem).unwrap()
}

/// Serves a key set that the test can change; returns its URL.
async fn serve(keys: Arc<RwLock<jsonwebtoken::jwk::JwkSet>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, jwks_router(keys)).await.unwrap() });
    format!("http://{address}/.well-known/jwks.json")
}

#[tokio::test]
async fn tokens_are_checked_against_the_published_keys() {
    let current = signer("2026-11", testkit::keys::SIGNING_KEY_PEM);
    let keys = Arc::new(RwLock::new(jwks(std::slice::from_ref(&current))));
    let verifier = JwksAuthenticator::new(serve(keys).await);
    let subject = CustomerId::generate();

    let valid = current
        .sign(subject, Role::Customer, Duration::from_secs(60))
        .unwrap();
    let caller = verifier.authenticate(&valid).await.unwrap();
    assert_eq!((caller.id, caller.role), (subject, Role::Customer));

    let now = chrono::Utc::now().timestamp();
    let claims = |exp: i64, iss: &str, aud: &str| Claims {
        sub: subject,
        role: Role::Admin,
        iss: iss.into(),
        aud: aud.into(),
        iat: now - 3600,
        exp,
    };
    let expired = current
        .sign_claims(&claims(now - 60, ISSUER, AUDIENCE))
        .unwrap();
    assert!(verifier.authenticate(&expired).await.is_err(), "expired");
    let foreign_issuer = current
        .sign_claims(&claims(now + 60, "someone-else", AUDIENCE))
        .unwrap();
    assert!(
        verifier.authenticate(&foreign_issuer).await.is_err(),
        "wrong issuer"
    );
    let foreign_audience = current
        .sign_claims(&claims(now + 60, ISSUER, "other"))
        .unwrap();
    assert!(
        verifier.authenticate(&foreign_audience).await.is_err(),
        "wrong audience"
    );

    // Same key id, different key: the signature does not verify.
    let impostor = signer("2026-11", testkit::keys::OTHER_SIGNING_KEY_PEM);
    let forged = impostor
        .sign(subject, Role::Admin, Duration::from_secs(60))
        .unwrap();
    assert!(
        verifier.authenticate(&forged).await.is_err(),
        "wrong signature"
    );
    // A payload altered after signing (a customer making itself admin).
    let (header, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let elevated = {
        use base64::Engine;
        let json = serde_json::to_vec(&claims(now + 60, ISSUER, AUDIENCE)).unwrap();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    };
    let tampered = format!("{header}.{elevated}.{signature}");
    assert!(
        verifier.authenticate(&tampered).await.is_err(),
        "altered payload"
    );
    // A key nobody published.
    let stranger = signer("unknown", testkit::keys::OTHER_SIGNING_KEY_PEM);
    let unknown = stranger
        .sign(subject, Role::Admin, Duration::from_secs(60))
        .unwrap();
    assert!(
        verifier.authenticate(&unknown).await.is_err(),
        "unknown key id"
    );
    // A shared-secret token is never accepted.
    let hmac = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims(now + 60, ISSUER, AUDIENCE),
        &jsonwebtoken::EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert!(verifier.authenticate(&hmac).await.is_err(), "HS256");
    assert!(verifier.authenticate("not a token").await.is_err());
}

#[tokio::test]
async fn a_new_key_is_learned_on_first_sight_and_the_old_one_keeps_working() {
    let old = signer("old", testkit::keys::SIGNING_KEY_PEM);
    let keys = Arc::new(RwLock::new(jwks(std::slice::from_ref(&old))));
    let verifier = JwksAuthenticator::new(serve(keys.clone()).await);
    let subject = CustomerId::generate();
    let old_token = old
        .sign(subject, Role::Customer, Duration::from_secs(600))
        .unwrap();
    verifier.authenticate(&old_token).await.unwrap();

    // Rotation: the issuer publishes the new key beside the old one.
    let new = signer("new", testkit::keys::OTHER_SIGNING_KEY_PEM);
    *keys.write().await = jwks(&[old.clone(), new.clone()]);
    // The verifier refetches at most every five seconds (HttpKeySource).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let new_token = new
        .sign(subject, Role::Admin, Duration::from_secs(600))
        .unwrap();
    assert_eq!(
        verifier.authenticate(&new_token).await.unwrap().role,
        Role::Admin,
        "new key learned"
    );
    assert!(
        verifier.authenticate(&old_token).await.is_ok(),
        "old tokens stay valid until they expire"
    );
}

#[tokio::test]
async fn the_extractor_answers_401_for_bad_tokens_and_503_when_keys_are_unreachable() {
    let current = signer("k1", testkit::keys::SIGNING_KEY_PEM);
    let keys = Arc::new(RwLock::new(jwks(std::slice::from_ref(&current))));
    let url = serve(keys).await;
    let app = spawn_app_with(Arc::new(JwksAuthenticator::new(url))).await;
    let path = app.url(&format!("/admin/customers/{}", CustomerId::nil()));

    let admin = current
        .sign(CustomerId::generate(), Role::Admin, Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        app.client
            .get(&path)
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let customer = current
        .sign(
            CustomerId::generate(),
            Role::Customer,
            Duration::from_secs(60),
        )
        .unwrap();
    let forbidden = app
        .client
        .get(&path)
        .bearer_auth(&customer)
        .send()
        .await
        .unwrap();
    assert_problem(forbidden, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    let garbage = app
        .client
        .get(&path)
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_problem(garbage, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED").await;

    let down = spawn_app_with(Arc::new(JwksAuthenticator::new(
        "http://127.0.0.1:9/.well-known/jwks.json",
    )))
    .await;
    let unreachable = down
        .client
        .get(down.url(&format!("/admin/customers/{}", CustomerId::nil())))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_problem(
        unreachable,
        StatusCode::SERVICE_UNAVAILABLE,
        "AUTH_UNAVAILABLE",
    )
    .await;
}

/// A key source that is down is asked once per refresh interval, not once
/// per request: tokens naming keys the verifier does not know yet get 503
/// from the remembered failure, and the source is not flooded.
#[tokio::test]
async fn a_failed_key_fetch_is_remembered_instead_of_repeated_per_request() {
    use service_kit::auth::AuthError;
    use service_kit::auth::jwt::{JwtAuthenticator, KeySource};
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Down(Arc<AtomicUsize>);
    impl KeySource for Down {
        fn fetch(
            &self,
        ) -> futures::future::BoxFuture<'_, Result<jsonwebtoken::jwk::JwkSet, AuthError>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Err(AuthError::Unavailable("the issuer is down".into())) })
        }
    }

    let fetches = Arc::new(AtomicUsize::new(0));
    let verifier = JwtAuthenticator::with_source(Down(fetches.clone()));
    let token = signer("2026-11", testkit::keys::SIGNING_KEY_PEM)
        .sign(
            CustomerId::generate(),
            Role::Customer,
            Duration::from_secs(60),
        )
        .unwrap();
    for _ in 0..20 {
        let answer = verifier.authenticate(&token).await;
        assert!(
            matches!(answer, Err(AuthError::Unavailable(_))),
            "{answer:?}"
        );
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "one fetch, not twenty");
}

/// A key the issuer stops publishing (a retired key) is refused once the
/// loaded set is older than the refresh interval, however long its tokens
/// still run; the current key keeps working.
#[tokio::test]
async fn a_key_no_longer_published_is_refused_after_the_refresh_interval() {
    use service_kit::auth::AuthError;

    let old = signer("old", testkit::keys::SIGNING_KEY_PEM);
    let new = signer("new", testkit::keys::OTHER_SIGNING_KEY_PEM);
    let keys = Arc::new(RwLock::new(jwks(&[old.clone(), new.clone()])));
    let verifier =
        JwksAuthenticator::new(serve(keys.clone()).await).refresh_every(Duration::from_secs(1));
    let subject = CustomerId::generate();
    let old_token = old
        .sign(subject, Role::Admin, Duration::from_secs(600))
        .unwrap();
    let new_token = new
        .sign(subject, Role::Admin, Duration::from_secs(600))
        .unwrap();
    verifier.authenticate(&old_token).await.unwrap();

    *keys.write().await = jwks(std::slice::from_ref(&new));
    testkit::eventually("the retired key refused", || async {
        matches!(
            verifier.authenticate(&old_token).await,
            Err(AuthError::InvalidToken(_))
        )
    })
    .await;
    verifier.authenticate(&new_token).await.unwrap();
}
