//! `products`: the catalog and each product's stock figures.

use events::ProductId;
use sea_orm::entity::prelude::*;

/// A product and its stock. Invariant (checked by the database):
/// `available`, `reserved` and `committed` are never negative.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    /// Product id (UUIDv7).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ProductId,
    /// Unique SKU.
    #[sea_orm(unique)]
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Unit price in minor units.
    pub unit_price_minor: i64,
    /// ISO 4217 currency of the price.
    pub currency: String,
    /// Whether it can be ordered.
    pub active: bool,
    /// Units that can be reserved.
    pub available: i64,
    /// Units held for open orders.
    pub reserved: i64,
    /// Units shipped.
    pub committed: i64,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change of any field.
    pub updated_at: DateTimeUtc,
    /// Catalog version: one more at every change of the catalog fields
    /// (sku, name, price, active), carried by each ProductUpserted.
    pub catalog_version: i64,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
