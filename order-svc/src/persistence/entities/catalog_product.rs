//! `catalog_products`: order-svc's copy of the catalog, kept from the
//! `catalog` topic. Prices of new orders come from here, never from clients.

use events::ProductId;
use sea_orm::entity::prelude::*;

/// A product as last published.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "catalog_products")]
pub struct Model {
    /// Product id.
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: ProductId,
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Unit price in minor units.
    pub unit_price_minor: i64,
    /// Its currency.
    pub currency: String,
    /// Whether it can be ordered.
    pub active: bool,
    /// `occurred_at` of the event this row comes from.
    pub version_at: DateTimeUtc,
    /// inventory-svc's catalog version of the product (ProductUpserted v2);
    /// `None` for a row from a version-1 event. A row is replaced only by a
    /// newer one (`crate::domain::CatalogVersion::supersedes`).
    pub version: Option<i64>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
