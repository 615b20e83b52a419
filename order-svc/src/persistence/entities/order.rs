//! `orders`: each order and its saga state.

use events::{CustomerId, OrderId, OrderStatus};
use sea_orm::entity::prelude::*;

/// An order.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    /// Order id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// Where the order stands.
    pub status: OrderStatus,
    /// Sum of the lines, in minor units.
    pub total_minor: i64,
    /// Currency of every line.
    pub currency: String,
    /// The shipping address as JSON, if given.
    #[sea_orm(column_type = "Text", nullable)]
    pub shipping_address: Option<String>,
    /// Carrier, once known.
    pub carrier: Option<String>,
    /// Tracking number, once known.
    pub tracking_number: Option<String>,
    /// inventory-svc reserved the stock.
    pub stock_reserved: bool,
    /// customer-svc reserved the credit.
    pub credit_reserved: bool,
    /// When a PENDING order is cancelled if still undecided.
    pub deadline_at: DateTimeUtc,
    /// Why it was rejected or cancelled.
    pub reason: Option<String>,
    /// When it left PENDING.
    pub decided_at: Option<DateTimeUtc>,
    /// When it was placed.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
