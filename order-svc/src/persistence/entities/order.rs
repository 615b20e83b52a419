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
    pub status: StoredStatus,
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

/// [`OrderStatus`] as a column: its wire spelling. The contract crate
/// knows nothing of databases, so the column type lives here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum StoredStatus {
    /// [`OrderStatus::Pending`].
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// [`OrderStatus::Confirmed`].
    #[sea_orm(string_value = "CONFIRMED")]
    Confirmed,
    /// [`OrderStatus::Rejected`].
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    /// [`OrderStatus::Cancelled`].
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
    /// [`OrderStatus::Shipped`].
    #[sea_orm(string_value = "SHIPPED")]
    Shipped,
    /// [`OrderStatus::Delivered`].
    #[sea_orm(string_value = "DELIVERED")]
    Delivered,
}

impl From<OrderStatus> for StoredStatus {
    fn from(status: OrderStatus) -> Self {
        match status {
            OrderStatus::Pending => Self::Pending,
            OrderStatus::Confirmed => Self::Confirmed,
            OrderStatus::Rejected => Self::Rejected,
            OrderStatus::Cancelled => Self::Cancelled,
            OrderStatus::Shipped => Self::Shipped,
            OrderStatus::Delivered => Self::Delivered,
        }
    }
}

impl From<StoredStatus> for OrderStatus {
    fn from(status: StoredStatus) -> Self {
        match status {
            StoredStatus::Pending => Self::Pending,
            StoredStatus::Confirmed => Self::Confirmed,
            StoredStatus::Rejected => Self::Rejected,
            StoredStatus::Cancelled => Self::Cancelled,
            StoredStatus::Shipped => Self::Shipped,
            StoredStatus::Delivered => Self::Delivered,
        }
    }
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Iterable;

    /// A stored status is spelt as it is published, and reads back as itself.
    #[test]
    fn every_status_is_stored_as_it_is_published() {
        let mut statuses = 0;
        for stored in StoredStatus::iter() {
            let status = OrderStatus::from(stored);
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::Value::String(stored.to_value())
            );
            assert_eq!(StoredStatus::from(status), stored);
            statuses += 1;
        }
        assert_eq!(statuses, 6);
    }
}
