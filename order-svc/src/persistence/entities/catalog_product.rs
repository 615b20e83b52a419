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
    /// higher version (or, between version-1 rows, a later `occurred_at`).
    pub version: Option<i64>,
}

impl Model {
    /// Whether `self` is at least as new as `stored`: by catalog version
    /// when `self` has one (any version beats none), by time only between
    /// two rows of version-1 events.
    pub fn supersedes(&self, stored: &Model) -> bool {
        match (self.version, stored.version) {
            (Some(new), Some(old)) => new >= old,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => stored.version_at <= self.version_at,
        }
    }
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

#[cfg(test)]
mod tests {
    use super::{Model, ProductId};

    fn row(version: Option<i64>, minutes: i64) -> Model {
        Model {
            product_id: ProductId::nil(),
            sku: "S".into(),
            name: "N".into(),
            unit_price_minor: 1,
            currency: "EUR".into(),
            active: true,
            version_at: chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(minutes),
            version,
        }
    }

    #[test]
    fn a_higher_version_wins_whatever_its_time_and_a_versionless_row_never_replaces_a_versioned_one()
     {
        assert!(row(Some(2), 0).supersedes(&row(Some(1), 60)));
        assert!(!row(Some(1), 60).supersedes(&row(Some(2), 0)));
        assert!(row(Some(1), 0).supersedes(&row(None, 60)));
        assert!(!row(None, 120).supersedes(&row(Some(1), 0)));
        assert!(row(None, 60).supersedes(&row(None, 0)));
        assert!(!row(None, 0).supersedes(&row(None, 60)));
    }
}
