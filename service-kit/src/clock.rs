//! Time, injectable: code that decides by the time (saga deadlines, expiry)
//! asks a [`Clock`] instead of calling `Utc::now()`, so that a test can hold
//! time still and move it on when it chooses, instead of sleeping and
//! hoping.
//!
//! The system clock is the default. A manual clock ([`Clock::manual`])
//! stands still until [`Clock::advance`] moves it; [`Clock::sleep`] on it
//! ends when the clock has been moved past the wake-up time, however little
//! real time has passed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// Where "now" comes from. Cheap to clone; clones share one time.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<watch::Sender<DateTime<Utc>>>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::System"),
            Some(now) => write!(f, "Clock::Manual({})", *now.borrow()),
        }
    }
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that shows `start` until it is advanced.
    pub fn manual(start: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(watch::Sender::new(start))),
        }
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            None => Utc::now(),
            Some(now) => *now.borrow(),
        }
    }

    /// Moves a manual clock on by `by`, waking its sleepers that are due.
    ///
    /// # Panics
    /// On the system clock, which nobody moves.
    pub fn advance(&self, by: Duration) {
        let now = self
            .manual
            .as_ref()
            .expect("only a manual clock can be advanced");
        let by = chrono::Duration::from_std(by).expect("an advance of less than 2^63 ms");
        now.send_modify(|now| *now += by);
    }

    /// Waits until the clock shows `wait` later than now: real time on the
    /// system clock, advances on a manual one.
    pub async fn sleep(&self, wait: Duration) {
        let Some(now) = &self.manual else {
            tokio::time::sleep(wait).await;
            return;
        };
        let Ok(wait) = chrono::Duration::from_std(wait) else {
            return std::future::pending().await;
        };
        let mut time = now.subscribe();
        let wake_at = *time.borrow_and_update() + wait;
        while *time.borrow_and_update() < wake_at {
            if time.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_follows_real_time() {
        let before = Utc::now();
        let now = Clock::system().now();
        assert!(now >= before && now <= Utc::now());
    }

    #[tokio::test]
    async fn a_manual_clock_stands_still_until_advanced() {
        let start = DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock::manual(start);
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep(Duration::from_secs(30)).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(clock.now(), start);

        clock.advance(Duration::from_secs(29));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!sleeper.is_finished(), "woke before its time");

        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woke once the clock passed its time")
            .unwrap();
        assert_eq!(clock.now(), start + chrono::Duration::seconds(30));
    }
}
