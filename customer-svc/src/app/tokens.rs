//! Access tokens and the keys that sign them.
//!
//! - Tokens are signed with the newest Ed25519 key in `signing_keys`,
//!   created at first start. [`KeyStore::rotate`] adds a new key for
//!   signing; superseded keys stay published until every token they signed
//!   has expired (a token lifetime and a minute), so rotation never logs
//!   anyone out, and are deleted after that ([`KeyStore::prune`]). Every
//!   verifier, this service's own included, reloads the published set
//!   every `OMS_JWKS_REFRESH_SECS` and forgets a key that is gone, so a
//!   retired key is refused everywhere by the time the rotation answer
//!   names ([`Rotation::retired_keys_refused_by`]). Rotations and the
//!   publication horizon read the injectable clock. Keys live in the
//!   database so that every instance signs and publishes the same set.
//! - Private keys are stored sealed ([`KeySealer`]: ChaCha20-Poly1305 under
//!   `OMS_KEY_ENCRYPTION_KEY`, the key id as associated data, so a sealed
//!   key cannot be moved to another row). A database dump alone cannot
//!   sign tokens. Keys stored in plain PEM by an older version are sealed
//!   at start-up.
//! - customer-svc verifies its own tokens over [`LocalKeys`], which reads
//!   the key table at most once a second however many unknown key ids
//!   arrive, and again once the loaded set is older than the refresh
//!   interval; a rotation on this instance primes the verifier at once.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use chrono::{DateTime, SubsecRound, Utc};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use event_runtime::begin_write;
use events::CustomerId;
use futures::future::BoxFuture;
use jsonwebtoken::jwk::JwkSet;
use sea_orm::DatabaseConnection;
use service_kit::auth::AuthError;
use service_kit::auth::jwt::{KeySource, TokenSigner, jwks};
use service_kit::{Clock, Role};
use uuid::Uuid;

use crate::domain::SigningKey;
use crate::persistence::keys;

/// Seals and opens private keys with the key-encryption key.
#[derive(Clone)]
pub struct KeySealer(ChaCha20Poly1305);

/// How a sealed key starts: the format's version.
const SEALED_PREFIX: &str = "sealed:v1:";

impl KeySealer {
    /// The sealer of a base64 key of 32 bytes (`OMS_KEY_ENCRYPTION_KEY`).
    ///
    /// # Errors
    /// When it is not base64 of exactly 32 bytes.
    pub fn from_base64(secret: &str) -> anyhow::Result<Self> {
        let bytes = BASE64
            .decode(secret.trim())
            .context("OMS_KEY_ENCRYPTION_KEY is not base64")?;
        anyhow::ensure!(
            bytes.len() == 32,
            "OMS_KEY_ENCRYPTION_KEY must be 32 bytes (base64 of `openssl rand 32`), not {}",
            bytes.len()
        );
        Ok(Self(ChaCha20Poly1305::new_from_slice(&bytes).map_err(
            |e| anyhow::anyhow!("OMS_KEY_ENCRYPTION_KEY: {e}"),
        )?))
    }

    /// A fresh random key-encryption key, base64.
    ///
    /// # Errors
    /// When no randomness is available.
    pub fn generate_secret() -> anyhow::Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        Ok(BASE64.encode(bytes))
    }

    /// `pem` sealed for the row of `kid`.
    ///
    /// # Errors
    /// When no randomness is available.
    pub fn seal(&self, kid: &str, pem: &str) -> anyhow::Result<String> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let sealed = self
            .0
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: pem.as_bytes(),
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing the key {kid} failed"))?;
        Ok(format!(
            "{SEALED_PREFIX}{}.{}",
            BASE64.encode(nonce),
            BASE64.encode(sealed)
        ))
    }

    /// The PEM of a stored key: opened when sealed, as it is when it is a
    /// PEM from before sealing.
    ///
    /// # Errors
    /// When it was sealed with another key, for another row, or is damaged.
    pub fn open(&self, kid: &str, stored: &str) -> anyhow::Result<String> {
        let Some(sealed) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (nonce, ciphertext) = sealed
            .split_once('.')
            .with_context(|| format!("the stored key {kid} is damaged"))?;
        let nonce: [u8; 12] = BASE64
            .decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .with_context(|| format!("the stored key {kid} has a damaged nonce"))?;
        let ciphertext = BASE64.decode(ciphertext).context("a damaged key")?;
        let pem = self
            .0
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &ciphertext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!(
                    "the signing key {kid} does not open with OMS_KEY_ENCRYPTION_KEY \
                     (another key sealed it, or it was altered)"
                )
            })?;
        String::from_utf8(pem).context("an opened key is not text")
    }

    fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }
}

