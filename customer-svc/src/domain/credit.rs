//! The life of one order's credit reservation, as a state machine.
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
//! As in inventory, the row exists from the first event about the order,
//! so duplicates, late replies and out-of-order releases find the decision
//! already taken and change nothing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an order's credit reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CreditState {
    /// The order's total is held against the customer's credit.
    Reserved,
    /// The order was refused; nothing is held.
    Rejected,
    /// The hold was given back (or the order was cancelled before it was held).
    Released,
    /// The order was delivered; the amount is no longer held.
    Settled,
}

impl CreditState {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Rejected => "REJECTED",
            Self::Released => "RELEASED",
            Self::Settled => "SETTLED",
        }
    }
}

impl fmt::Display for CreditState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CreditState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RESERVED" => Ok(Self::Reserved),
            "REJECTED" => Ok(Self::Rejected),
            "RELEASED" => Ok(Self::Released),
            "SETTLED" => Ok(Self::Settled),
            other => Err(format!("unknown credit state {other:?}")),
        }
    }
}

/// What a release (OrderRejected, OrderCancelled) does in each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseDecision {
    /// Give the amount back.
    Release,
    /// Record RELEASED with nothing held, so a late OrderPlaced holds nothing.
    Tombstone,
    /// Nothing to do.
    Nothing,
}

/// The release rule.
pub fn on_release(current: Option<CreditState>) -> ReleaseDecision {
    match current {
        None => ReleaseDecision::Tombstone,
        Some(CreditState::Reserved) => ReleaseDecision::Release,
        Some(CreditState::Rejected | CreditState::Released | CreditState::Settled) => {
            ReleaseDecision::Nothing
        }
    }
}

/// Whether a delivery (OrderDelivered) settles: only a RESERVED amount is.
pub fn settles(current: Option<CreditState>) -> bool {
    current == Some(CreditState::Reserved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_and_settle_rules() {
        assert_eq!(on_release(None), ReleaseDecision::Tombstone);
        assert_eq!(
            on_release(Some(CreditState::Reserved)),
            ReleaseDecision::Release
        );
        assert_eq!(
            on_release(Some(CreditState::Settled)),
            ReleaseDecision::Nothing
        );
        assert!(settles(Some(CreditState::Reserved)));
        assert!(!settles(Some(CreditState::Released)));
        assert!(!settles(None));
    }
}
