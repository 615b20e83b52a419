//! Applying the saga's state machine ([`crate::domain::saga`]) to stored
//! orders. Every transition locks the order row, writes the order, and
//! returns the event it causes; the caller writes that event to the outbox
//! and the timeline in the same transaction ([`emit`]). A transition that
//! decides an order (it leaves PENDING) also returns that [`Decision`],
//! which the caller records once its transaction committed.

use chrono::{DateTime, SubsecRound, Utc};
use events::plumbing::Outbox;
use events::{
    Actor, ActorKind, Envelope, Event, OrderCancelled, OrderConfirmed, OrderDelivered, OrderId,
    OrderRejected, OrderShipped, OrderStatus,
};
use sea_orm::{ConnectionTrait, DbErr};

use crate::domain::saga::{Emit, SagaInput, SagaState, Transition, transition};
use crate::persistence::entities::{order, order_event};
use crate::persistence::orders;

/// What the event of a transition needs besides the order.
#[derive(Debug, Clone, Default)]
pub struct Details {
    /// Who cancels, for a cancellation.
    pub actor: Option<Actor>,
    /// Why, for a cancellation.
    pub reason: Option<String>,
    /// Carrier, for a shipment.
    pub carrier: Option<String>,
    /// Tracking number, for a shipment.
    pub tracking_number: Option<String>,
}

/// What applying an input did.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per transition, moved once"
)]
pub enum Outcome {
    /// The order changed; the event to emit, if any.
    Moved {
        /// The order as saved.
        order: order::Model,
        /// The event the transition causes.
        event: Option<Event>,
        /// Set when the order left PENDING.
        decision: Option<Decision>,
    },
    /// Nothing changed (duplicate, late reply, terminal order).
    Ignored(order::Model),
    /// Not allowed now; where the order could go instead.
    NotAllowed {
        /// The order as it is.
        order: order::Model,
        /// Allowed next statuses.
        allowed: Vec<OrderStatus>,
    },
    /// No such order.
    NotFound,
}

/// Applies `input` to the order at time `now`, under its row lock.
///
/// # Errors
/// Database errors.
pub async fn apply(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
    input: &SagaInput,
    details: &Details,
    now: DateTime<Utc>,
) -> Result<Outcome, DbErr> {
    let Some(current) = orders::find_for_update(conn, order_id).await? else {
        return Ok(Outcome::NotFound);
    };
    let outcome = decide(current, input, details, now);
    if let Outcome::Moved { order, .. } = &outcome {
        orders::save_all(conn, vec![order.clone()]).await?;
    }
    Ok(outcome)
}

/// Applies `input` to `current` at time `now`, in memory, by the rules of
/// [`crate::domain::saga`]: the order as it should be saved, and the event
/// to emit. Never [`Outcome::NotFound`].
pub fn decide(
    current: order::Model,
    input: &SagaInput,
    details: &Details,
    now: DateTime<Utc>,
) -> Outcome {
    let status = current.status;
    let state = SagaState {
        status,
        stock_reserved: current.stock_reserved,
        credit_reserved: current.credit_reserved,
    };
    let (next, emit) = match transition(state, input) {
        Transition::Ignore => return Outcome::Ignored(current),
        Transition::NotAllowed { allowed } => {
            return Outcome::NotAllowed {
                order: current,
                allowed,
            };
        }
        Transition::Apply { next, emit } => (next, emit),
    };
    let now = now.trunc_subsecs(6);
    let decided = status == OrderStatus::Pending && next.status != OrderStatus::Pending;
    let decision = emit.as_ref().filter(|_| decided).map(|emit| Decision {
        outcome: outcome_of(emit),
        after: (now - current.created_at).to_std().unwrap_or_default(),
    });
    let event = emit.map(|emit| event_for(&current, emit, details));
    let mut order = current;
    if decided {
        order.decided_at = Some(now);
    }
    order.status = next.status;
    order.stock_reserved = next.stock_reserved;
    order.credit_reserved = next.credit_reserved;
    order.updated_at = now;
    match &event {
        Some(Event::OrderRejected(rejected)) => order.reason = Some(rejected.reason.clone()),
        Some(Event::OrderCancelled(cancelled)) => order.reason = Some(cancelled.reason.clone()),
        Some(Event::OrderShipped(shipped)) => {
            order.carrier = Some(shipped.carrier.clone());
            order.tracking_number = Some(shipped.tracking_number.clone());
        }
        _ => {}
    }
    Outcome::Moved {
        order,
        event,
        decision,
    }
}

