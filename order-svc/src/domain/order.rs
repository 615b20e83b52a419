//! The order aggregate: what an order is, how a request becomes one, and
//! how its shipping details change. How it moves through the saga is
//! [`super::saga`].
//!
//! Every field is a parsed value ([`Money`], [`Quantity`], [`Carrier`],
//! [`Reason`], …), so an order read back from the database or built from
//! a request is valid, and the rules below work on values, not on text.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use events::{
    CustomerId, Money, OrderId, OrderLine as PlacedLine, OrderPlaced, OrderStatus, ProductId,
    Quantity, ShippingAddress, ShippingUpdated,
};

use super::catalog::CatalogProduct;
use super::values::{Carrier, Reason, TrackingNumber, line_quantity};
use crate::error::OrderError;

/// Most lines in one order.
pub const MAX_LINES: usize = 100;

/// An order: who ordered what for how much, where it stands in the saga,
/// and where it ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Order id (UUIDv7: ids sort by placement).
    pub id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// Where the order stands.
    pub status: OrderStatus,
    /// The sum of the lines.
    pub total: Money,
    /// Where it ships, if given.
    pub shipping_address: Option<ShippingAddress>,
    /// Carrier, once known.
    pub carrier: Option<Carrier>,
    /// Tracking number, once known.
    pub tracking_number: Option<TrackingNumber>,
    /// inventory-svc reserved the stock.
    pub stock_reserved: bool,
    /// customer-svc reserved the credit.
    pub credit_reserved: bool,
    /// When a PENDING order is cancelled if still undecided.
    pub deadline_at: DateTime<Utc>,
    /// Why it was rejected or cancelled.
    pub reason: Option<Reason>,
    /// When it left PENDING.
    pub decided_at: Option<DateTime<Utc>>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A line of an order, at the price it was placed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// The product.
    pub product_id: ProductId,
    /// Units.
    pub quantity: Quantity,
    /// Price of one unit.
    pub unit_price: Money,
    /// quantity × unit price.
    pub total: Money,
}

impl OrderLine {
    /// A line of `quantity` units at `unit_price`.
    ///
    /// # Errors
    /// When the line's total is beyond [`Money::MAX_MINOR`].
    pub fn priced(
        product_id: ProductId,
        quantity: Quantity,
        unit_price: Money,
    ) -> Result<Self, events::InvalidValue> {
        let total = Money::new(
            unit_price
                .amount_minor()
                .saturating_mul(i64::from(quantity.get())),
            unit_price.currency().clone(),
        )?;
        Ok(Self {
            product_id,
            quantity,
            unit_price,
            total,
        })
    }
}

/// An order with its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderWithLines {
    /// The order.
    pub order: Order,
    /// Its lines, in the order they were requested.
    pub lines: Vec<OrderLine>,
}

/// One line as requested: a product and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RequestedLine {
    product_id: ProductId,
    quantity: Quantity,
}

/// A valid order request, not yet priced (prices come from the catalog,
/// never from the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    customer_id: CustomerId,
    lines: Vec<RequestedLine>,
    shipping_address: Option<ShippingAddress>,
    carrier: Option<Carrier>,
    tracking_number: Option<TrackingNumber>,
}

impl NewOrder {
    /// Checks the request's shape.
    ///
    /// # Errors
    /// [`OrderError::Invalid`] for no lines, too many, a product twice, or
    /// a quantity out of range.
    pub fn parse(customer_id: CustomerId, lines: &[(ProductId, u32)]) -> Result<Self, OrderError> {
        if lines.is_empty() || lines.len() > MAX_LINES {
            return Err(OrderError::invalid(
                "lines",
                format!("must hold 1 to {MAX_LINES} lines"),
            ));
        }
        let mut seen = HashSet::new();
        let mut parsed = Vec::with_capacity(lines.len());
        for &(product_id, units) in lines {
            if !seen.insert(product_id) {
                return Err(OrderError::invalid(
                    "lines",
                    format!("product {product_id} appears twice; merge the lines"),
                ));
            }
            parsed.push(RequestedLine {
                product_id,
                quantity: line_quantity(units)?,
            });
        }
        Ok(Self {
            customer_id,
            lines: parsed,
            shipping_address: None,
            carrier: None,
            tracking_number: None,
        })
    }

