//! Signing in, refreshing, signing out: the access and refresh tokens a
//! customer holds.
//!
//! ## Guarantees
//! - **Throttled**: every sign-in takes from its client address's bucket
//!   and checks the account's lock-out before any password is hashed; a
//!   wrong password counts toward the lock-out ([`crate::app::throttle`]).
//! - **No account enumeration**: an email no account has is counted and
//!   locked by the same rule (in memory), and its failure does the same
//!   work as a wrong password for a real account: one argon2 verification
//!   (against a decoy hash), the same reads, and the same write
//!   transaction (whose update finds no row). Both answer 401, then 429
//!   with the same `Retry-After`.
//! - **Made-up refresh tokens cost a read**: refreshing or signing out
//!   looks the token up first and takes the write lock (SQLite's one
//!   writer) only for a token that exists, so a flood of random tokens
//!   does not queue ahead of the credit consumer's writes.
//! - **Refresh tokens** (RFC 9700 §4.14): opaque, 256 random bits, stored
//!   only as their SHA-256; each use replaces the token with a new one of
//!   the same family and starts its lifetime again. Showing a replaced
//!   token again revokes the whole family, so a stolen token works for
//!   one of the two holders at most once. Signing out revokes the family;
//!   a suspension or a new password revokes all of the customer's.
//! - **One transaction** per exchange: the old token is marked replaced
//!   and the new one stored together, with the old row locked, so two
//!   concurrent uses of one token cannot both succeed.

use events::CustomerId;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SubsecRound, Utc};
use event_runtime::begin_write;
use sea_orm::{ConnectionTrait, DatabaseConnection};
use service_kit::{ClientAddress, Clock};
use sha2::{Digest, Sha256};

use crate::app::passwords::Passwords;
use crate::app::throttle::{Throttle, UnknownEmail, locked_until};
use crate::app::tokens::{IssuedToken, KeyStore};
use crate::domain::{Customer, RefreshToken};
use crate::domain::{CustomerStatus, Email};
use crate::error::CustomerError;
use crate::persistence::{customers, refresh_tokens};

/// What signing in or refreshing hands out.
#[derive(Debug, Clone)]
pub struct Session {
    /// Whose it is.
    pub customer_id: CustomerId,
    /// The access token.
    pub access: IssuedToken,
    /// The refresh token (shown once, never stored).
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// Credentials and the tokens they buy.
pub struct Sessions {
    db: DatabaseConnection,
    keys: Arc<KeyStore>,
    passwords: Passwords,
    throttle: Throttle,
    refresh_ttl: Duration,
    clock: Clock,
}

impl Sessions {
    /// Sessions over `db`, signing with `keys`; lock-outs and refresh
    /// tokens expire by `clock`.
    pub fn new(
        db: DatabaseConnection,
        keys: Arc<KeyStore>,
        passwords: Passwords,
        throttle: Throttle,
        refresh_ttl: Duration,
        clock: Clock,
    ) -> Self {
        Self {
            db,
            keys,
            passwords,
            throttle,
            refresh_ttl,
            clock,
        }
    }

    /// The bounded password hasher.
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// The per-address limits.
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }

    /// Checks email and password and opens a session. A wrong email and a
    /// wrong password are the same error.
    ///
    /// # Errors
    /// [`CustomerError::TooManyAttempts`], [`CustomerError::InvalidCredentials`],
    /// [`CustomerError::AccountSuspended`], [`CustomerError::Busy`], or a
    /// database or signing error.
    pub async fn sign_in(
        &self,
        client: ClientAddress,
        email: &str,
        password: &str,
    ) -> Result<Session, CustomerError> {
        self.throttle.sign_in_attempt(client)?;
        let customer = match Email::parse(email) {
            Ok(email) => customers::find_by_email(&self.db, email.as_str()).await?,
            Err(_) => None,
        };
        let Some(customer) = customer else {
            return Err(self.unknown_email_failed(email, password).await?);
        };
        self.check_password(&customer, password)
            .await
            .map_err(|error| match error {
                CustomerError::WrongCurrentPassword => CustomerError::InvalidCredentials,
                other => other,
            })?;
        if customer.status != CustomerStatus::Active {
            return Err(CustomerError::AccountSuspended);
        }
        let txn = begin_write(&self.db).await?;
        let session = self.open(&txn, &customer, Uuid::now_v7()).await?;
        txn.commit().await?;
        Ok(session)
    }

    /// Checks `customer`'s password under the lock-out rule: refused while
    /// locked, a wrong one counted, a right one clearing the count.
    ///
    /// # Errors
    /// [`CustomerError::TooManyAttempts`] while locked,
    /// [`CustomerError::WrongCurrentPassword`] when wrong,
    /// [`CustomerError::Busy`], or a database error.
    pub async fn check_password(
        &self,
        customer: &Customer,
        password: &str,
    ) -> Result<(), CustomerError> {
        locked(customer, self.clock.now())?;
        let right = self
            .passwords
            .verify(password, Some(&customer.password_hash))
            .await?;
        // Guesses sent in parallel all passed the check above; the count
        // they left decides.
        let current = customers::find(&self.db, customer.id)
            .await?
            .ok_or(CustomerError::CustomerNotFound(customer.id))?;
        locked(&current, self.clock.now())?;
        if right {
            if current.failed_logins > 0 {
                customers::clear_failed_logins(&self.db, customer.id).await?;
            }
            return Ok(());
        }
        let txn = begin_write(&self.db).await?;
        if let Some(current) = customers::find_for_update(&txn, customer.id).await? {
            let failures = current.failed_logins.saturating_add(1);
            let until = self.throttle.lockout_for(failures).map(|wait| {
                self.clock.now()
                    + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
            });
            customers::record_failed_login(&txn, customer.id, failures, until).await?;
            if until.is_some() {
                tracing::warn!(customer_id = %customer.id, failures, "account locked after wrong passwords");
            }
        }
        txn.commit().await?;
        Err(CustomerError::WrongCurrentPassword)
    }

