//! The order saga as one state machine: every transition of an order is
//! decided here, and only here.
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

use events::{OrderStatus, Participant};

/// What the saga knows about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SagaState {
    /// The order's status.
    pub status: OrderStatus,
    /// inventory-svc answered StockReserved.
    pub stock_reserved: bool,
    /// customer-svc answered CreditReserved.
    pub credit_reserved: bool,
}

/// Something that may move an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaInput {
    /// A participant reserved its part.
    Reserved(Participant),
    /// A participant refused, with its reason.
    Refused(Participant, String),
    /// The saga's deadline passed with the order still PENDING.
    DeadlinePassed,
    /// A participant gave its hold back on its own (its hold expired, or an
    /// operator released it), with the reason it gave: the order can no
    /// longer be fulfilled.
    HoldReleased(Participant, String),
    /// A person cancelled the order.
    Cancel,
    /// An admin handed it to a carrier.
    Ship,
    /// An admin recorded the delivery.
    Deliver,
}

/// The event a transition emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Emit {
    /// OrderConfirmed.
    Confirmed,
    /// OrderRejected by the participant, with its reason.
    Rejected(Participant, String),
    /// OrderCancelled by the system at the deadline.
    CancelledAtDeadline,
    /// OrderCancelled by a person.
    Cancelled,
    /// OrderCancelled by the system because a participant released its
    /// hold, with the participant's reason.
    CancelledForReleasedHold(Participant, String),
    /// OrderShipped.
    Shipped,
    /// OrderDelivered.
    Delivered,
}

/// The outcome of applying an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// The order moves (or records a reservation) and maybe emits an event.
    Apply {
        /// The state after.
        next: SagaState,
        /// What to emit, if anything.
        emit: Option<Emit>,
    },
    /// Nothing changes: a duplicate, a late reply, a terminal order.
    Ignore,
    /// The input is not allowed in this state (an HTTP caller gets 409).
    NotAllowed {
        /// The statuses the order could move to from here.
        allowed: Vec<OrderStatus>,
    },
}

/// Whether no input moves an order in `status` any more.
pub fn is_terminal(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Delivered
    )
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