/// An order leaving PENDING: how, and how long after it was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// `confirmed`, `rejected`, `cancelled_at_deadline`,
    /// `cancelled_hold_released` or `cancelled_on_request`.
    pub outcome: &'static str,
    /// From placement to decision.
    pub after: std::time::Duration,
}

impl Decision {
    /// Counts it in `oms_order_decision_seconds{outcome}`, a histogram of
    /// the time from placement to decision. Call it once the decision
    /// committed: each instance counts its own, and a sum of their rates
    /// is the system's.
    pub fn record(self) {
        metrics::histogram!("oms_order_decision_seconds", "outcome" => self.outcome)
            .record(self.after.as_secs_f64());
    }
}

/// The `outcome` label of a transition that emits `emit` (only the first
/// five leave PENDING).
fn outcome_of(emit: &Emit) -> &'static str {
    match emit {
        Emit::Confirmed => "confirmed",
        Emit::Rejected(..) => "rejected",
        Emit::CancelledAtDeadline => "cancelled_at_deadline",
        Emit::CancelledForReleasedHold(..) => "cancelled_hold_released",
        Emit::Cancelled => "cancelled_on_request",
        Emit::Shipped => "shipped",
        Emit::Delivered => "delivered",
    }
}

fn event_for(order: &order::Model, emit: Emit, details: &Details) -> Event {
    let order_id = order.id;
    match emit {
        Emit::Confirmed => OrderConfirmed { order_id }.into(),
        Emit::Rejected(rejected_by, reason) => OrderRejected {
            order_id,
            rejected_by,
            reason: bounded(&reason),
        }
        .into(),
        Emit::CancelledAtDeadline => OrderCancelled {
            order_id,
            reason: "the saga deadline passed before stock and credit were both reserved".into(),
            cancelled_by: Actor {
                kind: ActorKind::System,
                id: None,
            },
        }
        .into(),
        Emit::CancelledForReleasedHold(participant, why) => OrderCancelled {
            order_id,
            reason: bounded(&format!(
                "{} released its hold ({why}); the order cannot be fulfilled",
                match participant {
                    events::Participant::Inventory => "inventory-svc",
                    events::Participant::Customer => "customer-svc",
                }
            )),
            cancelled_by: Actor {
                kind: ActorKind::System,
                id: None,
            },
        }
        .into(),
        Emit::Cancelled => OrderCancelled {
            order_id,
            reason: bounded(details.reason.as_deref().unwrap_or("cancelled on request")),
            cancelled_by: details.actor.clone().unwrap_or(Actor {
                kind: ActorKind::System,
                id: None,
            }),
        }
        .into(),
        Emit::Shipped => OrderShipped {
            order_id,
            carrier: details.carrier.clone().unwrap_or_default(),
            tracking_number: details.tracking_number.clone().unwrap_or_default(),
        }
        .into(),
        Emit::Delivered => OrderDelivered { order_id }.into(),
    }
}

/// Reasons travel in events limited to 1000 characters.
fn bounded(reason: &str) -> String {
    let reason = if reason.trim().is_empty() {
        "no reason given"
    } else {
        reason.trim()
    };
    reason.chars().take(1000).collect()
}

/// Writes an event order-svc emits to the outbox and to its order's
/// timeline, in the caller's transaction.
///
/// # Errors
/// Database errors.
pub async fn emit(
    conn: &impl ConnectionTrait,
    outbox: &Outbox,
    envelope: &Envelope,
) -> Result<(), DbErr> {
    outbox.enqueue(conn, envelope).await?;
    orders::record_events(conn, vec![timeline_entry(envelope)]).await
}

/// The reason or detail an event carries, for the timeline.
pub fn reason_of(event: &Event) -> Option<String> {
    match event {
        Event::OrderRejected(e) => Some(e.reason.clone()),
        Event::OrderCancelled(e) => Some(e.reason.clone()),
        Event::StockRejected(e) => Some(e.reason.clone()),
        Event::CustomerRejected(e) => Some(e.detail.clone()),
        Event::OrderShipped(e) => Some(format!("{} {}", e.carrier, e.tracking_number)),
        _ => None,
    }
}

/// The timeline entry of an event about an order.
pub fn timeline_entry(envelope: &Envelope) -> order_event::ActiveModel {
    orders::timeline_entry(envelope, reason_of(&envelope.event))
}