/// The signing keys, in the database.
#[derive(Clone)]
pub struct KeyStore {
    db: DatabaseConnection,
    token_ttl: Duration,
    sealer: KeySealer,
    clock: Clock,
    verifier_refresh: Duration,
}

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The new key's id; tokens are signed with it from now on.
    pub kid: String,
    /// When every verifier refuses the keys this rotation retired: they
    /// stay published a token lifetime and a minute, and verifiers reload
    /// the key set within `OMS_JWKS_REFRESH_SECS` after that.
    pub retired_keys_refused_by: DateTime<Utc>,
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
    /// Keys in `db`, sealed by `sealer`; tokens live for `token_ttl`.
    pub fn new(db: DatabaseConnection, token_ttl: Duration, sealer: KeySealer) -> Self {
        Self {
            db,
            token_ttl,
            sealer,
            clock: Clock::system(),
            verifier_refresh: service_kit::auth::jwt::DEFAULT_REFRESH_INTERVAL,
        }
    }

    /// The same store, telling rotations that verifiers reload the key set
    /// every `interval` (`OMS_JWKS_REFRESH_SECS`).
    #[must_use]
    pub fn with_verifier_refresh(mut self, interval: Duration) -> Self {
        self.verifier_refresh = interval;
        self
    }

    /// The same store, dating rotations and retirements by `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Seals keys stored in plain PEM, checks that every key opens, and
    /// creates the first key if there is none.
    ///
    /// # Errors
    /// Database or key generation errors; a key that does not open (the
    /// wrong `OMS_KEY_ENCRYPTION_KEY`).
    pub async fn ensure_key(&self) -> anyhow::Result<()> {
        let stored = keys::all(&self.db).await?;
        for key in &stored {
            let pem = self.sealer.open(&key.kid, &key.sealed_private_key)?;
            if !KeySealer::is_sealed(&key.sealed_private_key) {
                let sealed = self.sealer.seal(&key.kid, &pem)?;
                keys::set_private_key(&self.db, &key.kid, sealed).await?;
                tracing::info!(kid = key.kid, "sealed a signing key stored in plain PEM");
            }
        }
        if stored.iter().all(|k| k.superseded_at.is_some()) {
            self.rotate().await?;
        }
        Ok(())
    }

    /// Deletes the keys no live token can name; returns how many.
    ///
    /// # Errors
    /// The database error.
    pub async fn prune(&self) -> anyhow::Result<u64> {
        Ok(keys::delete_superseded_before(&self.db, self.publication_horizon()).await?)
    }

    /// Keys superseded before this signed no token that is still valid.
    fn publication_horizon(&self) -> DateTime<Utc> {
        self.clock.now() - self.publication_after_superseded()
    }

    /// How long a superseded key stays published: a token lifetime and a
    /// minute for clock skew.
    fn publication_after_superseded(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.token_ttl + Duration::from_secs(60))
            .unwrap_or(chrono::Duration::hours(1))
    }

    fn signer(&self, key: SigningKey) -> anyhow::Result<TokenSigner> {
        let pem = self.sealer.open(&key.kid, &key.sealed_private_key)?;
        TokenSigner::from_ed25519_pem(key.kid, &pem)
    }

    /// Adds a new key and signs with it from now on; the keys it retires
    /// stay published for a token lifetime and a minute, and are refused
    /// everywhere one verifier refresh interval after that.
    ///
    /// # Errors
    /// Database or key generation errors.
    pub async fn rotate(&self) -> anyhow::Result<Rotation> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let pem = key
            .to_pkcs8_pem(Default::default())
            .context("encoding the new key")?;
        let kid = Uuid::now_v7().simple().to_string();
        let now = self.clock.now().trunc_subsecs(6);
        let txn = begin_write(&self.db).await?;
        keys::insert_current(
            &txn,
            SigningKey {
                sealed_private_key: self.sealer.seal(&kid, &pem)?,
                kid: kid.clone(),
                created_at: now,
                superseded_at: None,
            },
        )
        .await?;
        txn.commit().await?;
        tracing::info!(kid, "new token signing key");
        let refresh = chrono::Duration::from_std(self.verifier_refresh)
            .unwrap_or(chrono::Duration::minutes(1));
        Ok(Rotation {
            kid,
            retired_keys_refused_by: now + self.publication_after_superseded() + refresh,
        })
    }

    /// Signs a token for `subject` with the current key.
    ///
    /// # Errors
    /// When there is no key or signing fails.
    pub async fn issue(&self, subject: CustomerId, role: Role) -> anyhow::Result<IssuedToken> {
        let current = keys::all(&self.db)
            .await?
            .into_iter()
            .rev()
            .find(|k| k.superseded_at.is_none())
            .context("there is no current signing key")?;
        let signer = self.signer(current)?;
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
        let horizon = self.publication_horizon();
        let signers = keys::all(&self.db)
            .await?
            .into_iter()
            .filter(|k| k.superseded_at.is_none_or(|at| at > horizon))
            .map(|k| self.signer(k))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(jwks(&signers))
    }
}

/// customer-svc verifies its own tokens with its own key set, without a
/// round trip over HTTP.
pub struct LocalKeys(pub Arc<KeyStore>);

impl KeySource for LocalKeys {
    /// Reading the local table is cheap, but not free: once a second at
    /// most, so that forged key ids cannot make every request read it.
    fn min_refresh_interval(&self) -> Duration {
        Duration::from_secs(1)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_for_its_row() {
        let sealer = KeySealer::from_base64(&KeySealer::generate_secret().unwrap()).unwrap();
        let sealed = sealer.seal("kid-1", "-----BEGIN PRIVATE KEY-----").unwrap();
        assert!(!sealed.contains("BEGIN"));
        assert_eq!(
            sealer.open("kid-1", &sealed).unwrap(),
            "-----BEGIN PRIVATE KEY-----"
        );
        assert!(
            sealer.open("kid-2", &sealed).is_err(),
            "moved to another row"
        );
        let other = KeySealer::from_base64(&KeySealer::generate_secret().unwrap()).unwrap();
        assert!(other.open("kid-1", &sealed).is_err(), "another secret");
        let legacy = "-----BEGIN PRIVATE KEY-----\n";
        assert_eq!(sealer.open("kid-1", legacy).unwrap(), legacy);
        assert!(KeySealer::from_base64("c2hvcnQ=").is_err());
    }
}
