//! The life of one order's credit reservation: the saga's participant
//! protocol ([`event_runtime::participant`]) in customer-svc's words.
//!
//! ```text
//!                 OrderPlaced, customer active, total fits
//!   (none) ──────────────────────────────────────────▶ RESERVED ──OrderDelivered──▶ SETTLED
//!     │  │                                                │
//!     │  │ OrderPlaced, unknown / suspended / over limit  │ OrderRejected / OrderCancelled
//!     │  └─────────────────────────────▶ REJECTED         ▼
//!     │                                                RELEASED
//!     └── OrderRejected / OrderCancelled before OrderPlaced ──▶ RELEASED (nothing held)
//! ```
//!
//! The rules of which step an event takes are the protocol's, the same as
//! inventory's, and a credit reservation is the protocol's record
//! ([`HoldRecord`]) of its [`event_runtime::Phase`]s; this module names
//! them, as stored and shown.

use event_runtime::{HoldRecord, PhaseNames};
use events::{Currency, CustomerId, Money};

/// How customer-svc spells the phases of a credit reservation, stored and
/// shown.
pub const CREDIT_PHASES: PhaseNames = PhaseNames {
    held: "RESERVED",
    refused: "REJECTED",
    released: "RELEASED",
    finished: "SETTLED",
};

/// What a credit reservation holds: an order's total, of its customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldCredit {
    /// The customer named by the order (nil for an order released before
    /// it was placed).
    pub customer_id: CustomerId,
    /// The order's total (nothing, for a refusal or a tombstone).
    pub amount: Money,
}

/// A tombstone's: nobody's, nothing.
impl Default for HeldCredit {
    fn default() -> Self {
        Self {
            customer_id: CustomerId::nil(),
            amount: Money::zero(Currency::none()),
        }
    }
}

/// An order's credit reservation: the protocol's record, holding credit.
pub type CreditReservation = HoldRecord<HeldCredit>;

#[cfg(test)]
mod tests {
    #[test]
    fn every_phase_has_a_name_of_its_own() {
        testkit::assert_phase_names(&super::CREDIT_PHASES, "COMMITTED");
    }
}