    /// A sign-in for an email no account has: locked and counted like an
    /// account, and costing what a wrong password for an account costs
    /// ([`Self::check_password`]): the decoy verification, a read, and the
    /// write transaction, whose update finds no row.
    async fn unknown_email_failed(
        &self,
        email: &str,
        password: &str,
    ) -> Result<CustomerError, CustomerError> {
        let key = UnknownEmail::of(email);
        self.throttle.unknown_email_locked(key, self.clock.now())?;
        self.passwords.verify(password, None).await?;
        // An id no account has: the same statements as for a real account.
        let nobody = CustomerId::generate();
        customers::find(&self.db, nobody).await?;
        self.throttle.unknown_email_locked(key, self.clock.now())?;
        let txn = begin_write(&self.db).await?;
        let failures = customers::find_for_update(&txn, nobody)
            .await?
            .map_or(1, |c| c.failed_logins.saturating_add(1));
        customers::record_failed_login(&txn, nobody, failures, None).await?;
        txn.commit().await?;
        self.throttle.unknown_email_failed(key, self.clock.now());
        Ok(CustomerError::InvalidCredentials)
    }

    /// Exchanges a refresh token for a new access token and its successor.
    ///
    /// # Errors
    /// [`CustomerError::InvalidRefreshToken`], [`CustomerError::RefreshTokenReused`]
    /// (the family is revoked), [`CustomerError::AccountSuspended`], or a
    /// database or signing error.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, CustomerError> {
        let now = self.clock.now().trunc_subsecs(6);
        let hash = digest(refresh_token);
        // Check first, then write: a token that does not exist, or can no
        // longer be used, is refused from a read, without the write lock.
        match refresh_tokens::find(&self.db, &hash).await? {
            Some(token) if token.revoked_at.is_none() && token.expires_at > now => {}
            _ => return Err(CustomerError::InvalidRefreshToken),
        }
        let txn = begin_write(&self.db).await?;
        let Some(token) = refresh_tokens::find_for_update(&txn, &hash).await? else {
            return Err(CustomerError::InvalidRefreshToken);
        };
        if token.revoked_at.is_some() || token.expires_at <= now {
            return Err(CustomerError::InvalidRefreshToken);
        }
        if token.rotated_at.is_some() {
            refresh_tokens::revoke_family(&txn, token.family_id, now).await?;
            txn.commit().await?;
            tracing::warn!(customer_id = %token.customer_id, family_id = %token.family_id,
                "a replaced refresh token was shown again; its sign-in is revoked");
            return Err(CustomerError::RefreshTokenReused);
        }
        let customer = customers::find(&txn, token.customer_id)
            .await?
            .ok_or(CustomerError::InvalidRefreshToken)?;
        if customer.status != CustomerStatus::Active {
            refresh_tokens::revoke_customer(&txn, customer.id, now).await?;
            txn.commit().await?;
            return Err(CustomerError::AccountSuspended);
        }
        refresh_tokens::mark_rotated(&txn, &token.token_hash, now).await?;
        let session = self.open(&txn, &customer, token.family_id).await?;
        txn.commit().await?;
        Ok(session)
    }

    /// Revokes the sign-in a refresh token belongs to. An unknown token is
    /// not an error (RFC 7009 §2.2): there is nothing left to revoke.
    ///
    /// # Errors
    /// A database error.
    pub async fn sign_out(&self, refresh_token: &str) -> Result<(), CustomerError> {
        let hash = digest(refresh_token);
        // Check first, then write: nothing to revoke takes no write lock.
        match refresh_tokens::find(&self.db, &hash).await? {
            Some(token) if token.revoked_at.is_none() => {}
            _ => return Ok(()),
        }
        let txn = begin_write(&self.db).await?;
        if let Some(token) = refresh_tokens::find_for_update(&txn, &hash).await? {
            refresh_tokens::revoke_family(&txn, token.family_id, self.clock.now()).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Deletes expired refresh tokens, superseded signing keys no token can
    /// name, and idle address buckets.
    ///
    /// # Errors
    /// A database error.
    pub async fn prune(&self) -> anyhow::Result<()> {
        refresh_tokens::delete_expired(&self.db, self.clock.now()).await?;
        self.keys.prune().await?;
        self.throttle.forget_idle();
        Ok(())
    }

    /// Signs an access token and stores a new refresh token of `family`.
    async fn open(
        &self,
        conn: &impl ConnectionTrait,
        customer: &Customer,
        family_id: Uuid,
    ) -> Result<Session, CustomerError> {
        let access = self.keys.issue(customer.id, customer.role).await?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| CustomerError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
        let refresh_token = URL_SAFE_NO_PAD.encode(secret);
        let now = self.clock.now().trunc_subsecs(6);
        refresh_tokens::insert(
            conn,
            RefreshToken {
                token_hash: digest(&refresh_token),
                family_id,
                customer_id: customer.id,
                created_at: now,
                expires_at: now + chrono_duration(self.refresh_ttl),
                rotated_at: None,
                revoked_at: None,
            },
        )
        .await?;
        Ok(Session {
            customer_id: customer.id,
            access,
            refresh_token,
            refresh_expires_in: self.refresh_ttl.as_secs(),
        })
    }
}

/// Refused while the account is locked.
fn locked(customer: &Customer, now: DateTime<Utc>) -> Result<(), CustomerError> {
    locked_until(customer.locked_until, now)
}

/// The stored form of a refresh token: its SHA-256, hex.
fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::days(30))
}
