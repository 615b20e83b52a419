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
//! inventory's; this module names the states, as stored (a typed column)
//! and shown.

use std::fmt;

use event_runtime::Phase;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an order's credit reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum CreditState {
    /// The order's total is held against the customer's credit.
    #[sea_orm(string_value = "RESERVED")]
    Reserved,
    /// The order was refused; nothing is held.
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    /// The hold was given back (or the order was cancelled before it was held).
    #[sea_orm(string_value = "RELEASED")]
    Released,
    /// The order was delivered; the amount is no longer held.
    #[sea_orm(string_value = "SETTLED")]
    Settled,
}

impl From<CreditState> for Phase {
    fn from(state: CreditState) -> Self {
        match state {
            CreditState::Reserved => Phase::Held,
            CreditState::Rejected => Phase::Refused,
            CreditState::Released => Phase::Released,
            CreditState::Settled => Phase::Finished,
        }
    }
}

/// Shown as it is stored.
impl fmt::Display for CreditState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_value())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn states_are_stored_as_they_are_shown() {
        testkit::assert_stored_as_serialized::<super::CreditState>();
    }
}
