//! JSON Web Tokens: signing (customer-svc) and verification against a
//! published JWKS (every other service).
//!
//! - Tokens are signed with Ed25519 (`alg: EdDSA`), carry a `kid` naming the
//!   key, and the claims in [`Claims`]: `sub` (customer id), `role`, `iss`
//!   ([`ISSUER`]), `aud` ([`AUDIENCE`]), `iat`, `exp`.
//! - [`JwksAuthenticator`] fetches the key set from a URL, caches it, and
//!   fetches it again when a token names a key id it does not know (at most
//!   once per [`KeySource::min_refresh_interval`], so forged key ids
//!   cannot flood the issuer); a failed fetch is remembered for as long,
//!   and answered 503 without asking again. Keys are never shared secrets. The issuer
//!   itself verifies with the same code over its own [`KeySource`].
//! - Each published key is decoded once into an Ed25519 verifying key and
//!   kept; a token costs one signature check (RFC 8032's strict form) and
//!   the claim checks, not a key decompression.
//! - A token once verified is remembered until it expires (at most
//!   [`MAX_VERIFIED_TOKENS`] of them), keyed by the whole token, so a
//!   client that sends the same token with every request pays for its
//!   signature once: under load the signature check was 7 % of the
//!   services' CPU. A token that differs in any byte is verified afresh,
//!   and every use of a remembered token still asks for its key, so a
//!   retired key ends its tokens exactly as before.
//! - Rotation: the issuer publishes the new key beside the old one and signs
//!   with the new one; tokens signed by the old key stay valid until they
//!   expire, and verifiers learn the new key on first sight of its `kid`.
//! - Retirement: the key set is loaded again once it is older than the
//!   refresh interval ([`JwtAuthenticator::refresh_every`],
//!   `OMS_JWKS_REFRESH_SECS`, 60 s by default) before a token is checked
//!   against it, and a key the issuer no longer publishes is forgotten. So
//!   a retired key is refused at most one refresh interval after the
//!   issuer stops publishing it. While the issuer cannot be reached the
//!   last key set stays in use (the failure is logged and the source asked
//!   again after [`KeySource::min_refresh_interval`]): an issuer restart
//!   does not lock every caller out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use ed25519_dalek::{Signature, VerifyingKey};
use events::CustomerId;
use futures::future::BoxFuture;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};

use super::{AuthError, Authenticator, Caller, Role};

/// The `iss` of every token.
pub const ISSUER: &str = "customer-svc";
/// The `aud` of every token.
pub const AUDIENCE: &str = "oms";
/// Where the issuer publishes its keys.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The customer (or admin account) id.
    pub sub: CustomerId,
    /// `customer` or `admin`.
    pub role: Role,
    /// Always [`ISSUER`].
    pub iss: String,
    /// Always [`AUDIENCE`].
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// A signing key with its id.
#[derive(Clone)]
pub struct TokenSigner {
    kid: String,
    key: EncodingKey,
    public: Jwk,
}

impl TokenSigner {
    /// A signer from an Ed25519 private key in PKCS#8 PEM.
    ///
    /// # Errors
    /// When the PEM is not an Ed25519 private key.
    pub fn from_ed25519_pem(kid: impl Into<String>, pem: &str) -> anyhow::Result<Self> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        Self::from_signing_key(kid, &ed25519_dalek::SigningKey::from_pkcs8_pem(pem)?)
    }

    /// A signer from an Ed25519 key.
    ///
    /// # Errors
    /// When the key cannot be encoded for signing.
    pub fn from_signing_key(
        kid: impl Into<String>,
        signing_key: &ed25519_dalek::SigningKey,
    ) -> anyhow::Result<Self> {
        use base64::Engine;
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        use jsonwebtoken::jwk::{
            AlgorithmParameters, CommonParameters, EllipticCurve, KeyAlgorithm,
            OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
        };
        let kid = kid.into();
        let key = EncodingKey::from_ed_der(signing_key.to_pkcs8_der()?.as_bytes());
        let public = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                key_id: Some(kid.clone()),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(signing_key.verifying_key().as_bytes()),
            }),
        };
        Ok(Self { kid, key, public })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key, as published.
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// A token for `subject` with `role`, valid for `ttl`.
    ///
    /// # Errors
    /// When signing fails.
    pub fn sign(&self, subject: CustomerId, role: Role, ttl: Duration) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: subject,
            role,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
        };
        self.sign_claims(&claims)
    }

    /// A token carrying exactly `claims` (tests use it for expired tokens).
    ///
    /// # Errors
    /// When signing fails.
    pub fn sign_claims(&self, claims: &Claims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.key)?)
    }
}

