//! Customers: email, name, password rules, status.

use std::fmt;

use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::CustomerError;

/// An email address, validated (RFC 5322 via `email_address`) and stored
/// lower-cased, so that `Ada@Example.com` and `ada@example.com` are one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// # Errors
    /// [`CustomerError::Invalid`] for anything that is not an email address.
    pub fn parse(raw: &str) -> Result<Self, CustomerError> {
        let trimmed = raw.trim();
        if trimmed.len() > 254 || !email_address::EmailAddress::is_valid(trimmed) {
            return Err(CustomerError::invalid(
                "email",
                "must be a valid email address",
            ));
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A customer's name: 1 to 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerName(String);

impl CustomerName {
    /// # Errors
    /// [`CustomerError::Invalid`] when blank or too long.
    pub fn parse(raw: &str) -> Result<Self, CustomerError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.chars().count() > 200 {
            return Err(CustomerError::invalid(
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

/// A password as typed: 8 to 128 characters. Never logged or stored; only
/// its argon2 hash is. `Debug` prints nothing of it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// # Errors
    /// [`CustomerError::Invalid`] when shorter than 8 or longer than 128 characters.
    pub fn parse(raw: &str) -> Result<Self, CustomerError> {
        let length = raw.chars().count();
        if !(8..=128).contains(&length) {
            return Err(CustomerError::invalid(
                "password",
                "must be 8 to 128 characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The password, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Whether a customer may order; stored as its wire spelling (a typed
/// column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum CustomerStatus {
    /// May order.
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    /// Orders are rejected.
    #[sea_orm(string_value = "SUSPENDED")]
    Suspended,
}

/// A credit limit: 0 or more minor units.
pub fn parse_credit_limit(amount_minor: i64) -> Result<i64, CustomerError> {
    if !(0..=1_000_000_000_000).contains(&amount_minor) {
        return Err(CustomerError::invalid(
            "credit_limit.amount_minor",
            "must be between 0 and 10^12",
        ));
    }
    Ok(amount_minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated_and_lower_cased() {
        assert_eq!(
            Email::parse(" Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        assert!(Email::parse("not-an-email").is_err());
        assert!(Email::parse("").is_err());
    }

    #[test]
    fn statuses_are_stored_as_they_are_shown() {
        testkit::assert_stored_as_serialized::<CustomerStatus>();
    }

    #[test]
    fn passwords_have_bounds_and_hide_in_debug() {
        assert!(Password::parse("short").is_err());
        let password = Password::parse("correct horse").unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
    }
}
