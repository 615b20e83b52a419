//! The product aggregate: its catalog data, its stock figures and the
//! rules that move units between them, and the values a product is made
//! of, each parsed once at the edge.

use chrono::{DateTime, SubsecRound, Utc};
use events::{Money, ProductId, ProductUpserted};

use crate::error::InventoryError;

/// A stock-keeping unit: 1 to 64 characters of letters, digits, `-`, `_`
/// and `.`, unique across the catalog. Kept as given (case matters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    /// # Errors
    /// [`InventoryError::Invalid`] when empty, too long, or with other characters.
    pub fn parse(raw: &str) -> Result<Self, InventoryError> {
        let valid_chars = raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if raw.is_empty() || raw.len() > 64 || !valid_chars {
            return Err(InventoryError::invalid(
                "sku",
                "must be 1 to 64 characters: letters, digits, '-', '_' or '.'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The SKU.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product's display name: 1 to 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    /// # Errors
    /// [`InventoryError::Invalid`] when blank or longer than 200 characters.
    pub fn parse(raw: &str) -> Result<Self, InventoryError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 200 {
            return Err(InventoryError::invalid(
                "name",
                "must be 1 to 200 characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A unit price: strictly positive.
pub fn parse_unit_price(price: Money) -> Result<Money, InventoryError> {
    if price.amount_minor() <= 0 {
        return Err(InventoryError::invalid(
            "unit_price.amount_minor",
            "must be greater than 0",
        ));
    }
    Ok(price)
}

/// A product to create.
#[derive(Debug, Clone)]
pub struct NewProduct {
    /// Its SKU.
    pub sku: Sku,
    /// Its name.
    pub name: ProductName,
    /// Price of one unit.
    pub unit_price: Money,
    /// Units in stock at creation, at least 0.
    pub initial_stock: i64,
    /// Whether it can be ordered.
    pub active: bool,
}

/// A change to a product's name, price or active flag; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    /// New name.
    pub name: Option<ProductName>,
    /// New unit price.
    pub unit_price: Option<Money>,
    /// New active flag.
    pub active: Option<bool>,
}

impl ProductPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.unit_price.is_none() && self.active.is_none()
    }
}

/// A restock (positive) or correction (negative) of available stock.
#[derive(Debug, Clone)]
pub struct StockAdjustment {
    /// Units added (positive) or removed (negative); never 0.
    pub delta: i64,
    /// Why, for the ledger: 1 to 500 characters.
    pub reason: String,
}

impl StockAdjustment {
    /// # Errors
    /// [`InventoryError::Invalid`] for a zero delta, one beyond ±1,000,000,000,
    /// or a blank reason.
    pub fn parse(delta: i64, reason: &str) -> Result<Self, InventoryError> {
        if delta == 0 || delta.unsigned_abs() > 1_000_000_000 {
            return Err(InventoryError::invalid(
                "delta",
                "must be non-zero and within ±1000000000",
            ));
        }
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(InventoryError::invalid(
                "reason",
                "must be 1 to 500 characters",
            ));
        }
        Ok(Self {
            delta,
            reason: reason.to_owned(),
        })
    }
}

/// Initial stock: 0 to 1,000,000,000 units.
pub fn parse_initial_stock(units: i64) -> Result<i64, InventoryError> {
    if !(0..=1_000_000_000).contains(&units) {
        return Err(InventoryError::invalid(
            "initial_stock",
            "must be between 0 and 1000000000",
        ));
    }
    Ok(units)
}

/// A product of the catalog, with its stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// Product id.
    pub id: ProductId,
    /// Its SKU, unique.
    pub sku: Sku,
    /// Display name.
    pub name: ProductName,
    /// Price of one unit.
    pub unit_price: Money,
    /// Whether it can be ordered.
    pub active: bool,
    /// Where its units are.
    pub stock: StockLevels,
    /// One more with every change to its catalog data; copies of the
    /// catalog keep the highest.
    pub catalog_version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Where a product's units are: each unit is in exactly one place, and no
/// figure goes below zero (the database's `CHECK` constraints besides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StockLevels {
    /// Units that can be reserved now.
    pub available: i64,
    /// Units held for open orders.
    pub reserved: i64,
    /// Units shipped.
    pub committed: i64,
}

impl Product {
    /// A new product made at `now`, at catalog version 1.
    pub fn create(new: NewProduct, now: DateTime<Utc>) -> Self {
        // Microseconds: what the database keeps, so the answer equals later reads.
        let now = now.trunc_subsecs(6);
        Self {
            id: ProductId::generate(),
            sku: new.sku,
            name: new.name,
            unit_price: new.unit_price,
            active: new.active,
            stock: StockLevels {
                available: new.initial_stock,
                reserved: 0,
                committed: 0,
            },
            catalog_version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// Whether `units` of it can be reserved now.
    pub fn can_reserve(&self, units: i64) -> bool {
        self.active && self.stock.available >= units
    }

    /// Moves `units` from available to reserved; `false` (and nothing
    /// moves) when fewer are available.
    pub fn reserve(&mut self, units: i64) -> bool {
        if self.stock.available < units {
            return false;
        }
        self.stock.available -= units;
        self.stock.reserved += units;
        true
    }

    /// Moves `units` out of reserved: back to available, or (`shipped`)
    /// to committed; `false` (and nothing moves) when fewer are reserved.
    pub fn unreserve(&mut self, units: i64, shipped: bool) -> bool {
        if self.stock.reserved < units {
            return false;
        }
        self.stock.reserved -= units;
        if shipped {
            self.stock.committed += units;
        } else {
            self.stock.available += units;
        }
        true
    }

    /// The ProductUpserted that publishes its catalog data.
    pub fn catalog_event(&self) -> ProductUpserted {
        ProductUpserted {
            product_id: self.id,
            sku: self.sku.as_str().to_owned(),
            name: self.name.as_str().to_owned(),
            unit_price: self.unit_price.clone(),
            active: self.active,
            version: u64::try_from(self.catalog_version.max(1)).unwrap_or(1),
        }
    }
}

/// One price a product has had, from when it took effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricePoint {
    /// Its position in the history (a cursor).
    pub id: i64,
    /// The price.
    pub unit_price: Money,
    /// When it took effect.
    pub effective_at: DateTime<Utc>,
    /// The product's catalog version that carried it.
    pub catalog_version: i64,
}

/// Filters of the product list.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    /// Only active (or inactive) products.
    pub active: Option<bool>,
    /// Only the product with this SKU.
    pub sku: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sku_rules() {
        assert!(Sku::parse("BOOK-0001_a.b").is_ok());
        assert!(Sku::parse("").is_err());
        assert!(Sku::parse("has space").is_err());
        assert!(Sku::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn units_move_between_available_reserved_and_committed_and_never_below_zero() {
        let mut product = Product::create(
            NewProduct {
                sku: Sku::parse("PEN").unwrap(),
                name: ProductName::parse("Pen").unwrap(),
                unit_price: Money::parse(250, "EUR").unwrap(),
                initial_stock: 5,
                active: true,
            },
            Utc::now(),
        );
        assert!(product.can_reserve(5) && !product.can_reserve(6));
        assert!(!product.reserve(6));
        assert!(product.reserve(4));
        assert!(!product.unreserve(5, false));
        assert!(product.unreserve(1, false));
        assert!(product.unreserve(3, true));
        assert_eq!(
            product.stock,
            StockLevels {
                available: 2,
                reserved: 0,
                committed: 3
            }
        );
        assert_eq!(product.catalog_event().version, 1);
    }

    #[test]
    fn adjustments_are_non_zero_with_a_reason() {
        assert!(StockAdjustment::parse(0, "x").is_err());
        assert!(StockAdjustment::parse(5, "  ").is_err());
        assert_eq!(
            StockAdjustment::parse(-3, " shrinkage ").unwrap().reason,
            "shrinkage"
        );
    }
}
