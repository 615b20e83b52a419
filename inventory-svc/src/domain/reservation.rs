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
//! The rules of which step an event takes are the protocol's; this module
//! names the states, as stored (a typed column) and shown.

use std::fmt;

use event_runtime::Phase;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an order's reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ReservationState {
    /// Every line is held for the order.
    #[sea_orm(string_value = "RESERVED")]
    Reserved,
    /// The order could not be reserved; nothing is held.
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    /// The hold was given back (or the order was cancelled before it was held).
    #[sea_orm(string_value = "RELEASED")]
    Released,
    /// The units left stock with the shipment.
    #[sea_orm(string_value = "COMMITTED")]
    Committed,
}

impl From<ReservationState> for Phase {
    fn from(state: ReservationState) -> Self {
        match state {
            ReservationState::Reserved => Phase::Held,
            ReservationState::Rejected => Phase::Refused,
            ReservationState::Released => Phase::Released,
            ReservationState::Committed => Phase::Finished,
        }
    }
}

/// Shown as it is stored.
impl fmt::Display for ReservationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_value())
    }
}

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
    fn states_are_stored_as_they_are_shown() {
        testkit::assert_stored_as_serialized::<super::ReservationState>();
    }
}
