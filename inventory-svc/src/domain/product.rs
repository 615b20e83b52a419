//! Products and stock adjustments.

use events::Money;

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
    fn adjustments_are_non_zero_with_a_reason() {
        assert!(StockAdjustment::parse(0, "x").is_err());
        assert!(StockAdjustment::parse(5, "  ").is_err());
        assert_eq!(
            StockAdjustment::parse(-3, " shrinkage ").unwrap().reason,
            "shrinkage"
        );
    }
}
