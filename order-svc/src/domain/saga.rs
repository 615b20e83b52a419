//! The order saga as one state machine: every transition of an order is
//! decided here, by [`Order::apply`], and only here.
//!
//! ```text
//!                 StockReserved + CreditReserved (both, in any order)
//!   PENDING ──────────────────────────────────────────────▶ CONFIRMED ──ship──▶ SHIPPED ──deliver──▶ DELIVERED
//!     │  │  │                                                  │
//!     │  │  └── StockRejected or CustomerRejected ──▶ REJECTED │
//!     │  └──── cancel ─────────────────────────────▶ CANCELLED ◀── cancel
//!     └─────── deadline passed ────────────────────▶ CANCELLED
//! ```
//!
//! | state | input | next | event emitted |
//! |---|---|---|---|
//! | PENDING | StockReserved / CreditReserved, the other not yet | PENDING | (none) |
//! | PENDING | the second of StockReserved, CreditReserved | CONFIRMED | OrderConfirmed |
//! | PENDING | StockRejected / CustomerRejected | REJECTED | OrderRejected |
//! | PENDING | deadline passed | CANCELLED | OrderCancelled (by the system) |
//! | PENDING, CONFIRMED | cancel | CANCELLED | OrderCancelled |
//! | PENDING, CONFIRMED | a participant released its hold on its own (expired, or by an operator) | CANCELLED | OrderCancelled (by the system, naming the release) |
//! | CONFIRMED | ship | SHIPPED | OrderShipped |
//! | SHIPPED | deliver | DELIVERED | OrderDelivered |
//! | REJECTED, CANCELLED, DELIVERED | any reply | unchanged | (none): terminal |
//! | any | a duplicate reply | unchanged | (none) |
//!
//! Compensation is the participants' part: on OrderRejected and
//! OrderCancelled each releases whatever it holds for the order, including
//! a reservation it makes after the fact (the orders topic delivers the
//! OrderPlaced before the OrderRejected/OrderCancelled of the same order).
//! So a late or duplicate reply here changes nothing and never triggers a
//! second compensation.

use chrono::{DateTime, SubsecRound, Utc};
use events::{
    Actor, ActorKind, Event, OrderCancelled, OrderConfirmed, OrderDelivered, OrderRejected,
    OrderShipped, OrderStatus, Participant,
};

use super::order::Order;
use super::values::{Carrier, Reason, TrackingNumber};

/// Something that may move an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaInput {
    /// A participant reserved its part.
    Reserved(Participant),
    /// A participant refused, with its reason.
    Refused(Participant, Reason),
    /// The saga's deadline passed with the order still PENDING.
    DeadlinePassed,
    /// A participant gave its hold back on its own (its hold expired, or an
    /// operator released it), with the reason it gave: the order can no
    /// longer be fulfilled.
    HoldReleased(Participant, String),
    /// A person cancelled the order.
    Cancel {
        /// Who.
        by: Actor,
        /// Why, if they said.
        reason: Option<Reason>,
    },
    /// An admin handed it to a carrier.
    Ship {
        /// The carrier.
        carrier: Carrier,
        /// Its tracking number.
        tracking_number: TrackingNumber,
    },
    /// An admin recorded the delivery.
    Deliver,
}

impl SagaInput {
    /// Whether this is a fulfilment step (ship or deliver), which an admin
    /// asks for by the status it leads to.
    fn is_fulfilment(&self) -> bool {
        matches!(self, Self::Ship { .. } | Self::Deliver)
    }
}

/// What applying an input did.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per transition, moved once"
)]
pub enum Applied {
    /// The order moved or recorded a reservation.
    Moved {
        /// The event the move causes, if any.
        event: Option<Event>,
        /// Set when the order left PENDING.
        decision: Option<Decision>,
    },
    /// Nothing changed: a duplicate, a late reply, a terminal order.
    Unchanged,
}

