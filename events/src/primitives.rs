//! Value types shared by every payload: money, currency, quantities, addresses.
//!
//! Each type rejects invalid values while it is deserialized, so a payload
//! that decodes is a payload that satisfies its JSON Schema: a consumer never
//! sees a zero quantity, a negative amount or a lower-case currency code.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, de};

/// An ISO 4217 currency code: three upper-case ASCII letters, e.g. `EUR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Z]{3}$", example = "EUR"))]
#[serde(transparent)]
pub struct Currency(#[schemars(regex(pattern = r"^[A-Z]{3}$"))] String);

impl Currency {
    /// Parses a currency code.
    ///
    /// # Errors
    /// When `code` is not three upper-case ASCII letters.
    pub fn parse(code: &str) -> Result<Self, InvalidValue> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code.to_owned()))
        } else {
            Err(InvalidValue(format!(
                "currency must be three upper-case letters (ISO 4217), got {code:?}"
            )))
        }
    }

    /// The code, e.g. `"EUR"`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `XXX`, ISO 4217's code for "no currency": what an amount that was
    /// never money (a record that holds nothing) is in.
    pub fn none() -> Self {
        Self("XXX".to_owned())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::parse(&code).map_err(de::Error::custom)
    }
}

/// An amount of money: integer minor units (cents) and the currency.
/// Never a float.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"amount_minor": 1999, "currency": "EUR"})))]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Amount in the currency's minor unit (1999 is 19.99 EUR); never
    /// negative, at most 10^15.
    #[serde(deserialize_with = "bounded_amount")]
    #[schemars(range(min = 0, max = 1_000_000_000_000_000i64))]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 1_000_000_000_000_000i64)
    )]
    amount_minor: i64,
    /// ISO 4217 currency code.
    currency: Currency,
}

impl Money {
    /// The largest amount the contract carries: 10^15 minor units (ten
    /// trillion of a two-decimal currency). Any sum of two amounts a
    /// service keeps (a customer's reserved credit plus one order) stays far
    /// inside a 64-bit integer, so no column or counter can overflow.
    pub const MAX_MINOR: i64 = 1_000_000_000_000_000;

    /// Builds an amount.
    ///
    /// # Errors
    /// When `amount_minor` is negative or above [`Money::MAX_MINOR`].
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Self, InvalidValue> {
        check_amount(amount_minor)?;
        Ok(Self {
            amount_minor,
            currency,
        })
    }
}

impl Money {
    /// The amount in the currency's minor unit (1999 is 19.99 EUR).
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self {
            amount_minor: 0,
            currency,
        }
    }

    /// `self + other`; `None` in another currency or beyond
    /// [`Money::MAX_MINOR`].
    pub fn checked_add(&self, other: &Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount_minor.checked_add(other.amount_minor))
            .flatten()
            .filter(|&sum| sum <= Self::MAX_MINOR)
            .map(|amount_minor| Self {
                amount_minor,
                currency: self.currency.clone(),
            })
    }

    /// `self - other`; `None` in another currency or below zero.
    pub fn checked_sub(&self, other: &Money) -> Option<Money> {
        (self.currency == other.currency)
            .then(|| self.amount_minor.checked_sub(other.amount_minor))
            .flatten()
            .filter(|&rest| rest >= 0)
            .map(|amount_minor| Self {
                amount_minor,
                currency: self.currency.clone(),
            })
    }

    /// Builds an amount from stored parts: minor units and a currency code.
    ///
    /// # Errors
    /// When the amount is negative or the code is not ISO 4217.
    pub fn parse(amount_minor: i64, currency: &str) -> Result<Self, InvalidValue> {
        Self::new(amount_minor, Currency::parse(currency)?)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_minor, self.currency)
    }
}

/// A number of units of one product: at least 1, at most 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Quantity(#[schemars(range(min = 1, max = 1_000_000))] u32);

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Quantity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
            .minimum(Some(1))
            .maximum(Some(Quantity::MAX))
            .description(Some("A number of units, at least 1, at most 1,000,000."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Quantity {}

impl Quantity {
    /// The most units one line carries; a hundred lines of it still fit in
    /// any counter a participant keeps.
    pub const MAX: u32 = 1_000_000;

    /// Parses a quantity.
    ///
    /// # Errors
    /// When `units` is zero or above [`Quantity::MAX`].
    pub fn new(units: u32) -> Result<Self, InvalidValue> {
        if units == 0 {
            Err(InvalidValue("quantity must be at least 1".into()))
        } else if units > Self::MAX {
            Err(InvalidValue(format!(
                "quantity must be at most {}, got {units}",
                Self::MAX
            )))
        } else {
            Ok(Self(units))
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(u32::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// Where an order is shipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShippingAddress {
    /// Recipient's name.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// Street and number.
    #[schemars(length(min = 1, max = 200))]
    pub line1: String,
    /// Optional second address line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 200))]
    pub line2: Option<String>,
    /// City or town.
    #[schemars(length(min = 1, max = 100))]
    pub city: String,
    /// Postal code, as written in the destination country.
    #[schemars(length(min = 1, max = 20))]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, e.g. `DE`.
    #[schemars(regex(pattern = r"^[A-Z]{2}$"))]
    pub country: String,
}

/// A value that breaks one of the contract's rules; the message says which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

fn check_amount(amount_minor: i64) -> Result<(), InvalidValue> {
    if amount_minor < 0 {
        return Err(InvalidValue(format!(
            "amount_minor must not be negative, got {amount_minor}"
        )));
    }
    if amount_minor > Money::MAX_MINOR {
        return Err(InvalidValue(format!(
            "amount_minor must be at most {}, got {amount_minor}",
            Money::MAX_MINOR
        )));
    }
    Ok(())
}

fn bounded_amount<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = i64::deserialize(deserializer)?;
    check_amount(value).map_err(de::Error::custom)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount_minor: i64) -> Money {
        Money::parse(amount_minor, "EUR").unwrap()
    }

    #[test]
    fn sums_and_differences_stay_in_one_currency_and_in_range() {
        assert_eq!(eur(5).checked_add(&eur(7)), Some(eur(12)));
        assert_eq!(eur(7).checked_sub(&eur(5)), Some(eur(2)));
        assert_eq!(eur(5).checked_sub(&eur(7)), None);
        assert_eq!(eur(Money::MAX_MINOR).checked_add(&eur(1)), None);
        let dollars = Money::parse(5, "USD").unwrap();
        assert_eq!(eur(5).checked_add(&dollars), None);
        assert_eq!(eur(5).checked_sub(&dollars), None);
        assert_eq!(Money::zero(Currency::none()).to_string(), "0 XXX");
    }
}
