//! `credit_reservations`: one row per order customer-svc has heard of.

use events::{CustomerId, OrderId};
use sea_orm::entity::prelude::*;

use crate::domain::CREDIT_PHASES;

/// An order's credit reservation (see `domain::credit`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_reservations")]
pub struct Model {
    /// The order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: OrderId,
    /// The customer named by the order.
    pub customer_id: CustomerId,
    /// The order's total, in minor units (0 for a tombstone).
    pub amount_minor: i64,
    /// Its currency.
    pub currency: String,
    /// Its phase, as [`CREDIT_PHASES`] spells it.
    pub state: String,
    /// Why it was rejected, when it was.
    pub reason: Option<String>,
    /// The order's deadline while the reservation holds and the order is
    /// undecided; NULL otherwise (see `app::credit`).
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

event_runtime::impl_hold_table!(CREDIT_PHASES);
