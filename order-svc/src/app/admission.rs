//! Admission at the edge: order-svc takes a new order only while the
//! saga's backlog leaves room to decide it before its deadline.
//!
//! ## Guarantees
//! - **A bound on the backlog, not a timer**: an order is admitted while
//!   the orders in the saga (PENDING, counted in the database, so across
//!   every instance) plus those this instance admitted since it last
//!   counted stay below the bound. Past it, placing answers 503
//!   `OVERLOADED` with `Retry-After` before anything is read or written,
//!   so a refusal costs next to nothing and an accepted order is still
//!   decided in time: nothing is cancelled at the deadline for want of
//!   capacity, however much is offered.
//! - **The bound follows what the saga can finish**: with
//!   `OMS_MAX_PENDING_ORDERS` at 0 (the default) it is the orders decided
//!   per second over the last [`RATE_WINDOW`], times a quarter of the saga
//!   deadline, and never below [`MIN_AUTOMATIC_BOUND`] (so an idle system
//!   takes a burst); a positive `OMS_MAX_PENDING_ORDERS` fixes it.
//! - **Fresh figures**: the backlog and the decision rate are read every
//!   [`LOOK_EVERY`]; between two looks the requests admitted are counted in
//!   memory, refused ones not. A database that cannot be read keeps the
//!   last figures (and says so in the log).
//!
//! `oms_saga_backlog` and `oms_saga_backlog_bound` are the figures, and
//! `oms_orders_refused_total{reason="overloaded"}` counts the refusals.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use events::OrderStatus;
use sea_orm::DatabaseConnection;
use service_kit::Clock;
use tokio_util::sync::CancellationToken;

use crate::error::OrderError;
use crate::persistence::orders;

/// How often the backlog and the decision rate are read.
pub const LOOK_EVERY: Duration = Duration::from_millis(200);

/// Over how long the decision rate is measured.
pub const RATE_WINDOW: Duration = Duration::from_secs(10);

/// The smallest bound the automatic one takes.
pub const MIN_AUTOMATIC_BOUND: u64 = 1_000;

/// What the client is told to wait before it tries again.
pub const RETRY_AFTER_SECS: u32 = 1;

/// The share of the saga deadline the backlog may take to decide, at the
/// rate measured: a quarter leaves room for the rate to drop.
const DEADLINE_SHARE: f64 = 0.25;

/// The admission of one order-svc instance; cheap to clone.
#[derive(Debug, Clone)]
pub struct Admission {
    state: Arc<State>,
    /// A fixed bound, or `None` for the automatic one.
    fixed: Option<u64>,
    saga_deadline: Duration,
}

#[derive(Debug)]
struct State {
    /// PENDING orders at the last look.
    backlog: AtomicU64,
    /// Orders admitted here since the last look.
    admitted_since: AtomicU64,
    bound: AtomicU64,
}

impl Admission {
    /// Admission with `max_pending` as the bound (0: automatic, from the
    /// decision rate and `saga_deadline`). It admits up to the bound until
    /// [`Admission::run_until_stopped`] has looked.
    pub fn new(max_pending: u64, saga_deadline: Duration) -> Self {
        let fixed = (max_pending > 0).then_some(max_pending);
        Self {
            state: Arc::new(State {
                backlog: AtomicU64::new(0),
                admitted_since: AtomicU64::new(0),
                bound: AtomicU64::new(fixed.unwrap_or(MIN_AUTOMATIC_BOUND)),
            }),
            fixed,
            saga_deadline,
        }
    }

    /// Takes a place for one new order.
    ///
    /// # Errors
    /// [`OrderError::Overloaded`] when the backlog is at its bound.
    pub fn admit(&self) -> Result<(), OrderError> {
        let bound = self.state.bound.load(Ordering::Relaxed);
        let backlog = self.state.backlog.load(Ordering::Relaxed);
        let admitted = self.state.admitted_since.fetch_add(1, Ordering::Relaxed);
        if backlog.saturating_add(admitted) >= bound {
            self.state.admitted_since.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!("oms_orders_refused_total", "reason" => "overloaded").increment(1);
            return Err(OrderError::Overloaded {
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        Ok(())
    }

    /// The bound for `decided` orders in the last [`RATE_WINDOW`].
    fn bound_for(&self, decided: u64) -> u64 {
        self.fixed.unwrap_or_else(|| {
            let per_second = decided as f64 / RATE_WINDOW.as_secs_f64();
            let decidable = per_second * self.saga_deadline.as_secs_f64() * DEADLINE_SHARE;
            // Saturating: a float beyond u64 becomes u64::MAX.
            (decidable as u64).max(MIN_AUTOMATIC_BOUND)
        })
    }

    /// Reads the backlog and the decision rate through `db` every
    /// [`LOOK_EVERY`] until `shutdown`.
    pub async fn run_until_stopped(
        self,
        db: DatabaseConnection,
        clock: Clock,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let since = clock.now()
                - chrono::Duration::from_std(RATE_WINDOW).unwrap_or(chrono::Duration::zero());
            let looked = async {
                let decided = match self.fixed {
                    Some(_) => 0,
                    None => orders::count_decided_since(&db, since).await?,
                };
                let backlog = orders::count_in(&db, OrderStatus::Pending).await?;
                Ok::<_, sea_orm::DbErr>((backlog, decided))
            };
            match looked.await {
                Ok((backlog, decided)) => {
                    let bound = self.bound_for(decided);
                    self.state.bound.store(bound, Ordering::Relaxed);
                    self.state.backlog.store(backlog, Ordering::Relaxed);
                    self.state.admitted_since.store(0, Ordering::Relaxed);
                    #[allow(clippy::cast_precision_loss)]
                    {
                        metrics::gauge!("oms_saga_backlog").set(backlog as f64);
                        metrics::gauge!("oms_saga_backlog_bound").set(bound as f64);
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "could not count the saga's backlog; keeping the last figures");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_bound_is_a_quarter_deadline_of_decisions_and_at_least_the_floor() {
        let admission = Admission::new(0, Duration::from_secs(30));
        // 600 decided/s over 10 s: 600 × 30 s × 1/4.
        assert_eq!(admission.bound_for(6_000), 4_500);
        assert_eq!(admission.bound_for(0), MIN_AUTOMATIC_BOUND);
        assert_eq!(
            Admission::new(7, Duration::from_secs(30)).bound_for(6_000),
            7
        );
    }

    #[test]
    fn the_bound_admits_that_many_and_refuses_the_next() {
        let admission = Admission::new(2, Duration::from_secs(30));
        assert!(admission.admit().is_ok());
        assert!(admission.admit().is_ok());
        assert!(matches!(
            admission.admit(),
            Err(OrderError::Overloaded {
                retry_after_secs: RETRY_AFTER_SECS
            })
        ));
    }
}
