//! Limits on guessing: per client address, per account.
//!
//! - **Per address** (in memory, per instance): `OMS_LOGIN_ATTEMPTS_PER_MINUTE`
//!   sign-ins and `OMS_REGISTRATIONS_PER_HOUR` self-registrations, as token
//!   buckets (the `governor` crate) that start full; past them the answer
//!   is 429 `TOO_MANY_ATTEMPTS` with `Retry-After`. Idle addresses are
//!   forgotten, so memory stays bounded by the addresses seen lately.
//! - **Per account** (in the database, shared by every instance):
//!   `OMS_LOCKOUT_AFTER_FAILURES` wrong passwords in a row lock the account
//!   for `OMS_LOCKOUT_SECS`, doubling with each further failure up to an
//!   hour; while locked, even the right password is answered 429. A right
//!   password outside a lock clears the count.
//! - **Per unknown email** (in memory, per instance): sign-ins for an email
//!   no account has count and lock by the same rule, so that the sixth
//!   wrong password does not tell a real account (429) from a made-up one
//!   (401). The counts are kept for the `OMS_LOCKOUT_TRACKED_EMAILS` most
//!   recently tried unknown emails (by their SHA-256, least recently tried
//!   forgotten first), so memory stays bounded whatever is tried. Behind
//!   several instances an unknown email's count is per instance.
//! - **Password changes**: each takes from its client address's sign-in
//!   bucket, and from its account's bucket of `OMS_PASSWORD_CHANGES_PER_HOUR`
//!   (a customer alternating two passwords cannot keep the hashing slots
//!   busy); past either, 429 `TOO_MANY_ATTEMPTS` with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use events::CustomerId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hashlink::LruCache;
use service_kit::ClientAddress;
use sha2::{Digest, Sha256};

use crate::config::ThrottleSettings;
use crate::error::CustomerError;

/// The longest lock-out.
const MAX_LOCKOUT: Duration = Duration::from_secs(3600);

/// The per-address buckets and the lock-out rule.
pub struct Throttle {
    logins: DefaultKeyedRateLimiter<IpAddr>,
    registrations: DefaultKeyedRateLimiter<IpAddr>,
    password_changes: DefaultKeyedRateLimiter<CustomerId>,
    unknown_emails: Mutex<LruCache<[u8; 32], Failures>>,
    clock: DefaultClock,
    lockout_after_failures: u32,
    lockout: Duration,
}

/// Wrong passwords in a row for an email, and until when it is locked.
#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    count: u32,
    locked_until: Option<DateTime<Utc>>,
}

/// An email no account has, as its failures are counted: its SHA-256, so
/// that what is kept is small and names nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownEmail([u8; 32]);

impl UnknownEmail {
    /// The key of `email` as it was typed (trimmed, in any case).
    pub fn of(email: &str) -> Self {
        Self(Sha256::digest(email.trim().to_lowercase().as_bytes()).into())
    }
}

impl Throttle {
    /// The limits of `settings`.
    ///
    /// # Errors
    /// When a rate is zero.
    pub fn new(settings: &ThrottleSettings) -> anyhow::Result<Self> {
        let positive = |value: u32, name: &str| {
            NonZeroU32::new(value).ok_or_else(|| anyhow::anyhow!("{name} must be at least 1"))
        };
        let logins = positive(
            settings.login_attempts_per_minute,
            "OMS_LOGIN_ATTEMPTS_PER_MINUTE",
        )?;
        let registrations = positive(
            settings.registrations_per_hour,
            "OMS_REGISTRATIONS_PER_HOUR",
        )?;
        positive(
            settings.lockout_after_failures,
            "OMS_LOCKOUT_AFTER_FAILURES",
        )?;
        let password_changes = positive(
            settings.password_changes_per_hour,
            "OMS_PASSWORD_CHANGES_PER_HOUR",
        )?;
        let tracked = positive(
            settings.lockout_tracked_emails,
            "OMS_LOCKOUT_TRACKED_EMAILS",
        )?;
        Ok(Self {
            logins: RateLimiter::keyed(Quota::per_minute(logins)),
            registrations: RateLimiter::keyed(Quota::per_hour(registrations)),
            password_changes: RateLimiter::keyed(Quota::per_hour(password_changes)),
            unknown_emails: Mutex::new(LruCache::new(tracked.get() as usize)),
            clock: DefaultClock::default(),
            lockout_after_failures: settings.lockout_after_failures,
            lockout: Duration::from_secs(settings.lockout_secs.max(1)),
        })
    }

    /// Takes a sign-in attempt from `client`'s bucket.
    ///
    /// # Errors
    /// [`CustomerError::TooManyAttempts`] when it is empty.
    pub fn sign_in_attempt(&self, client: ClientAddress) -> Result<(), CustomerError> {
        self.take(&self.logins, &client.0, "login")
    }

    /// Takes a self-registration from `client`'s bucket.
    ///
    /// # Errors
    /// [`CustomerError::TooManyAttempts`] when it is empty.
    pub fn registration(&self, client: ClientAddress) -> Result<(), CustomerError> {
        self.take(&self.registrations, &client.0, "registration")
    }

    /// Takes a password change from `client`'s sign-in bucket and from
    /// `account`'s password-change bucket.
    ///
    /// # Errors
    /// [`CustomerError::TooManyAttempts`] when either is empty.
    pub fn password_change(
        &self,
        client: ClientAddress,
        account: CustomerId,
    ) -> Result<(), CustomerError> {
        self.take(&self.logins, &client.0, "password_change")?;
        self.take(&self.password_changes, &account, "password_change")
    }

