//! `reservations`: one row per order inventory has heard of.

use events::OrderId;
use sea_orm::entity::prelude::*;

use crate::domain::RESERVATION_PHASES;

/// An order's reservation and its state (see `domain::reservation`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reservations")]
pub struct Model {
    /// The order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: OrderId,
    /// Its phase, as [`RESERVATION_PHASES`] spells it.
    pub state: String,
    /// Why it was rejected, when it was.
    pub reason: Option<String>,
    /// The order's deadline while the reservation holds and the order is
    /// undecided; NULL otherwise (see `app::stock`).
    pub deadline_at: Option<DateTimeUtc>,
    /// First decision.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

event_runtime::impl_hold_table!(RESERVATION_PHASES);
