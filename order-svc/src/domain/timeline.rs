//! An order's timeline: every saga event it emitted or received, with the
//! reason or detail the event carries.

use chrono::{DateTime, Utc};
use events::{Envelope, Event, EventId, OrderId};

/// One event in an order's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    /// The order.
    pub order_id: OrderId,
    /// The event's id; an event is recorded once.
    pub event_id: EventId,
    /// Its type, e.g. `StockReserved`.
    pub event_type: String,
    /// The service that produced it.
    pub producer: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Its reason or detail, if it has one.
    pub reason: Option<String>,
}

impl TimelineEntry {
    /// The entry of an event about an order (keyed by it).
    pub fn of(envelope: &Envelope) -> Self {
        Self {
            order_id: envelope.order_id(),
            event_id: envelope.event_id,
            event_type: envelope.event.event_type().to_owned(),
            producer: envelope.producer.clone(),
            occurred_at: envelope.occurred_at,
            reason: reason_of(&envelope.event),
        }
    }
}

/// The reason or detail an event carries, for the timeline.
fn reason_of(event: &Event) -> Option<String> {
    match event {
        Event::OrderRejected(e) => Some(e.reason.clone()),
        Event::OrderCancelled(e) => Some(e.reason.clone()),
        Event::StockRejected(e) => Some(e.reason.clone()),
        Event::CustomerRejected(e) => Some(e.detail.clone()),
        Event::OrderShipped(e) => Some(format!("{} {}", e.carrier, e.tracking_number)),
        _ => None,
    }
}