/// An input the order's status does not allow (an HTTP caller gets 409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAllowed {
    /// The order's status.
    pub from: OrderStatus,
    /// Where it could go instead, by the same kind of request.
    pub allowed: Vec<OrderStatus>,
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

/// The statuses an order in `status` may move to.
pub fn allowed_next(status: OrderStatus) -> Vec<OrderStatus> {
    use OrderStatus::*;
    match status {
        Pending => vec![Confirmed, Rejected, Cancelled],
        Confirmed => vec![Shipped, Cancelled],
        Shipped => vec![Delivered],
        Rejected | Cancelled | Delivered => vec![],
    }
}

/// The fulfilment steps (to SHIPPED or DELIVERED) an order in `status`
/// may take: the part of [`allowed_next`] an admin's status change asks for.
pub fn fulfilment_moves(status: OrderStatus) -> Vec<OrderStatus> {
    allowed_next(status)
        .into_iter()
        .filter(|next| matches!(next, OrderStatus::Shipped | OrderStatus::Delivered))
        .collect()
}

fn system() -> Actor {
    Actor {
        kind: ActorKind::System,
        id: None,
    }
}

impl Order {
    /// Applies `input` at time `now`: the order changes in place, and the
    /// answer says which event that causes.
    ///
    /// # Errors
    /// [`NotAllowed`] for a person's request (cancel, ship, deliver) that
    /// the order's status does not allow; replies and deadlines that come
    /// too late are [`Applied::Unchanged`] instead.
    pub fn apply(&mut self, input: SagaInput, now: DateTime<Utc>) -> Result<Applied, NotAllowed> {
        use OrderStatus::*;
        let order_id = self.id;
        let (status, event, outcome): (OrderStatus, Event, &'static str) =
            match (self.status, input) {
                (Pending, SagaInput::Reserved(participant)) => {
                    let reserved = match participant {
                        Participant::Inventory => &mut self.stock_reserved,
                        Participant::Customer => &mut self.credit_reserved,
                    };
                    if *reserved {
                        return Ok(Applied::Unchanged);
                    }
                    *reserved = true;
                    if !(self.stock_reserved && self.credit_reserved) {
                        self.updated_at = now.trunc_subsecs(6);
                        return Ok(Applied::Moved {
                            event: None,
                            decision: None,
                        });
                    }
                    (Confirmed, OrderConfirmed { order_id }.into(), "confirmed")
                }
                (Pending, SagaInput::Refused(rejected_by, reason)) => (
                    Rejected,
                    OrderRejected {
                        order_id,
                        rejected_by,
                        reason: reason.into(),
                    }
                    .into(),
                    "rejected",
                ),
                (Pending, SagaInput::DeadlinePassed) => (
                    Cancelled,
                    OrderCancelled {
                        order_id,
                        reason:
                            "the saga deadline passed before stock and credit were both reserved"
                                .into(),
                        cancelled_by: system(),
                    }
                    .into(),
                    "cancelled_at_deadline",
                ),
                (Pending | Confirmed, SagaInput::Cancel { by, reason }) => (
                    Cancelled,
                    OrderCancelled {
                        order_id,
                        reason: reason
                            .unwrap_or_else(|| Reason::lenient("cancelled on request"))
                            .into(),
                        cancelled_by: by,
                    }
                    .into(),
                    "cancelled_on_request",
                ),
                (Pending | Confirmed, SagaInput::HoldReleased(participant, why)) => {
                    let service = match participant {
                        Participant::Inventory => "inventory-svc",
                        Participant::Customer => "customer-svc",
                    };
                    let reason = Reason::lenient(&format!(
                        "{service} released its hold ({why}); the order cannot be fulfilled"
                    ));
                    (
                        Cancelled,
                        OrderCancelled {
                            order_id,
                            reason: reason.into(),
                            cancelled_by: system(),
                        }
                        .into(),
                        "cancelled_hold_released",
                    )
                }
                (
                    Confirmed,
                    SagaInput::Ship {
                        carrier,
                        tracking_number,
                    },
                ) => {
                    self.carrier = Some(carrier.clone());
                    self.tracking_number = Some(tracking_number.clone());
                    (
                        Shipped,
                        OrderShipped {
                            order_id,
                            carrier: carrier.into(),
                            tracking_number: tracking_number.into(),
                        }
                        .into(),
                        "shipped",
                    )
                }
                (Shipped, SagaInput::Deliver) => {
                    (Delivered, OrderDelivered { order_id }.into(), "delivered")
                }
                // Replies and deadlines never move an order that left PENDING.
                (
                    _,
                    SagaInput::Reserved(_)
                    | SagaInput::Refused(..)
                    | SagaInput::DeadlinePassed
                    | SagaInput::HoldReleased(..),
                ) => return Ok(Applied::Unchanged),
                (from, input) => {
                    return Err(NotAllowed {
                        from,
                        allowed: if input.is_fulfilment() {
                            fulfilment_moves(from)
                        } else {
                            allowed_next(from)
                        },
                    });
                }
            };
        let now = now.trunc_subsecs(6);
        let decision = (self.status == Pending).then(|| {
            self.decided_at = Some(now);
            Decision {
                outcome,
                after: (now - self.created_at).to_std().unwrap_or_default(),
            }
        });
        match &event {
            Event::OrderRejected(rejected) => self.reason = Some(Reason::lenient(&rejected.reason)),
            Event::OrderCancelled(cancelled) => {
                self.reason = Some(Reason::lenient(&cancelled.reason));
            }
            _ => {}
        }
        self.status = status;
        self.updated_at = now;
        Ok(Applied::Moved {
            event: Some(event),
            decision,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::OrderWithLines;
    use crate::domain::order::tests::product;
    use crate::domain::{CatalogProduct, NewOrder};
    use OrderStatus::*;
    use events::{CustomerId, OrderId};
    use std::collections::HashMap;

    fn pending() -> Order {
        let pen = product(100, "EUR");
        let catalog: HashMap<_, CatalogProduct> = [(pen.product_id, pen.clone())].into();
        let (OrderWithLines { order, .. }, _) =
            NewOrder::parse(CustomerId::generate(), &[(pen.product_id, 1)])
                .unwrap()
                .place(
                    OrderId::generate(),
                    &catalog,
                    std::time::Duration::from_secs(30),
                    Utc::now(),
                )
                .unwrap();
        order
    }

    fn in_status(status: OrderStatus) -> Order {
        let mut order = pending();
        order.status = status;
        order
    }

    fn emitted(order: &mut Order, input: SagaInput) -> Option<Event> {
        match order.apply(input.clone(), Utc::now()) {
            Ok(Applied::Moved { event, .. }) => event,
            other => panic!("{input:?} in {:?}: {other:?}", order.status),
        }
    }

    fn cancel() -> SagaInput {
        SagaInput::Cancel {
            by: system(),
            reason: None,
        }
    }

    fn ship() -> SagaInput {
        SagaInput::Ship {
            carrier: Carrier::parse("carrier", "DHL").unwrap(),
            tracking_number: TrackingNumber::parse("tracking_number", "T1").unwrap(),
        }
    }

    #[test]
    fn a_hold_released_on_its_own_cancels_an_order_until_it_ships() {
        let released = SagaInput::HoldReleased(Participant::Inventory, "HOLD_EXPIRED".into());
        for status in [Pending, Confirmed] {
            let mut order = in_status(status);
            let Some(Event::OrderCancelled(cancelled)) = emitted(&mut order, released.clone())
            else {
                panic!("{status:?}")
            };
            assert_eq!(order.status, Cancelled);
            assert!(
                cancelled
                    .reason
                    .contains("inventory-svc released its hold (HOLD_EXPIRED)")
            );
        }
        for status in [Shipped, Delivered, Rejected, Cancelled] {
            let mut order = in_status(status);
            assert_eq!(
                order.apply(released.clone(), Utc::now()),
                Ok(Applied::Unchanged),
                "{status:?}"
            );
        }
    }

    #[test]
    fn both_reservations_in_either_order_confirm_once() {
        for (first, second) in [
            (Participant::Inventory, Participant::Customer),
            (Participant::Customer, Participant::Inventory),
        ] {
            let mut order = pending();
            assert_eq!(emitted(&mut order, SagaInput::Reserved(first)), None);
            assert_eq!(order.status, Pending);
            assert_eq!(
                order.apply(SagaInput::Reserved(first), Utc::now()),
                Ok(Applied::Unchanged),
                "duplicate"
            );
            let Ok(Applied::Moved { event, decision }) =
                order.apply(SagaInput::Reserved(second), Utc::now())
            else {
                panic!()
            };
            assert!(matches!(event, Some(Event::OrderConfirmed(_))));
            assert_eq!(decision.map(|d| d.outcome), Some("confirmed"));
            assert_eq!(order.status, Confirmed);
            assert_eq!(
                order.apply(SagaInput::Reserved(second), Utc::now()),
                Ok(Applied::Unchanged),
                "late duplicate"
            );
        }
    }

    #[test]
    fn a_refusal_rejects_and_later_replies_change_nothing() {
        let mut order = pending();
        emitted(&mut order, SagaInput::Reserved(Participant::Inventory));
        let refused = SagaInput::Refused(Participant::Customer, Reason::lenient("over limit"));
        assert!(matches!(
            emitted(&mut order, refused),
            Some(Event::OrderRejected(_))
        ));
        assert_eq!(order.status, Rejected);
        assert_eq!(order.reason, Some(Reason::lenient("over limit")));
        for input in [
            SagaInput::Reserved(Participant::Customer),
            SagaInput::Refused(Participant::Inventory, Reason::lenient("short")),
            SagaInput::DeadlinePassed,
        ] {
            assert_eq!(order.apply(input, Utc::now()), Ok(Applied::Unchanged));
        }
        assert_eq!(
            order.apply(cancel(), Utc::now()),
            Err(NotAllowed {
                from: Rejected,
                allowed: vec![]
            })
        );
    }

    #[test]
    fn deadline_cancels_only_pending_orders() {
        let mut order = pending();
        emitted(&mut order, SagaInput::DeadlinePassed);
        assert_eq!(order.status, Cancelled);
        assert!(order.decided_at.is_some());
        let mut confirmed = in_status(Confirmed);
        assert_eq!(
            confirmed.apply(SagaInput::DeadlinePassed, Utc::now()),
            Ok(Applied::Unchanged)
        );
    }

    #[test]
    fn fulfilment_and_cancellation_rules() {
        let mut cancelled = in_status(Confirmed);
        emitted(&mut cancelled, cancel());
        assert_eq!(cancelled.status, Cancelled);

        let mut order = in_status(Confirmed);
        emitted(&mut order, ship());
        assert_eq!(order.status, Shipped);
        assert_eq!(order.carrier.as_ref().map(Carrier::as_str), Some("DHL"));
        assert_eq!(
            order.apply(cancel(), Utc::now()),
            Err(NotAllowed {
                from: Shipped,
                allowed: vec![Delivered]
            })
        );
        emitted(&mut order, SagaInput::Deliver);
        assert_eq!(order.status, Delivered);
        assert!(order.is_terminal());
        assert_eq!(
            pending().apply(ship(), Utc::now()),
            Err(NotAllowed {
                from: Pending,
                allowed: vec![]
            }),
            "a PENDING order has no fulfilment step"
        );
        assert_eq!(
            pending().apply(SagaInput::Deliver, Utc::now()),
            Err(NotAllowed {
                from: Pending,
                allowed: vec![]
            })
        );
        assert_eq!(fulfilment_moves(Confirmed), vec![Shipped]);
        assert_eq!(allowed_next(Pending), vec![Confirmed, Rejected, Cancelled]);
    }
}
