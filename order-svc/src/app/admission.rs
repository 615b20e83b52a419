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
//! - **Fresh figures, never too low**: the backlog and the decision rate
//!   are read every [`LOOK_EVERY`]; between two looks the orders this
//!   instance placed or is placing are added in memory (refused ones and
//!   failed placements not), so that no order goes uncounted, and one
//!   placed while a look ran counts twice until the next look. A database
//!   that cannot be read keeps the last figures (and says so in the log).
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

/// How often the backlog and the decision rate are read: at 5,000 orders
/// in the saga, the two counts take about 15 ms of PostgreSQL's time, so a
/// look every 200 ms cost 8 % of a core (`pg_stat_statements` in an
/// `oms bench --rate 1300` run). Between looks the estimate only errs high.
pub const LOOK_EVERY: Duration = Duration::from_secs(1);

/// Over how long the decision rate is measured: short, so that the bound
/// rises within seconds when load arrives at an idle system (with 10 s,
/// `oms bench --rate 1000` on SQLite was refused 566 orders in its first
/// second, which the system then decided at 937/s).
pub const RATE_WINDOW: Duration = Duration::from_secs(3);

/// The smallest bound the automatic one takes, so that an idle system
/// takes a burst: 2,000 orders are decided within a quarter of the default
/// 30 s deadline from about 270 decisions a second.
pub const MIN_AUTOMATIC_BOUND: u64 = 2_000;

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

/// What the backlog is made of between two looks. An order is in exactly
/// one of: placed before the last look began (in `backlog`), placed since
/// (`placed - placed_at_look`), or being placed (`in_flight`); one placed
/// while the look ran counts twice until the next, never zero times.
#[derive(Debug)]
struct State {
    /// PENDING orders at the last look.
    backlog: AtomicU64,
    /// `placed` when the last look began.
    placed_at_look: AtomicU64,
    /// Orders this instance placed, ever.
    placed: AtomicU64,
    /// Orders admitted and not placed or refused yet.
    in_flight: AtomicU64,
    bound: AtomicU64,
}

impl State {
    fn estimate(&self) -> u64 {
        let placed_since = self
            .placed
            .load(Ordering::Acquire)
            .saturating_sub(self.placed_at_look.load(Ordering::Acquire));
        self.backlog
            .load(Ordering::Acquire)
            .saturating_add(placed_since)
            .saturating_add(self.in_flight.load(Ordering::Acquire))
    }
}

/// A place in the backlog for one order being placed: it counts while the
/// order is written, and after as placed once [`Ticket::placed`] says so.
#[derive(Debug)]
#[must_use = "the place is given back when the ticket is dropped"]
pub struct Ticket {
    state: Arc<State>,
}

impl Ticket {
    /// The order was placed (committed).
    pub fn placed(self) {
        self.state.placed.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
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
                placed_at_look: AtomicU64::new(0),
                placed: AtomicU64::new(0),
                in_flight: AtomicU64::new(0),
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
    pub fn admit(&self) -> Result<Ticket, OrderError> {
        self.state.in_flight.fetch_add(1, Ordering::AcqRel);
        let ticket = Ticket {
            state: self.state.clone(),
        };
        // This order is in the estimate now; it fits if the others are
        // below the bound.
        if self.state.estimate() > self.state.bound.load(Ordering::Acquire) {
            drop(ticket);
            metrics::counter!("oms_orders_refused_total", "reason" => "overloaded").increment(1);
            return Err(OrderError::Overloaded {
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        Ok(ticket)
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
            let placed_before = self.state.placed.load(Ordering::Acquire);
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
                    self.state.bound.store(bound, Ordering::Release);
                    self.state.backlog.store(backlog, Ordering::Release);
                    self.state
                        .placed_at_look
                        .store(placed_before, Ordering::Release);
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
        // 600 decided/s over 3 s: 600 × 30 s × 1/4.
        assert_eq!(admission.bound_for(1_800), 4_500);
        assert_eq!(admission.bound_for(0), MIN_AUTOMATIC_BOUND);
        assert_eq!(
            Admission::new(7, Duration::from_secs(30)).bound_for(1_800),
            7
        );
    }

    #[test]
    fn the_bound_admits_that_many_and_refuses_the_next() {
        let admission = Admission::new(2, Duration::from_secs(30));
        admission.admit().unwrap().placed();
        let second = admission.admit().unwrap();
        assert!(matches!(
            admission.admit(),
            Err(OrderError::Overloaded {
                retry_after_secs: RETRY_AFTER_SECS
            })
        ));
        // A placement that fails gives its place back.
        drop(second);
        admission.admit().unwrap().placed();
        assert!(admission.admit().is_err());
    }
}
