//! The saga's deadline: PENDING orders whose deadline passed are cancelled.
//!
//! Deadlines are stored with each order (`deadline_at`), not held in memory,
//! so a restarted order-svc still cancels overdue orders. The sweeper sleeps
//! until the earliest deadline (at most [`DeadlineSweeper::idle`]), cancels
//! what is due in one transaction per batch, and then (outside that
//! transaction, in bounded batches) forgets expired idempotency keys.
//! Several instances share the work safely: the rows are locked with
//! `SKIP LOCKED`, and the transition itself only moves PENDING orders.
//! "Now" is the service's [`Clock`], so a test moves time past a deadline
//! instead of waiting for it.

use std::time::Duration;

use event_runtime::{Outbox, begin_write};
use sea_orm::DatabaseConnection;
use service_kit::Clock;
use tokio_util::sync::CancellationToken;

use crate::app::saga;
use crate::domain::{Applied, SagaInput};
use crate::persistence::{idempotency, orders};

/// Cancels overdue orders.
pub struct DeadlineSweeper {
    /// The database.
    pub db: DatabaseConnection,
    /// The outbox for OrderCancelled.
    pub outbox: Outbox,
    /// The longest sleep between two looks.
    pub idle: Duration,
    /// What "now" is: a deadline has passed when this clock says so.
    pub clock: Clock,
}

impl DeadlineSweeper {
    /// Sweeps until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) {
        loop {
            let wait = match self.sweep().await {
                Ok(cancelled) if cancelled > 0 => Duration::ZERO,
                Ok(_) => self.until_next_deadline().await,
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "deadline sweep failed; retrying"
                    );
                    self.idle
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                () = self.clock.sleep(wait) => {}
            }
        }
        tracing::info!("deadline sweeper stopped");
    }

    /// Cancels up to 100 overdue orders; returns how many.
    ///
    /// # Errors
    /// Database errors (nothing is cancelled then).
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let txn = begin_write(&self.db).await?;
        let due = orders::overdue(&txn, now, 100).await?;
        let mut cancelled = orders::find_many_for_update(&txn, &due).await?;
        let mut decisions = Vec::new();
        let mut events = Vec::new();
        cancelled.retain_mut(|order| match order.apply(SagaInput::DeadlinePassed, now) {
            Ok(Applied::Moved { event, decision }) => {
                tracing::info!(order_id = %order.id, "order cancelled at its saga deadline");
                events.extend(event.map(|event| self.outbox.envelope(event)));
                decisions.extend(decision);
                true
            }
            Ok(Applied::Unchanged) | Err(_) => false,
        });
        orders::save_all(&txn, &cancelled).await?;
        saga::emit(&txn, events).await?;
        self.outbox.commit(txn).await?;
        let cancelled = decisions.len();
        decisions.into_iter().for_each(saga::record);
        // Outside the locking transaction, in bounded batches, over an index.
        idempotency::delete_expired(&self.db, now).await?;
        Ok(cancelled)
    }

    async fn until_next_deadline(&self) -> Duration {
        match orders::next_deadline(&self.db).await {
            Ok(Some(at)) => (at - self.clock.now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .clamp(Duration::from_millis(20), self.idle),
            _ => self.idle,
        }
    }
}
