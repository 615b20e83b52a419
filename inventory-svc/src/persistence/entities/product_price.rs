//! `product_prices`: every price a product has had, with when it took effect.

use events::ProductId;
use sea_orm::entity::prelude::*;

/// One price of a product, from `effective_at` until the next row's.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product_prices")]
pub struct Model {
    /// Row id, in insertion order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The product.
    pub product_id: ProductId,
    /// Unit price in minor units.
    pub unit_price_minor: i64,
    /// ISO 4217 currency.
    pub currency: String,
    /// When it took effect.
    pub effective_at: DateTimeUtc,
    /// The product's `catalog_version` that carried it.
    pub catalog_version: i64,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
