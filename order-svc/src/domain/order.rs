//! What a valid order request is. The rules mirror the OrderPlaced schema,
//! so an accepted order always produces an event every consumer accepts.

use events::{CustomerId, OrderStatus, ProductId, Quantity, ShippingAddress};
use std::collections::HashSet;

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

/// Filters of the order list.
#[derive(Debug, Clone, Default)]
pub struct OrderFilter {
    /// Only this customer's orders.
    pub customer_id: Option<CustomerId>,
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
}

/// Most lines in one order.
pub const MAX_LINES: usize = 100;
/// Most units of one product in one order.
pub const MAX_QUANTITY: u32 = 10_000;

/// One line as requested: a product and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLineRequest {
    /// The product.
    pub product_id: ProductId,
    /// Units, 1 to [`MAX_QUANTITY`].
    pub quantity: Quantity,
}

/// A validated order request (prices are looked up later, in the catalog).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// Who orders.
    pub customer_id: CustomerId,
    /// The lines, one per product.
    pub lines: Vec<OrderLineRequest>,
    /// Where to ship, if given.
    pub shipping_address: Option<ShippingAddress>,
    /// The carrier, if known at placement.
    pub carrier: Option<String>,
    /// The tracking number, if known at placement.
    pub tracking_number: Option<String>,
}

impl NewOrder {
    /// The order with the carrier and tracking number known at placement.
    ///
    /// # Errors
    /// [`OrderError::Invalid`] when one is empty or longer than 100 characters.
    pub fn with_shipping_details(
        mut self,
        carrier: Option<&str>,
        tracking_number: Option<&str>,
    ) -> Result<Self, OrderError> {
        self.carrier = carrier
            .map(|c| parse_shipping_text("shipping.carrier", c))
            .transpose()?;
        self.tracking_number = tracking_number
            .map(|t| parse_shipping_text("shipping.tracking_number", t))
            .transpose()?;
        Ok(self)
    }

    /// Checks the request's shape.
    ///
    /// # Errors
    /// [`OrderError::Invalid`] for no lines, too many, a product twice, a
    /// quantity out of range, or an address field that breaks its rule.
    pub fn parse(
        customer_id: CustomerId,
        lines: &[(ProductId, u32)],
        shipping_address: Option<ShippingAddress>,
    ) -> Result<Self, OrderError> {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return Err(OrderError::invalid(
                "lines",
                format!("must hold 1 to {MAX_LINES} lines"),
            ));
        }
        let mut seen = HashSet::new();
        let mut parsed = Vec::with_capacity(lines.len());
        for &(product_id, quantity) in lines {
            if !seen.insert(product_id) {
                return Err(OrderError::invalid(
                    "lines",
                    format!("product {product_id} appears twice; merge the lines"),
                ));
            }
            if quantity == 0 || quantity > MAX_QUANTITY {
                return Err(OrderError::invalid(
                    "lines.quantity",
                    format!("must be between 1 and {MAX_QUANTITY}"),
                ));
            }
            let quantity = Quantity::new(quantity)
                .map_err(|e| OrderError::invalid("lines.quantity", e.to_string()))?;
            parsed.push(OrderLineRequest {
                product_id,
                quantity,
            });
        }
        if let Some(address) = &shipping_address {
            validate_address(address)?;
        }
        Ok(Self {
            customer_id,
            lines: parsed,
            shipping_address,
            carrier: None,
            tracking_number: None,
        })
    }
}

/// Checks an address against the rules of the event schema.
///
/// # Errors
/// [`OrderError::Invalid`] naming the field.
pub fn validate_address(address: &ShippingAddress) -> Result<(), OrderError> {
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
        None => Ok(()),
    }
}

/// A carrier or tracking number: 1 to 100 characters, trimmed.
///
/// # Errors
/// [`OrderError::Invalid`] naming `field`.
pub fn parse_shipping_text(field: &'static str, raw: &str) -> Result<String, OrderError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 {
        return Err(OrderError::invalid(field, "must be 1 to 100 characters"));
    }
    Ok(trimmed.to_owned())
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

    fn address() -> ShippingAddress {
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
    fn lines_are_bounded_unique_and_positive() {
        let customer = CustomerId::generate();
        let product = ProductId::generate();
        assert!(NewOrder::parse(customer, &[], None).is_err());
        assert!(NewOrder::parse(customer, &[(product, 0)], None).is_err());
        assert!(NewOrder::parse(customer, &[(product, MAX_QUANTITY + 1)], None).is_err());
        assert!(NewOrder::parse(customer, &[(product, 1), (product, 2)], None).is_err());
        let many: Vec<(ProductId, u32)> = (0..=MAX_LINES)
            .map(|_| (ProductId::generate(), 1))
            .collect();
        assert!(NewOrder::parse(customer, &many, None).is_err());
        assert_eq!(
            NewOrder::parse(customer, &[(product, 3)], Some(address()))
                .unwrap()
                .lines
                .len(),
            1
        );
    }

    #[test]
    fn addresses_follow_the_event_schema() {
        let mut bad = address();
        bad.country = "gb".into();
        assert!(validate_address(&bad).is_err());
        let mut bad = address();
        bad.postal_code = "x".repeat(21);
        assert!(validate_address(&bad).is_err());
        assert!(validate_address(&address()).is_ok());
    }
}
