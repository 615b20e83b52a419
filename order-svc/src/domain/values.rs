//! The small values an order is made of, each parsed once at the edge and
//! valid from then on: an `Idempotency-Key`, a carrier, a tracking number,
//! a reason, a line's quantity and a shipping address. Each has one rule
//! and one limit, stated here and nowhere else.

use events::{Quantity, ShippingAddress};

use crate::error::OrderError;

/// An `Idempotency-Key`: 1 to 255 printable ASCII characters, kept per
/// customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses the header's value.
    ///
    /// # Errors
    /// [`OrderError::Invalid`] (field `Idempotency-Key`) when it is empty,
    /// longer than 255 bytes, or holds anything but printable ASCII.
    pub fn parse(raw: &[u8]) -> Result<Self, OrderError> {
        std::str::from_utf8(raw)
            .ok()
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .map(|k| Self(k.to_owned()))
            .ok_or_else(|| {
                OrderError::invalid(
                    "Idempotency-Key",
                    "must be 1-255 printable ASCII characters",
                )
            })
    }

    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Text of 1 to `max` characters once trimmed.
fn bounded_text(field: &'static str, raw: &str, max: usize) -> Result<String, OrderError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(OrderError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Declares a text value of 1 to `$max` characters, trimmed.
macro_rules! bounded_text_value {
    ($(#[$doc:meta])* $name:ident, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            /// The most characters it may have.
            pub const MAX_CHARS: usize = $max;

            /// Parses `raw`, trimmed.
            ///
            /// # Errors
            /// [`OrderError::Invalid`] naming `field` when it is empty or
            /// longer than [`Self::MAX_CHARS`].
            pub fn parse(field: &'static str, raw: &str) -> Result<Self, OrderError> {
                bounded_text(field, raw, Self::MAX_CHARS).map(Self)
            }

            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }
    };
}

bounded_text_value!(
    /// The carrier an order is handed to: 1 to 100 characters.
    Carrier,
    100
);
bounded_text_value!(
    /// A carrier's tracking number: 1 to 100 characters.
    TrackingNumber,
    100
);
bounded_text_value!(
    /// Why an order was rejected or cancelled: 1 to 1,000 characters, the
    /// limit of the events that carry it.
    Reason,
    1000
);

impl Reason {
    /// A reason from another service or from order-svc itself: cut to
    /// [`Self::MAX_CHARS`], and "no reason given" when blank, so that it
    /// always fits the events that carry it.
    pub fn lenient(raw: &str) -> Self {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Self("no reason given".to_owned());
        }
        Self(trimmed.chars().take(Self::MAX_CHARS).collect())
    }
}

/// Most units of one product in one order.
pub const MAX_UNITS_PER_LINE: u32 = 10_000;

/// A line's quantity as requested: 1 to [`MAX_UNITS_PER_LINE`] (inside the
/// contract's own limit, [`Quantity::MAX`]).
///
/// # Errors
/// [`OrderError::Invalid`] (field `lines.quantity`) otherwise.
pub fn line_quantity(units: u32) -> Result<Quantity, OrderError> {
    Quantity::new(units)
        .ok()
        .filter(|quantity| quantity.get() <= MAX_UNITS_PER_LINE)
        .ok_or_else(|| {
            OrderError::invalid(
                "lines.quantity",
                format!("must be between 1 and {MAX_UNITS_PER_LINE}"),
            )
        })
}

/// Checks an address against the rules of the event schema.
///
/// # Errors
/// [`OrderError::Invalid`] naming the field.
pub fn shipping_address(address: ShippingAddress) -> Result<ShippingAddress, OrderError> {
    let within = |value: &str, min: usize, max: usize| (min..=max).contains(&value.chars().count());
    let checks: [(&'static str, bool, &str); 6] = [
        (
            "shipping_address.name",
            within(&address.name, 1, 200),
            "must be 1 to 200 characters",
        ),
        (
            "shipping_address.line1",
            within(&address.line1, 1, 200),
            "must be 1 to 200 characters",
        ),
        (
            "shipping_address.line2",
            address.line2.as_deref().is_none_or(|l| within(l, 0, 200)),
            "must be at most 200 characters",
        ),
        (
            "shipping_address.city",
            within(&address.city, 1, 100),
            "must be 1 to 100 characters",
        ),
        (
            "shipping_address.postal_code",
            within(&address.postal_code, 1, 20),
            "must be 1 to 20 characters",
        ),
        (
            "shipping_address.country",
            address.country.len() == 2 && address.country.bytes().all(|b| b.is_ascii_uppercase()),
            "must be an ISO 3166-1 alpha-2 code such as DE",
        ),
    ];
    match checks.into_iter().find(|(_, ok, _)| !ok) {
        Some((field, _, rule)) => Err(OrderError::invalid(field, rule)),
        None => Ok(address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_printable_ascii_of_bounded_length() {
        assert_eq!(
            IdempotencyKey::parse(b"order-42").unwrap().as_str(),
            "order-42"
        );
        for bad in [&b""[..], b"with space", b"caf\xc3\xa9", &[b'k'; 256][..]] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    pub(crate) fn address() -> ShippingAddress {
        ShippingAddress {
            name: "Ada".into(),
            line1: "1 Road".into(),
            line2: None,
            city: "London".into(),
            postal_code: "N1".into(),
            country: "GB".into(),
        }
    }

    #[test]
    fn addresses_follow_the_event_schema() {
        let mut bad = address();
        bad.country = "gb".into();
        assert!(shipping_address(bad).is_err());
        let mut bad = address();
        bad.postal_code = "x".repeat(21);
        assert!(shipping_address(bad).is_err());
        assert!(shipping_address(address()).is_ok());
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(Carrier::parse("carrier", " DHL ").unwrap().as_str(), "DHL");
        assert!(Carrier::parse("carrier", "  ").is_err());
        assert!(TrackingNumber::parse("tracking_number", &"x".repeat(101)).is_err());
        assert!(Reason::parse("reason", &"x".repeat(1000)).is_ok());
        assert!(Reason::parse("reason", &"x".repeat(1001)).is_err());
        assert_eq!(Reason::lenient(&"x".repeat(1200)).as_str().len(), 1000);
        assert_eq!(Reason::lenient(" ").as_str(), "no reason given");
    }

    #[test]
    fn a_line_holds_1_to_10000_units() {
        assert!(line_quantity(0).is_err());
        assert!(line_quantity(MAX_UNITS_PER_LINE + 1).is_err());
        assert_eq!(line_quantity(MAX_UNITS_PER_LINE).unwrap().get(), 10_000);
    }
}
