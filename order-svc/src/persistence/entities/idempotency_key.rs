//! `idempotency_keys`: the first answer to each (customer, Idempotency-Key).

use events::{CustomerId, OrderId};
use sea_orm::entity::prelude::*;

/// A remembered request and its answer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// The caller the key belongs to.
    #[sea_orm(primary_key, auto_increment = false)]
    pub customer_id: CustomerId,
    /// The key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// The request body, canonical JSON.
    #[sea_orm(column_type = "Text")]
    pub request: String,
    /// The order it created.
    pub order_id: OrderId,
    /// The answer given, JSON.
    #[sea_orm(column_type = "Text")]
    pub response: String,
    /// When the key may be forgotten.
    pub expires_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
