//! The customer aggregate: who a customer is, how they sign in, and their
//! credit line; and the values a customer is made of, each parsed once at
//! the edge.

use std::fmt;

use chrono::{DateTime, Utc};
use events::{CustomerId, Money};
use serde::{Deserialize, Serialize};
use service_kit::Role;
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

/// Whether a customer may order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CustomerStatus {
    /// May order.
    Active,
    /// Orders are rejected.
    Suspended,
}

/// A customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Customer id.
    pub id: CustomerId,
    /// Email, unique.
    pub email: Email,
    /// Name.
    pub name: CustomerName,
    /// The password's argon2 hash (PHC string).
    pub password_hash: String,
    /// `customer` or `admin`.
    pub role: Role,
    /// Whether they may order and sign in.
    pub status: CustomerStatus,
    /// Their credit.
    pub credit: CreditLine,
    /// Wrong passwords in a row.
    pub failed_logins: u32,
    /// Signing in is refused until then.
    pub locked_until: Option<DateTime<Utc>>,
    /// The admin account made at first start for `OMS_ADMIN_EMAIL`.
    pub bootstrap_admin: bool,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A customer's credit: a limit, and what open orders hold of it, in the
/// limit's currency. What is held never exceeds the limit once held (the
/// database's `CHECK` constraint besides); a limit lowered below it is
/// refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditLine {
    /// The limit.
    pub limit: Money,
    /// Held for open orders.
    pub reserved: Money,
}

impl CreditLine {
    /// What is left to hold: the limit less what is held, never below zero.
    pub fn available(&self) -> Money {
        self.limit
            .checked_sub(&self.reserved)
            .unwrap_or_else(|| Money::zero(self.limit.currency().clone()))
    }

    /// Whether `amount` is in the line's currency and fits what the limit
    /// leaves.
    pub fn fits(&self, amount: &Money) -> bool {
        self.reserved
            .checked_add(amount)
            .is_some_and(|held| held.amount_minor() <= self.limit.amount_minor())
    }

    /// Holds `amount`; `false` (and nothing is held) when it does not
    /// [`fit`](Self::fits).
    pub fn hold(&mut self, amount: &Money) -> bool {
        match self.reserved.checked_add(amount) {
            Some(held) if held.amount_minor() <= self.limit.amount_minor() => {
                self.reserved = held;
                true
            }
            _ => false,
        }
    }

    /// Gives `amount` back; `false` (and nothing changes) when less is held.
    pub fn give_back(&mut self, amount: &Money) -> bool {
        match self.reserved.checked_sub(amount) {
            Some(rest) => {
                self.reserved = rest;
                true
            }
            None => false,
        }
    }
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
    fn credit_is_held_within_the_limit_in_its_currency() {
        let eur = |minor| Money::parse(minor, "EUR").unwrap();
        let mut line = CreditLine {
            limit: eur(100),
            reserved: eur(0),
        };
        assert!(line.hold(&eur(60)));
        assert!(!line.hold(&eur(41)), "over the limit");
        assert!(
            !line.hold(&Money::parse(1, "USD").unwrap()),
            "another currency"
        );
        assert_eq!(line.available(), eur(40));
        assert!(!line.give_back(&eur(61)));
        assert!(line.give_back(&eur(60)));
        assert_eq!(line.reserved, eur(0));
    }

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
    fn passwords_have_bounds_and_hide_in_debug() {
        assert!(Password::parse("short").is_err());
        let password = Password::parse("correct horse").unwrap();
        assert_eq!(format!("{password:?}"), "Password(***)");
    }
}