/// The key set of `signers`, as served at [`JWKS_PATH`].
pub fn jwks(signers: &[TokenSigner]) -> JwkSet {
    JwkSet {
        keys: signers.iter().map(|s| s.public.clone()).collect(),
    }
}

/// A router serving `keys` at [`JWKS_PATH`].
pub fn jwks_router(keys: Arc<RwLock<JwkSet>>) -> Router {
    Router::new().route(
        JWKS_PATH,
        get(move || {
            let keys = keys.clone();
            async move { axum::Json(keys.read().await.clone()) }
        }),
    )
}

struct KeyCache {
    keys: HashMap<String, VerifyingKey>,
    fetched_at: Option<Instant>,
    /// The last fetch that failed, and why: within the refresh interval
    /// the verifier answers with it instead of asking the source again.
    failed: Option<(Instant, String)>,
}

/// Where a verifier gets the public keys from.
pub trait KeySource: Send + Sync + 'static {
    /// The least time between two fetches, so that tokens naming unknown
    /// key ids cannot make the verifier hammer the source.
    fn min_refresh_interval(&self) -> Duration {
        Duration::from_secs(5)
    }

    /// The current key set.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when it cannot be had now.
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, AuthError>>;
}

/// Keys published at a URL (customer-svc's [`JWKS_PATH`]).
pub struct HttpKeySource {
    url: String,
    http: reqwest::Client,
}

impl HttpKeySource {
    /// Keys at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("a default HTTP client builds"),
        }
    }
}

impl KeySource for HttpKeySource {
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, AuthError>> {
        Box::pin(async move {
            let unavailable = |e: reqwest::Error| {
                AuthError::Unavailable(format!("cannot fetch keys from {}: {e}", self.url))
            };
            self.http
                .get(&self.url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(unavailable)?
                .json()
                .await
                .map_err(unavailable)
        })
    }
}

/// Verifies tokens with the keys of a [`KeySource`], cached by key id and
/// reloaded once older than [`refresh_every`](Self::refresh_every).
pub struct JwtAuthenticator<S> {
    source: S,
    cache: RwLock<KeyCache>,
    verified: std::sync::Mutex<VerifiedTokens>,
    refreshing: Mutex<()>,
    refresh_every: Duration,
}

/// How long a loaded key set is used before it is loaded again, unless
/// [`JwtAuthenticator::refresh_every`] says otherwise (the default of
/// `OMS_JWKS_REFRESH_SECS`).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// Seconds a token's `exp` may lie in the past, for clock skew between
/// the issuer and a verifier.
const EXPIRY_LEEWAY_SECS: i64 = 5;

/// The verifier every service but the issuer uses.
pub type JwksAuthenticator = JwtAuthenticator<HttpKeySource>;

impl JwtAuthenticator<HttpKeySource> {
    /// A verifier for the key set at `url`; keys are fetched on first use.
    pub fn new(url: impl Into<String>) -> Self {
        Self::with_source(HttpKeySource::new(url))
    }
}

impl<S: KeySource> JwtAuthenticator<S> {
    /// A verifier for the keys of `source`.
    pub fn with_source(source: S) -> Self {
        Self {
            source,
            cache: RwLock::new(KeyCache {
                keys: HashMap::new(),
                fetched_at: None,
                failed: None,
            }),
            verified: std::sync::Mutex::new(VerifiedTokens::default()),
            refreshing: Mutex::new(()),
            refresh_every: DEFAULT_REFRESH_INTERVAL,
        }
    }

    /// The same verifier, loading the key set again once it is older than
    /// `interval` (at least a second): a key the issuer stopped publishing
    /// is refused at most that long after.
    #[must_use]
    pub fn refresh_every(mut self, interval: Duration) -> Self {
        self.refresh_every = interval.max(Duration::from_secs(1));
        self
    }

    /// The refresh interval.
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_every
    }

    /// Whether the loaded key set is older than the refresh interval.
    fn is_stale(&self, cache: &KeyCache) -> bool {
        cache
            .fetched_at
            .is_none_or(|t| t.elapsed() >= self.refresh_every)
    }

    async fn key(&self, kid: &str) -> Result<VerifyingKey, AuthError> {
        let (known, stale) = {
            let cache = self.cache.read().await;
            (cache.keys.get(kid).copied(), self.is_stale(&cache))
        };
        match known {
            Some(key) if !stale => return Ok(key),
            Some(key) => return self.revalidate(kid, key).await,
            None => {}
        }
        let _refreshing = self.refreshing.lock().await;
        // Someone else may have refreshed while we waited.
        {
            let cache = self.cache.read().await;
            if let Some(key) = cache.keys.get(kid) {
                return Ok(*key);
            }
            let recent = |t: &Instant| t.elapsed() < self.source.min_refresh_interval();
            if let Some((_, why)) = cache.failed.as_ref().filter(|(t, _)| recent(t)) {
                return Err(AuthError::Unavailable(why.clone()));
            }
            if cache.fetched_at.as_ref().is_some_and(recent) {
                return Err(AuthError::InvalidToken(format!("unknown key id {kid:?}")));
            }
        }
        self.reload().await?;
        self.cache
            .read()
            .await
            .keys
            .get(kid)
            .copied()
            .ok_or_else(|| AuthError::InvalidToken(format!("unknown key id {kid:?}")))
    }