    /// Refused while `email` (no account's) is locked.
    ///
    /// # Errors
    /// [`CustomerError::TooManyAttempts`] with the time left.
    pub fn unknown_email_locked(
        &self,
        email: UnknownEmail,
        now: DateTime<Utc>,
    ) -> Result<(), CustomerError> {
        let until = self
            .unknown_emails
            .lock()
            // A panic elsewhere while counting leaves counts, not broken state.
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&email.0)
            .and_then(|f| f.locked_until);
        locked_until(until, now)
    }

    /// Counts a wrong password for `email` (no account's), locking it as an
    /// account would be locked.
    pub fn unknown_email_failed(&self, email: UnknownEmail, now: DateTime<Utc>) {
        let mut emails = self
            .unknown_emails
            .lock()
            // A panic elsewhere while counting leaves counts, not broken state.
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let failures = emails.get(&email.0).copied().unwrap_or_default();
        let count = failures.count.saturating_add(1);
        let locked_until = self.lockout_for(count).map(|wait| {
            now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
        });
        emails.insert(
            email.0,
            Failures {
                count,
                locked_until,
            },
        );
    }

    fn take<K: std::hash::Hash + Eq + Clone>(
        &self,
        bucket: &DefaultKeyedRateLimiter<K>,
        key: &K,
        what: &'static str,
    ) -> Result<(), CustomerError> {
        bucket.check_key(key).map_err(|not_until| {
            metrics::counter!("oms_throttled_total", "what" => what).increment(1);
            CustomerError::TooManyAttempts {
                retry_after: not_until.wait_time_from(self.clock.now()),
            }
        })
    }

    /// How long an account is locked after `failures` wrong passwords in a
    /// row; `None` below the threshold.
    pub fn lockout_for(&self, failures: u32) -> Option<Duration> {
        let beyond = failures.checked_sub(self.lockout_after_failures)?;
        let factor = 1u32.checked_shl(beyond.min(31)).unwrap_or(u32::MAX);
        Some(self.lockout.saturating_mul(factor).min(MAX_LOCKOUT))
    }

    /// Forgets addresses and accounts whose buckets are full again.
    pub fn forget_idle(&self) {
        for bucket in [&self.logins, &self.registrations] {
            bucket.retain_recent();
            bucket.shrink_to_fit();
        }
        self.password_changes.retain_recent();
        self.password_changes.shrink_to_fit();
    }
}

/// Refused until `until`, when that is later than `now`: what a locked
/// account and a locked unknown email both answer.
///
/// # Errors
/// [`CustomerError::TooManyAttempts`] with the time left.
pub fn locked_until(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<(), CustomerError> {
    match until {
        Some(until) if until > now => Err(CustomerError::TooManyAttempts {
            retry_after: (until - now).to_std().unwrap_or(Duration::from_secs(1)),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lockout_starts_at_the_threshold_and_doubles_up_to_an_hour() {
        let throttle = Throttle::new(&ThrottleSettings::default()).unwrap();
        assert_eq!(throttle.lockout_for(4), None);
        assert_eq!(throttle.lockout_for(5), Some(Duration::from_secs(30)));
        assert_eq!(throttle.lockout_for(6), Some(Duration::from_secs(60)));
        assert_eq!(throttle.lockout_for(7), Some(Duration::from_secs(120)));
        assert_eq!(throttle.lockout_for(12), Some(MAX_LOCKOUT));
        assert_eq!(throttle.lockout_for(u32::MAX), Some(MAX_LOCKOUT));
    }

    #[test]
    fn an_address_gets_its_quota_then_waits_and_others_are_unaffected() {
        let settings = ThrottleSettings {
            login_attempts_per_minute: 3,
            ..ThrottleSettings::default()
        };
        let throttle = Throttle::new(&settings).unwrap();
        let a = ClientAddress("192.0.2.1".parse().unwrap());
        let b = ClientAddress("192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            throttle.sign_in_attempt(a).unwrap();
        }
        let Err(CustomerError::TooManyAttempts { retry_after }) = throttle.sign_in_attempt(a)
        else {
            panic!("the fourth attempt in a minute passed");
        };
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(20));
        throttle.sign_in_attempt(b).unwrap();
    }

    #[test]
    fn unknown_emails_lock_like_accounts_and_the_least_recent_is_forgotten() {
        let settings = ThrottleSettings {
            lockout_tracked_emails: 2,
            ..ThrottleSettings::default()
        };
        let throttle = Throttle::new(&settings).unwrap();
        let now = Utc::now();
        let [a, b, c] = ["a@example.com", "b@example.com", "c@example.com"].map(UnknownEmail::of);
        assert_eq!(UnknownEmail::of(" A@Example.com "), a);
        for _ in 0..5 {
            throttle.unknown_email_locked(a, now).unwrap();
            throttle.unknown_email_failed(a, now);
        }
        let Err(CustomerError::TooManyAttempts { retry_after }) =
            throttle.unknown_email_locked(a, now)
        else {
            panic!("five failures did not lock");
        };
        assert_eq!(retry_after, Duration::from_secs(30));
        throttle
            .unknown_email_locked(a, now + chrono::Duration::seconds(31))
            .unwrap();
        throttle.unknown_email_failed(b, now);
        throttle.unknown_email_failed(c, now);
        throttle.unknown_email_locked(a, now).unwrap();
    }
}