    /// The order with where and how it ships, as known at placement.
    pub fn shipped_as(
        mut self,
        address: Option<ShippingAddress>,
        carrier: Option<Carrier>,
        tracking_number: Option<TrackingNumber>,
    ) -> Self {
        self.shipping_address = address;
        self.carrier = carrier;
        self.tracking_number = tracking_number;
        self
    }

    /// Who orders.
    pub fn customer_id(&self) -> CustomerId {
        self.customer_id
    }

    /// The products it names, in request order.
    pub fn product_ids(&self) -> Vec<ProductId> {
        self.lines.iter().map(|l| l.product_id).collect()
    }

    /// The order priced from `catalog` (which holds at least the products
    /// it names), PENDING until `deadline` after `now`, and its OrderPlaced.
    ///
    /// # Errors
    /// [`OrderError::UnknownProduct`], [`OrderError::InactiveProduct`],
    /// [`OrderError::MixedCurrencies`], or [`OrderError::Invalid`] when the
    /// total is beyond what an event carries.
    pub fn place(
        self,
        id: OrderId,
        catalog: &HashMap<ProductId, CatalogProduct>,
        deadline: Duration,
        now: DateTime<Utc>,
    ) -> Result<(OrderWithLines, OrderPlaced), OrderError> {
        let now = now.trunc_subsecs(6);
        let too_large = || OrderError::invalid("lines", "the order total is too large");
        let mut lines: Vec<OrderLine> = Vec::with_capacity(self.lines.len());
        for requested in &self.lines {
            let product = catalog
                .get(&requested.product_id)
                .ok_or(OrderError::UnknownProduct(requested.product_id))?;
            if !product.active {
                return Err(OrderError::InactiveProduct(requested.product_id));
            }
            if let Some(first) = lines.first()
                && first.unit_price.currency() != product.unit_price.currency()
            {
                return Err(OrderError::MixedCurrencies(
                    first.unit_price.currency().to_string(),
                    product.unit_price.currency().to_string(),
                ));
            }
            lines.push(
                OrderLine::priced(
                    requested.product_id,
                    requested.quantity,
                    product.unit_price.clone(),
                )
                .map_err(|_| too_large())?,
            );
        }
        let first = lines.first().ok_or_else(|| {
            OrderError::invalid("lines", format!("must hold 1 to {MAX_LINES} lines"))
        })?;
        let total_minor = lines
            .iter()
            .try_fold(0_i64, |sum, line| {
                sum.checked_add(line.total.amount_minor())
            })
            .ok_or_else(too_large)?;
        let total = Money::new(total_minor, first.unit_price.currency().clone())
            .map_err(|_| too_large())?;
        // The participants learn the deadline too: a hold nobody decides
        // expires a grace period after it.
        let deadline_at =
            now + chrono::Duration::from_std(deadline).unwrap_or(chrono::Duration::seconds(30));
        let placed = OrderPlaced {
            order_id: id,
            customer_id: self.customer_id,
            lines: lines
                .iter()
                .map(|line| PlacedLine {
                    product_id: line.product_id,
                    quantity: line.quantity,
                    unit_price: line.unit_price.clone(),
                })
                .collect(),
            total: total.clone(),
            shipping_address: self.shipping_address.clone(),
            deadline_at,
        };
        let order = Order {
            id,
            customer_id: self.customer_id,
            status: OrderStatus::Pending,
            total,
            shipping_address: self.shipping_address,
            carrier: self.carrier,
            tracking_number: self.tracking_number,
            stock_reserved: false,
            credit_reserved: false,
            deadline_at,
            reason: None,
            decided_at: None,
            created_at: now,
            updated_at: now,
        };
        Ok((OrderWithLines { order, lines }, placed))
    }
}

/// New shipping details; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct ShippingChange {
    /// Carrier.
    pub carrier: Option<Carrier>,
    /// Tracking number.
    pub tracking_number: Option<TrackingNumber>,
    /// Address.
    pub shipping_address: Option<ShippingAddress>,
}

impl ShippingChange {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.carrier.is_none() && self.tracking_number.is_none() && self.shipping_address.is_none()
    }
}