    /// `kid` from a key set loaded again because it is stale: refused when
    /// the issuer no longer publishes it; `cached` when the issuer cannot
    /// be asked now.
    async fn revalidate(&self, kid: &str, cached: VerifyingKey) -> Result<VerifyingKey, AuthError> {
        let unknown = || AuthError::InvalidToken(format!("unknown key id {kid:?}"));
        let _refreshing = self.refreshing.lock().await;
        {
            // Someone else may have reloaded while we waited, or failed to.
            let cache = self.cache.read().await;
            if !self.is_stale(&cache) {
                return cache.keys.get(kid).copied().ok_or_else(unknown);
            }
            let failed_lately = cache
                .failed
                .as_ref()
                .is_some_and(|(t, _)| t.elapsed() < self.source.min_refresh_interval());
            if failed_lately {
                return Ok(cached);
            }
        }
        match self.reload().await {
            Ok(()) => self
                .cache
                .read()
                .await
                .keys
                .get(kid)
                .copied()
                .ok_or_else(unknown),
            Err(error) => {
                tracing::warn!(error = %error, "cannot reload the key set; the last one stays in use");
                Ok(cached)
            }
        }
    }

    /// Fetches the key set now, whatever the refresh interval: for the
    /// issuer right after it rotated its own keys.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when the source cannot be read.
    pub async fn refresh(&self) -> Result<(), AuthError> {
        let _refreshing = self.refreshing.lock().await;
        self.reload().await
    }

    /// Fetches and decodes the key set; the caller holds `refreshing`.
    async fn reload(&self) -> Result<(), AuthError> {
        let set = match self.source.fetch().await {
            Ok(set) => set,
            Err(error) => {
                let why = match &error {
                    AuthError::Unavailable(why) => why.clone(),
                    other => other.to_string(),
                };
                self.cache.write().await.failed = Some((Instant::now(), why));
                return Err(error);
            }
        };
        let keys = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                match verifying_key(jwk) {
                    Ok(key) => Some((kid, key)),
                    Err(error) => {
                        tracing::warn!(kid, error = %error, "ignoring unusable key in the key set");
                        None
                    }
                }
            })
            .collect();
        let mut cache = self.cache.write().await;
        cache.keys = keys;
        cache.fetched_at = Some(Instant::now());
        cache.failed = None;
        Ok(())
    }

    /// The caller of `token` if it was verified before and has not expired,
    /// with the key id it was verified with.
    fn recall(&self, token: &str) -> Option<(Caller, String)> {
        let now = chrono::Utc::now().timestamp();
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified
            .entries
            .get(token)
            .filter(|entry| entry.live_at(now))
            .map(|entry| (entry.caller.clone(), entry.kid.clone()))
    }

    fn remember(&self, token: &str, caller: &Caller, kid: String, expires_at: i64) {
        let now = chrono::Utc::now().timestamp();
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.entries.len() >= MAX_VERIFIED_TOKENS {
            verified.entries.retain(|_, entry| entry.live_at(now));
            if verified.entries.len() >= MAX_VERIFIED_TOKENS {
                // All are live: forget them all rather than keep a second
                // bookkeeping of their age; each is verified once more.
                verified.entries.clear();
            }
        }
        verified.entries.insert(
            token.to_owned(),
            VerifiedToken {
                caller: caller.clone(),
                kid,
                expires_at,
            },
        );
    }
}

/// The most verified tokens a verifier remembers: a few MiB, as a token
/// is some 300 bytes.
pub const MAX_VERIFIED_TOKENS: usize = 10_000;

/// Tokens verified lately, by the whole token.
#[derive(Default)]
struct VerifiedTokens {
    entries: HashMap<String, VerifiedToken>,
}

struct VerifiedToken {
    caller: Caller,
    kid: String,
    /// The token's `exp`.
    expires_at: i64,
}

impl VerifiedToken {
    /// Whether the token is still valid at `now` (Unix seconds), with the
    /// same leeway as [`verified_claims`].
    fn live_at(&self, now: i64) -> bool {
        now <= self.expires_at + EXPIRY_LEEWAY_SECS
    }
}

