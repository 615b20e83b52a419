//! `stock_movements`: the ledger of stock entering and leaving by hand
//! (initial stock, restocks, corrections). Reservations are not in it.

use events::ProductId;
use sea_orm::entity::prelude::*;

/// One ledger entry.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_movements")]
pub struct Model {
    /// Entry order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The product.
    pub product_id: ProductId,
    /// `INITIAL` or `ADJUSTMENT`.
    pub kind: String,
    /// Units added (positive) or removed (negative).
    pub delta: i64,
    /// Why.
    pub reason: String,
    /// When.
    pub created_at: DateTimeUtc,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