impl Order {
    /// Whether no input moves the order any more.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.status,
            OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Delivered
        )
    }

    /// Changes the shipping details at `now`, until the order is final.
    ///
    /// # Errors
    /// [`OrderError::ShippingLocked`] once delivered, rejected or cancelled.
    pub fn change_shipping(
        &mut self,
        change: ShippingChange,
        now: DateTime<Utc>,
    ) -> Result<ShippingUpdated, OrderError> {
        if self.is_terminal() {
            return Err(OrderError::ShippingLocked(self.status));
        }
        if let Some(carrier) = &change.carrier {
            self.carrier = Some(carrier.clone());
        }
        if let Some(tracking_number) = &change.tracking_number {
            self.tracking_number = Some(tracking_number.clone());
        }
        if let Some(address) = &change.shipping_address {
            self.shipping_address = Some(address.clone());
        }
        self.updated_at = now.trunc_subsecs(6);
        Ok(ShippingUpdated {
            order_id: self.id,
            carrier: change.carrier.map(String::from),
            tracking_number: change.tracking_number.map(String::from),
            shipping_address: change.shipping_address,
        })
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::catalog::CatalogVersion;
    use crate::domain::values::MAX_UNITS_PER_LINE;

    pub(crate) fn product(price_minor: i64, currency: &str) -> CatalogProduct {
        CatalogProduct {
            product_id: ProductId::generate(),
            sku: "SKU".into(),
            name: "Thing".into(),
            unit_price: Money::parse(price_minor, currency).unwrap(),
            active: true,
            version: CatalogVersion {
                at: Utc::now(),
                number: Some(1),
            },
        }
    }

    fn catalog(products: &[&CatalogProduct]) -> HashMap<ProductId, CatalogProduct> {
        products
            .iter()
            .map(|p| (p.product_id, (*p).clone()))
            .collect()
    }

    #[test]
    fn lines_are_bounded_unique_and_positive() {
        let customer = CustomerId::generate();
        let product = ProductId::generate();
        assert!(NewOrder::parse(customer, &[]).is_err());
        assert!(NewOrder::parse(customer, &[(product, 0)]).is_err());
        assert!(NewOrder::parse(customer, &[(product, MAX_UNITS_PER_LINE + 1)]).is_err());
        assert!(NewOrder::parse(customer, &[(product, 1), (product, 2)]).is_err());
        let many: Vec<(ProductId, u32)> = (0..=MAX_LINES)
            .map(|_| (ProductId::generate(), 1))
            .collect();
        assert!(NewOrder::parse(customer, &many).is_err());
        assert_eq!(
            NewOrder::parse(customer, &[(product, 3)])
                .unwrap()
                .product_ids(),
            vec![product]
        );
    }

    #[test]
    fn an_order_is_priced_from_the_catalog_in_one_currency() {
        let customer = CustomerId::generate();
        let pen = product(250, "EUR");
        let ink = product(1999, "EUR");
        let dollars = product(100, "USD");
        let (placed, event) =
            NewOrder::parse(customer, &[(pen.product_id, 4), (ink.product_id, 1)])
                .unwrap()
                .place(
                    OrderId::generate(),
                    &catalog(&[&pen, &ink]),
                    Duration::from_secs(30),
                    Utc::now(),
                )
                .unwrap();
        assert_eq!(placed.order.total, Money::parse(2999, "EUR").unwrap());
        assert_eq!(placed.lines[0].total, Money::parse(1000, "EUR").unwrap());
        assert_eq!(event.total, placed.order.total);
        assert_eq!(placed.order.status, OrderStatus::Pending);

        let mixed = NewOrder::parse(customer, &[(pen.product_id, 1), (dollars.product_id, 1)])
            .unwrap()
            .place(
                OrderId::generate(),
                &catalog(&[&pen, &dollars]),
                Duration::from_secs(30),
                Utc::now(),
            );
        assert!(matches!(mixed, Err(OrderError::MixedCurrencies(..))));
        let unknown = NewOrder::parse(customer, &[(ProductId::generate(), 1)])
            .unwrap()
            .place(
                OrderId::generate(),
                &catalog(&[&pen]),
                Duration::from_secs(30),
                Utc::now(),
            );
        assert!(matches!(unknown, Err(OrderError::UnknownProduct(_))));
        let dear = product(Money::MAX_MINOR, "EUR");
        let too_large = NewOrder::parse(customer, &[(dear.product_id, 2)])
            .unwrap()
            .place(
                OrderId::generate(),
                &catalog(&[&dear]),
                Duration::from_secs(30),
                Utc::now(),
            );
        assert!(matches!(too_large, Err(OrderError::Invalid(_))));
    }
}
