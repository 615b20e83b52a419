//! Passwords and access tokens.
//!
//! - Passwords are hashed with argon2id (a random salt each) on a blocking
//!   thread; a login for an unknown email still runs one verification, so
//!   timing does not tell which part was wrong.
//! - Tokens are signed with the newest Ed25519 key in `signing_keys`,
//!   created at first start. [`KeyStore::rotate`] adds a new key for
//!   signing; superseded keys stay published until every token they signed
//!   has expired, so rotation never logs anyone out. Keys live in the
//!   database so that every instance signs and publishes the same set.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use anyhow::Context;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{SubsecRound, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use events::plumbing::begin_write;
use futures::future::BoxFuture;
use jsonwebtoken::jwk::JwkSet;
use sea_orm::DatabaseConnection;
use service_kit::Role;
use service_kit::auth::AuthError;
use service_kit::auth::jwt::{KeySource, TokenSigner, jwks};
use uuid::Uuid;

use crate::domain::Password;
use crate::persistence::entities::signing_key;
use crate::persistence::keys;

/// Hashes a password (argon2id, random salt) off the async threads.
///
/// # Errors
/// When no randomness is available or hashing fails.
pub async fn hash_password(password: &Password) -> anyhow::Result<String> {
    let password = password.expose().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
        Ok(hash.to_string())
    })
    .await?
}

/// A hash of a password nobody has, verified against when the email is
/// unknown so that both failures take as long.
static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::encode_b64(b"oms-decoy-salt!!").expect("a valid salt");
    Argon2::default()
        .hash_password(b"decoy password", &salt)
        .expect("hashing works")
        .to_string()
});

/// Whether `password` matches `hash` (or, with no hash, spends the same
/// time and returns false).
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let password = password.to_owned();
    let known = hash.is_some();
    let hash = hash.map_or_else(|| DECOY_HASH.clone(), str::to_owned);
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
        && known
}

/// The signing keys, in the database.
#[derive(Clone)]
pub struct KeyStore {
    db: DatabaseConnection,
    token_ttl: Duration,
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl KeyStore {
    /// Keys in `db`; tokens live for `token_ttl`.
    pub fn new(db: DatabaseConnection, token_ttl: Duration) -> Self {
        Self { db, token_ttl }
    }

    /// Creates the first key if there is none.
    ///
    /// # Errors
    /// Database or key generation errors.
    pub async fn ensure_key(&self) -> anyhow::Result<()> {
        if keys::all(&self.db)
            .await?
            .iter()
            .all(|k| k.superseded_at.is_some())
        {
            self.rotate().await?;
        }
        Ok(())
    }

    /// Adds a new key and signs with it from now on; returns its id.
    ///
    /// # Errors
    /// Database or key generation errors.
    pub async fn rotate(&self) -> anyhow::Result<String> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let pem = key
            .to_pkcs8_pem(Default::default())
            .context("encoding the new key")?;
        let kid = Uuid::now_v7().simple().to_string();
        let txn = begin_write(&self.db).await?;
        keys::insert_current(
            &txn,
            signing_key::Model {
                kid: kid.clone(),
                private_key_pem: pem.to_string(),
                created_at: Utc::now().trunc_subsecs(6),
                superseded_at: None,
            },
        )
        .await?;
        txn.commit().await?;
        tracing::info!(kid, "new token signing key");
        Ok(kid)
    }

    /// Signs a token for `subject` with the current key.
    ///
    /// # Errors
    /// When there is no key or signing fails.
    pub async fn issue(&self, subject: Uuid, role: Role) -> anyhow::Result<IssuedToken> {
        let current = keys::all(&self.db)
            .await?
            .into_iter()
            .rev()
            .find(|k| k.superseded_at.is_none())
            .context("there is no current signing key")?;
        let signer = TokenSigner::from_ed25519_pem(current.kid, &current.private_key_pem)?;
        Ok(IssuedToken {
            token: signer.sign(subject, role, self.token_ttl)?,
            expires_in: self.token_ttl.as_secs(),
        })
    }

    /// The public keys whose tokens may still be valid: the current ones and
    /// those superseded less than a token lifetime (plus a minute) ago.
    ///
    /// # Errors
    /// Database or key decoding errors.
    pub async fn published(&self) -> anyhow::Result<JwkSet> {
        let horizon = Utc::now()
            - chrono::Duration::from_std(self.token_ttl + Duration::from_secs(60))
                .unwrap_or(chrono::Duration::hours(1));
        let signers = keys::all(&self.db)
            .await?
            .into_iter()
            .filter(|k| k.superseded_at.is_none_or(|at| at > horizon))
            .map(|k| TokenSigner::from_ed25519_pem(k.kid, &k.private_key_pem))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(jwks(&signers))
    }
}

/// customer-svc verifies its own tokens with its own key set, without a
/// round trip over HTTP.
pub struct LocalKeys(pub Arc<KeyStore>);

impl KeySource for LocalKeys {
    /// Reading the local table is cheap: a new key is trusted at once.
    fn min_refresh_interval(&self) -> Duration {
        Duration::ZERO
    }

    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, AuthError>> {
        Box::pin(async move {
            self.0
                .published()
                .await
                .map_err(|e| AuthError::Unavailable(format!("{e:#}")))
        })
    }
}
