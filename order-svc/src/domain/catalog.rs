//! order-svc's copy of a catalog product: what a new order is priced
//! from, and which of two versions of a product is the newer.

use chrono::{DateTime, Utc};
use events::{Envelope, Event, Money, ProductId};

/// A product as last published on the `catalog` topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProduct {
    /// Product id.
    pub product_id: ProductId,
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Price of one unit.
    pub unit_price: Money,
    /// Whether it can be ordered.
    pub active: bool,
    /// Which publication this is.
    pub version: CatalogVersion,
}

/// Which publication of a product a copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogVersion {
    /// `occurred_at` of the event it comes from.
    pub at: DateTime<Utc>,
    /// inventory-svc's catalog version of the product (ProductUpserted v2);
    /// `None` from a version-1 event.
    pub number: Option<i64>,
}

impl CatalogVersion {
    /// Whether `self` is at least as new as `stored`: by catalog version
    /// when `self` has one (any version beats none), by time only between
    /// two version-1 publications. persistence's upsert applies the same
    /// rule in SQL.
    pub fn supersedes(&self, stored: &CatalogVersion) -> bool {
        match (self.number, stored.number) {
            (Some(new), Some(old)) => new >= old,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => stored.at <= self.at,
        }
    }
}

impl CatalogProduct {
    /// The product a ProductUpserted (either version) publishes; `None`
    /// for any other event.
    pub fn published_in(envelope: &Envelope) -> Option<Self> {
        let (product_id, sku, name, unit_price, active, number) = match &envelope.event {
            Event::ProductUpserted(p) => (
                p.product_id,
                &p.sku,
                &p.name,
                &p.unit_price,
                p.active,
                Some(i64::try_from(p.version).unwrap_or(i64::MAX)),
            ),
            Event::ProductUpsertedV1(p) => {
                (p.product_id, &p.sku, &p.name, &p.unit_price, p.active, None)
            }
            _ => return None,
        };
        Some(Self {
            product_id,
            sku: sku.clone(),
            name: name.clone(),
            unit_price: unit_price.clone(),
            active,
            version: CatalogVersion {
                at: envelope.occurred_at,
                number,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::CatalogVersion;

    fn version(number: Option<i64>, minutes: i64) -> CatalogVersion {
        CatalogVersion {
            at: chrono::DateTime::UNIX_EPOCH + chrono::Duration::minutes(minutes),
            number,
        }
    }

    #[test]
    fn a_higher_version_wins_whatever_its_time_and_a_versionless_row_never_replaces_a_versioned_one()
     {
        assert!(version(Some(2), 0).supersedes(&version(Some(1), 60)));
        assert!(!version(Some(1), 60).supersedes(&version(Some(2), 0)));
        assert!(version(Some(1), 0).supersedes(&version(None, 60)));
        assert!(!version(None, 120).supersedes(&version(Some(1), 0)));
        assert!(version(None, 60).supersedes(&version(None, 0)));
        assert!(!version(None, 0).supersedes(&version(None, 60)));
    }
}