impl<S: KeySource> Authenticator for JwtAuthenticator<S> {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Caller, AuthError>> {
        Box::pin(async move {
            if let Some((caller, kid)) = self.recall(token) {
                // The key must still be published: a retired key ends its
                // tokens, remembered or not.
                self.key(&kid).await?;
                return Ok(caller);
            }
            let header = jsonwebtoken::decode_header(token)
                .map_err(|e| AuthError::InvalidToken(e.to_string()))?;
            if header.alg != Algorithm::EdDSA {
                return Err(AuthError::InvalidToken(format!(
                    "algorithm {:?} is not accepted",
                    header.alg
                )));
            }
            let kid = header
                .kid
                .ok_or_else(|| AuthError::InvalidToken("the token names no key id".into()))?;
            let key = self.key(&kid).await?;
            let claims = verified_claims(token, &key)?;
            let caller = Caller {
                id: claims.sub,
                role: claims.role,
            };
            self.remember(token, &caller, kid, claims.exp);
            Ok(caller)
        })
    }
}

/// The Ed25519 key a JWK publishes.
fn verifying_key(jwk: &Jwk) -> Result<VerifyingKey, String> {
    use base64::Engine;
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
    let AlgorithmParameters::OctetKeyPair(params) = &jwk.algorithm else {
        return Err("not an octet key pair".into());
    };
    if params.curve != EllipticCurve::Ed25519 {
        return Err(format!("curve {:?} is not Ed25519", params.curve));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&params.x)
        .map_err(|e| format!("x is not base64url: {e}"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| "x is not 32 bytes".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| e.to_string())
}

/// The claims of `token` once its signature, issuer, audience and expiry
/// have been checked.
fn verified_claims(token: &str, key: &VerifyingKey) -> Result<Claims, AuthError> {
    use base64::Engine;
    let invalid = |reason: &str| AuthError::InvalidToken(reason.to_string());
    let (signed, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| invalid("the token is not header.payload.signature"))?;
    let (_, payload) = signed
        .split_once('.')
        .ok_or_else(|| invalid("the token is not header.payload.signature"))?;
    let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let signature = base64
        .decode(signature)
        .ok()
        .and_then(|bytes| Signature::from_slice(&bytes).ok())
        .ok_or_else(|| invalid("the signature is not an Ed25519 signature"))?;
    key.verify_strict(signed.as_bytes(), &signature)
        .map_err(|_| invalid("the signature does not verify"))?;
    let claims: Claims = base64
        .decode(payload)
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
        .ok_or_else(|| invalid("the claims are not the expected JSON"))?;
    if claims.iss != ISSUER {
        return Err(invalid("the token was issued by someone else"));
    }
    if claims.aud != AUDIENCE {
        return Err(invalid("the token is meant for another audience"));
    }
    if claims.exp + EXPIRY_LEEWAY_SECS < chrono::Utc::now().timestamp() {
        return Err(invalid("the token has expired"));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A source with no keys: these tests never reach it.
    struct NoKeys;

    impl KeySource for NoKeys {
        fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, AuthError>> {
            Box::pin(async { Ok(JwkSet { keys: Vec::new() }) })
        }
    }

    fn customer() -> Caller {
        Caller {
            id: CustomerId::generate(),
            role: Role::Customer,
        }
    }

    #[test]
    fn a_remembered_token_is_recalled_whole_and_only_until_it_expires() {
        let verifier = JwtAuthenticator::with_source(NoKeys);
        let now = chrono::Utc::now().timestamp();
        let caller = customer();
        verifier.remember("a.b.c", &caller, "k1".into(), now + 60);
        verifier.remember(
            "d.e.f",
            &customer(),
            "k1".into(),
            now - EXPIRY_LEEWAY_SECS - 1,
        );
        assert_eq!(verifier.recall("a.b.c"), Some((caller, "k1".to_owned())));
        assert_eq!(verifier.recall("a.b.C"), None, "another token");
        assert_eq!(verifier.recall("a.b"), None, "a part of it");
        assert_eq!(verifier.recall("d.e.f"), None, "expired");
    }

    #[test]
    fn at_most_max_verified_tokens_are_remembered() {
        let verifier = JwtAuthenticator::with_source(NoKeys);
        let expires_at = chrono::Utc::now().timestamp() + 60;
        for i in 0..=MAX_VERIFIED_TOKENS {
            verifier.remember(&format!("token-{i}"), &customer(), "k1".into(), expires_at);
        }
        let remembered = verifier.verified.lock().unwrap().entries.len();
        assert!(remembered <= MAX_VERIFIED_TOKENS, "{remembered}");
        assert!(
            verifier
                .recall(&format!("token-{MAX_VERIFIED_TOKENS}"))
                .is_some(),
            "the newest is remembered"
        );
    }
}