/// The transition function.
pub fn transition(state: SagaState, input: &SagaInput) -> Transition {
    use OrderStatus::*;
    let moved = |status: OrderStatus, emit: Emit| Transition::Apply {
        next: SagaState { status, ..state },
        emit: Some(emit),
    };
    match (state.status, input) {
        (Pending, SagaInput::Reserved(participant)) => {
            let mut next = state;
            match participant {
                Participant::Inventory if !state.stock_reserved => next.stock_reserved = true,
                Participant::Customer if !state.credit_reserved => next.credit_reserved = true,
                _ => return Transition::Ignore,
            }
            if next.stock_reserved && next.credit_reserved {
                next.status = Confirmed;
                Transition::Apply {
                    next,
                    emit: Some(Emit::Confirmed),
                }
            } else {
                Transition::Apply { next, emit: None }
            }
        }
        (Pending, SagaInput::Refused(participant, reason)) => {
            moved(Rejected, Emit::Rejected(*participant, reason.clone()))
        }
        (Pending, SagaInput::DeadlinePassed) => moved(Cancelled, Emit::CancelledAtDeadline),
        (Pending | Confirmed, SagaInput::Cancel) => moved(Cancelled, Emit::Cancelled),
        (Pending | Confirmed, SagaInput::HoldReleased(participant, reason)) => moved(
            Cancelled,
            Emit::CancelledForReleasedHold(*participant, reason.clone()),
        ),
        (Confirmed, SagaInput::Ship) => moved(Shipped, Emit::Shipped),
        (Shipped, SagaInput::Deliver) => moved(Delivered, Emit::Delivered),
        // Replies and deadlines never move an order that left PENDING.
        (
            _,
            SagaInput::Reserved(_)
            | SagaInput::Refused(..)
            | SagaInput::DeadlinePassed
            | SagaInput::HoldReleased(..),
        ) => Transition::Ignore,
        (status, SagaInput::Cancel | SagaInput::Ship | SagaInput::Deliver) => {
            Transition::NotAllowed {
                allowed: allowed_next(status),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;

    #[test]
    fn a_hold_released_on_its_own_cancels_an_order_until_it_ships() {
        let released = SagaInput::HoldReleased(Participant::Inventory, "HOLD_EXPIRED".into());
        for status in [Pending, Confirmed] {
            let state = SagaState {
                status,
                ..pending()
            };
            assert_eq!(
                transition(state, &released),
                Transition::Apply {
                    next: SagaState {
                        status: Cancelled,
                        ..state
                    },
                    emit: Some(Emit::CancelledForReleasedHold(
                        Participant::Inventory,
                        "HOLD_EXPIRED".into()
                    )),
                },
                "{status:?}"
            );
        }
        for status in [Shipped, Delivered, Rejected, Cancelled] {
            let state = SagaState {
                status,
                ..pending()
            };
            assert_eq!(
                transition(state, &released),
                Transition::Ignore,
                "{status:?}"
            );
        }
    }

    fn pending() -> SagaState {
        SagaState {
            status: Pending,
            stock_reserved: false,
            credit_reserved: false,
        }
    }

    fn apply(state: SagaState, input: SagaInput) -> SagaState {
        match transition(state, &input) {
            Transition::Apply { next, .. } => next,
            other => panic!("{input:?} in {state:?}: {other:?}"),
        }
    }

    #[test]
    fn both_reservations_in_either_order_confirm_once() {
        for (first, second) in [
            (Participant::Inventory, Participant::Customer),
            (Participant::Customer, Participant::Inventory),
        ] {
            let half = apply(pending(), SagaInput::Reserved(first));
            assert_eq!(half.status, Pending);
            assert_eq!(
                transition(half, &SagaInput::Reserved(first)),
                Transition::Ignore,
                "duplicate"
            );
            let Transition::Apply { next, emit } = transition(half, &SagaInput::Reserved(second))
            else {
                panic!()
            };
            assert_eq!((next.status, emit), (Confirmed, Some(Emit::Confirmed)));
            assert_eq!(
                transition(next, &SagaInput::Reserved(second)),
                Transition::Ignore,
                "late duplicate"
            );
        }
    }

    #[test]
    fn a_refusal_rejects_and_later_replies_change_nothing() {
        let half = apply(pending(), SagaInput::Reserved(Participant::Inventory));
        let rejected = apply(
            half,
            SagaInput::Refused(Participant::Customer, "over limit".into()),
        );
        assert_eq!(rejected.status, Rejected);
        for input in [
            SagaInput::Reserved(Participant::Customer),
            SagaInput::Refused(Participant::Inventory, "short".into()),
            SagaInput::DeadlinePassed,
        ] {
            assert_eq!(transition(rejected, &input), Transition::Ignore);
        }
        assert_eq!(
            transition(rejected, &SagaInput::Cancel),
            Transition::NotAllowed { allowed: vec![] }
        );
    }

    #[test]
    fn deadline_cancels_only_pending_orders() {
        assert_eq!(
            apply(pending(), SagaInput::DeadlinePassed).status,
            Cancelled
        );
        let confirmed = SagaState {
            status: Confirmed,
            stock_reserved: true,
            credit_reserved: true,
        };
        assert_eq!(
            transition(confirmed, &SagaInput::DeadlinePassed),
            Transition::Ignore
        );
    }

    #[test]
    fn fulfilment_and_cancellation_rules() {
        let confirmed = SagaState {
            status: Confirmed,
            stock_reserved: true,
            credit_reserved: true,
        };
        assert_eq!(apply(confirmed, SagaInput::Cancel).status, Cancelled);
        let shipped = apply(confirmed, SagaInput::Ship);
        assert_eq!(shipped.status, Shipped);
        assert_eq!(
            transition(shipped, &SagaInput::Cancel),
            Transition::NotAllowed {
                allowed: vec![Delivered]
            }
        );
        assert_eq!(apply(shipped, SagaInput::Deliver).status, Delivered);
        assert_eq!(
            transition(pending(), &SagaInput::Ship),
            Transition::NotAllowed {
                allowed: vec![Confirmed, Rejected, Cancelled]
            }
        );
        assert!(is_terminal(Delivered) && is_terminal(Rejected) && is_terminal(Cancelled));
        assert!(!is_terminal(Shipped));
    }
}
