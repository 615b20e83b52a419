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

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use service_kit::ClientAddress;

use crate::config::ThrottleSettings;
use crate::error::CustomerError;

/// The longest lock-out.
const MAX_LOCKOUT: Duration = Duration::from_secs(3600);

/// The per-address buckets and the lock-out rule.
pub struct Throttle {
    logins: DefaultKeyedRateLimiter<IpAddr>,
    registrations: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    lockout_after_failures: u32,
    lockout: Duration,
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
        Ok(Self {
            logins: RateLimiter::keyed(Quota::per_minute(logins)),
            registrations: RateLimiter::keyed(Quota::per_hour(registrations)),
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
        self.take(&self.logins, client, "login")
    }

    /// Takes a self-registration from `client`'s bucket.
    ///
    /// # Errors
    /// [`CustomerError::TooManyAttempts`] when it is empty.
    pub fn registration(&self, client: ClientAddress) -> Result<(), CustomerError> {
        self.take(&self.registrations, client, "registration")
    }

    fn take(
        &self,
        bucket: &DefaultKeyedRateLimiter<IpAddr>,
        client: ClientAddress,
        what: &'static str,
    ) -> Result<(), CustomerError> {
        bucket.check_key(&client.0).map_err(|not_until| {
            metrics::counter!("oms_throttled_total", "what" => what).increment(1);
            CustomerError::TooManyAttempts {
                retry_after: not_until.wait_time_from(self.clock.now()),
            }
        })
    }

    /// How long an account is locked after `failures` wrong passwords in a
    /// row; `None` below the threshold.
    pub fn lockout_for(&self, failures: i32) -> Option<Duration> {
        let beyond = u32::try_from(failures)
            .ok()?
            .checked_sub(self.lockout_after_failures)?;
        let factor = 1u32.checked_shl(beyond.min(31)).unwrap_or(u32::MAX);
        Some(self.lockout.saturating_mul(factor).min(MAX_LOCKOUT))
    }

    /// Forgets addresses whose buckets are full again.
    pub fn forget_idle(&self) {
        for bucket in [&self.logins, &self.registrations] {
            bucket.retain_recent();
            bucket.shrink_to_fit();
        }
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
        assert_eq!(throttle.lockout_for(i32::MAX), Some(MAX_LOCKOUT));
        assert_eq!(throttle.lockout_for(-1), None);
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
}
