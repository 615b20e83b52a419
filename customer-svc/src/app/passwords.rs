//! Password hashing, bounded.
//!
//! - Passwords are hashed with argon2id (19 MiB, a random salt each) on a
//!   blocking thread.
//! - At most `OMS_PASSWORD_HASH_CONCURRENCY` hashes run at once (the
//!   number of cores by default), so a login flood can take neither every
//!   core nor gigabytes of memory; a request that waits longer than
//!   `OMS_PASSWORD_HASH_QUEUE_MS` for a slot is answered 503 with
//!   `Retry-After` ([`CustomerError::Busy`]).
//! - A login for an unknown email still runs one verification, so timing
//!   does not tell which part was wrong.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::domain::Password;
use crate::error::CustomerError;

/// The bounded password hasher every credential check goes through.
#[derive(Debug, Clone)]
pub struct Passwords {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
}

/// A hash of a password nobody has, verified against when the email is
/// unknown so that both failures take as long.
/// (`Argon2::default()` of "decoy password", so it costs what a customer's
/// hash costs; a test checks that it still does.)
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$b21zLWRlY295LXNhbHQhIQ$+Lnpd+4CDvKUuPvDdxjh5S1RdF8TrKF24dogZXzDM6U";

impl Passwords {
    /// At most `concurrency` hashes at once (at least one); a caller waits
    /// at most `queue_timeout` for a slot.
    pub fn new(concurrency: usize, queue_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
        }
    }

    /// One hash per core, as `OMS_PASSWORD_HASH_CONCURRENCY` defaults to.
    pub fn default_concurrency() -> usize {
        std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit, CustomerError> {
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => {
                metrics::counter!("oms_password_hash_refused_total").increment(1);
                Err(CustomerError::Busy)
            }
        }
    }

    /// Hashes a password (argon2id, random salt).
    ///
    /// # Errors
    /// [`CustomerError::Busy`] when no slot frees in time; an internal
    /// error when no randomness is available.
    pub async fn hash(&self, password: &Password) -> Result<String, CustomerError> {
        let permit = self.slot().await?;
        let password = password.expose().to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
            let hash = Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
            Ok(hash.to_string())
        })
        .await
        .map_err(|e| CustomerError::Internal(e.into()))?
    }

    /// Whether `password` matches `hash` (with no hash: spends the same
    /// time and says no).
    ///
    /// # Errors
    /// [`CustomerError::Busy`] when no slot frees in time.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, CustomerError> {
        let permit = self.slot().await?;
        let password = password.to_owned();
        let known = hash.is_some();
        let hash = hash.unwrap_or(DECOY_HASH).to_owned();
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false);
        Ok(matches && known)
    }
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHash, PasswordVerifier};

    use super::*;

    #[test]
    fn the_decoy_hash_costs_what_a_customers_hash_costs() {
        let salt = SaltString::encode_b64(b"oms-decoy-salt!!").unwrap();
        let fresh = Argon2::default()
            .hash_password(b"decoy password", &salt)
            .unwrap()
            .to_string();
        assert_eq!(DECOY_HASH, fresh);
        let parsed = PasswordHash::new(DECOY_HASH).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"decoy password", &parsed)
                .is_ok()
        );
    }
}
