//! The life of one order's reservation, as a state machine.
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
//! A reservation row exists from the first event that concerns the order,
//! so every later event finds the decision already taken:
//! - a second OrderPlaced (replayed, or re-published under a new id) changes nothing;
//! - a release of a released, rejected or never-reserved order changes nothing;
//! - an OrderPlaced that arrives after the order was cancelled finds a
//!   RELEASED row and reserves nothing, so no stock leaks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where an order's reservation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReservationState {
    /// Every line is held for the order.
    Reserved,
    /// The order could not be reserved; nothing is held.
    Rejected,
    /// The hold was given back (or the order was cancelled before it was held).
    Released,
    /// The units left stock with the shipment.
    Committed,
}

impl ReservationState {
    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "RESERVED",
            Self::Rejected => "REJECTED",
            Self::Released => "RELEASED",
            Self::Committed => "COMMITTED",
        }
    }
}

impl fmt::Display for ReservationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReservationState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RESERVED" => Ok(Self::Reserved),
            "REJECTED" => Ok(Self::Rejected),
            "RELEASED" => Ok(Self::Released),
            "COMMITTED" => Ok(Self::Committed),
            other => Err(format!("unknown reservation state {other:?}")),
        }
    }
}

/// What a release request does, given the current state (`None`: no row yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseDecision {
    /// Give the units back and mark RELEASED.
    Release,
    /// Record RELEASED without lines, so a late OrderPlaced reserves nothing.
    Tombstone,
    /// Nothing to do.
    Nothing,
}

/// The release rule.
pub fn on_release(current: Option<ReservationState>) -> ReleaseDecision {
    match current {
        None => ReleaseDecision::Tombstone,
        Some(ReservationState::Reserved) => ReleaseDecision::Release,
        Some(
            ReservationState::Rejected | ReservationState::Released | ReservationState::Committed,
        ) => ReleaseDecision::Nothing,
    }
}

/// What a shipment does, given the current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitDecision {
    /// Move the units from reserved to committed.
    Commit,
    /// Already committed.
    Nothing,
    /// The order holds no stock: shipping it is a saga error.
    Refuse(String),
}

/// The commit rule.
pub fn on_commit(current: Option<ReservationState>) -> CommitDecision {
    match current {
        Some(ReservationState::Reserved) => CommitDecision::Commit,
        Some(ReservationState::Committed) => CommitDecision::Nothing,
        Some(state) => CommitDecision::Refuse(format!(
            "the order's reservation is {state}; nothing to ship"
        )),
        None => CommitDecision::Refuse("the order has no reservation; nothing to ship".into()),
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
    use super::*;

    #[test]
    fn release_rules() {
        assert_eq!(on_release(None), ReleaseDecision::Tombstone);
        assert_eq!(
            on_release(Some(ReservationState::Reserved)),
            ReleaseDecision::Release
        );
        for state in [
            ReservationState::Rejected,
            ReservationState::Released,
            ReservationState::Committed,
        ] {
            assert_eq!(on_release(Some(state)), ReleaseDecision::Nothing);
        }
    }

    #[test]
    fn commit_rules() {
        assert_eq!(
            on_commit(Some(ReservationState::Reserved)),
            CommitDecision::Commit
        );
        assert_eq!(
            on_commit(Some(ReservationState::Committed)),
            CommitDecision::Nothing
        );
        assert!(matches!(
            on_commit(Some(ReservationState::Released)),
            CommitDecision::Refuse(_)
        ));
        assert!(matches!(on_commit(None), CommitDecision::Refuse(_)));
    }

    #[test]
    fn states_round_trip_through_their_spelling() {
        for state in [
            ReservationState::Reserved,
            ReservationState::Rejected,
            ReservationState::Released,
            ReservationState::Committed,
        ] {
            assert_eq!(state.as_str().parse::<ReservationState>().unwrap(), state);
        }
    }
}
