//! What the saga's decisions ([`Order::apply`](crate::domain::Order::apply))
//! leave behind besides the order: the event in the outbox and in the
//! order's timeline, written in the caller's transaction ([`emit`]), and
//! the decision's latency, counted once that transaction committed
//! ([`record`]).

use event_runtime::{Outbox, PendingEvent};
use events::Envelope;
use sea_orm::{ConnectionTrait, DbErr};

use crate::domain::{Decision, TimelineEntry};
use crate::persistence::orders;

/// Writes events order-svc emits to the outbox and to their orders'
/// timelines, in the caller's transaction: one statement per table.
///
/// # Errors
/// Database errors.
pub async fn emit(conn: &impl ConnectionTrait, events: Vec<Envelope>) -> Result<(), DbErr> {
    let timeline = events.iter().map(TimelineEntry::of).collect();
    Outbox::enqueue_many(conn, events.into_iter().map(PendingEvent::traced).collect()).await?;
    orders::record_events(conn, timeline).await
}

/// Counts `decision` in `oms_order_decision_seconds{outcome}`, a histogram
/// of the time from placement to decision. Call it once the decision
/// committed: each instance counts its own, and a sum of their rates is the
/// system's.
pub fn record(decision: Decision) {
    metrics::histogram!("oms_order_decision_seconds", "outcome" => decision.outcome)
        .record(decision.after.as_secs_f64());
}
