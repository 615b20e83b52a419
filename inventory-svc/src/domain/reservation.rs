//! The life of one order's reservation: the saga's participant protocol
//! ([`event_runtime::participant`]) in inventory's words.
//!
//! ```text
//!                 OrderPlaced, all lines available
//!   (none) ────────────────────────────────────────▶ RESERVED ──OrderShipped──▶ COMMITTED
//!     │  │                                             │
//!     │  │ OrderPlaced, a line short                    │ OrderRejected / OrderCancelled
//!     │  └──────────────────────────▶ REJECTED         ▼
//!     │                                             RELEASED
//!     └── OrderRejected / OrderCancelled before OrderPlaced ──▶ RELEASED (no lines)
//! ```
//!
//! The rules of which step an event takes are the protocol's, and a
//! reservation is the protocol's record ([`HoldRecord`]) of its
//! [`event_runtime::Phase`]s; this module names them, as stored and shown.

use event_runtime::{HoldRecord, PhaseNames};
use events::ProductId;

/// How inventory spells the phases of a reservation, stored and shown.
pub const RESERVATION_PHASES: PhaseNames = PhaseNames {
    held: "RESERVED",
    refused: "REJECTED",
    released: "RELEASED",
    finished: "COMMITTED",
};

/// Units of one product that a reservation holds (or held).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReservationLine {
    /// The product.
    pub product_id: ProductId,
    /// Units.
    pub units: i64,
}

/// An order's reservation: the protocol's record, holding lines of units.
pub type Reservation = HoldRecord<Vec<ReservationLine>>;

/// Kinds of entries in the stock ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockMovementKind {
    /// Stock at product creation.
    Initial,
    /// A restock or correction.
    Adjustment,
}

impl StockMovementKind {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "INITIAL",
            Self::Adjustment => "ADJUSTMENT",
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_phase_has_a_name_of_its_own() {
        testkit::assert_phase_names(&super::RESERVATION_PHASES, "SETTLED");
    }
}
