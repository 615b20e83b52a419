//! The payload of every event in the system, defined here and nowhere else.
//!
//! Each payload names the aggregate it belongs to (`order_id` for saga
//! traffic, `product_id` for the catalog); that id is also the Kafka key, so
//! every event of one order lands on one partition, in order.
//!
//! Enumerated values are upper-case strings on the wire, like order statuses.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{CustomerId, OrderId, ProductId};
use crate::primitives::{Money, Quantity, ShippingAddress};

/// The lifecycle states of an order, as seen by every service and client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Placed; the saga is waiting for stock and credit.
    Pending,
    /// Stock and credit are reserved.
    Confirmed,
    /// A participant refused; terminal.
    Rejected,
    /// Cancelled by a person or by the saga's deadline; terminal.
    Cancelled,
    /// Handed to a carrier.
    Shipped,
    /// Received by the customer; terminal.
    Delivered,
}

impl OrderStatus {
    /// The wire spelling, e.g. `"PENDING"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Confirmed => "CONFIRMED",
            Self::Rejected => "REJECTED",
            Self::Cancelled => "CANCELLED",
            Self::Shipped => "SHIPPED",
            Self::Delivered => "DELIVERED",
        }
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "PENDING" => Ok(Self::Pending),
            "CONFIRMED" => Ok(Self::Confirmed),
            "REJECTED" => Ok(Self::Rejected),
            "CANCELLED" => Ok(Self::Cancelled),
            "SHIPPED" => Ok(Self::Shipped),
            "DELIVERED" => Ok(Self::Delivered),
            other => Err(format!("unknown order status {other:?}")),
        }
    }
}

/// One line of an order as placed: what, how many, at what unit price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLine {
    /// The product ordered.
    pub product_id: ProductId,
    /// Units ordered, at least 1.
    pub quantity: Quantity,
    /// Unit price from order-svc's copy of the catalog when the order was placed.
    pub unit_price: Money,
}

/// A number of units of one product, as reserved, released or committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct StockLine {
    /// The product.
    pub product_id: ProductId,
    /// Units, at least 1.
    pub quantity: Quantity,
}

/// A customer placed an order; starts the saga. Version 2: it carries the
/// order's deadline, after which the participants may give back what they
/// hold for it if nobody decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPlaced {
    /// The order.
    pub order_id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// What was ordered; at least one line, at most one line per product.
    #[schemars(length(min = 1, max = 100))]
    #[serde(deserialize_with = "one_line_per_product")]
    pub lines: Vec<OrderLine>,
    /// Sum of quantity × unit price over all lines, in the order's currency.
    pub total: Money,
    /// Where to ship, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
    /// When order-svc cancels the order if it is still pending (the saga's
    /// deadline). A participant gives back a hold still undecided a grace
    /// period after it.
    pub deadline_at: DateTime<Utc>,
}

/// A customer placed an order, in version 1 of the event, which carried no
/// deadline. Still decoded (records published before version 2); never
/// published. Its deadline is taken to be its `occurred_at` plus the
/// default saga deadline ([`OrderPlacedV1::with_deadline`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "OrderPlaced")]
pub struct OrderPlacedV1 {
    /// The order.
    pub order_id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// What was ordered; at least one line, at most one line per product.
    #[schemars(length(min = 1, max = 100))]
    #[serde(deserialize_with = "one_line_per_product")]
    pub lines: Vec<OrderLine>,
    /// Sum of quantity × unit price over all lines, in the order's currency.
    pub total: Money,
    /// Where to ship, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
}

impl OrderPlacedV1 {
    /// The same order in version 2, with `deadline_at` as its deadline.
    pub fn with_deadline(self, deadline_at: DateTime<Utc>) -> OrderPlaced {
        OrderPlaced {
            order_id: self.order_id,
            customer_id: self.customer_id,
            lines: self.lines,
            total: self.total,
            shipping_address: self.shipping_address,
            deadline_at,
        }
    }
}

/// Why a participant gave a hold back on its own, rather than because the
/// order was rejected or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReleaseReason {
    /// Nobody decided the order within its deadline plus the grace period
    /// (`OMS_HOLD_GRACE_SECS`).
    HoldExpired,
    /// An operator released the hold by hand.
    ReleasedByOperator,
}

impl ReleaseReason {
    /// The wire spelling, e.g. `"HOLD_EXPIRED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HoldExpired => "HOLD_EXPIRED",
            Self::ReleasedByOperator => "RELEASED_BY_OPERATOR",
        }
    }
}

impl std::fmt::Display for ReleaseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stock and credit are both reserved: the order is confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderConfirmed {
    /// The order.
    pub order_id: OrderId,
}

/// The saga participant whose answer decided an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Participant {
    /// inventory-svc (stock).
    Inventory,
    /// customer-svc (customer and credit).
    Customer,
}

/// A participant refused the order; participants release what they reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRejected {
    /// The order.
    pub order_id: OrderId,
    /// Which participant refused first.
    pub rejected_by: Participant,
    /// Human-readable reason, copied from the participant's answer.
    #[schemars(length(min = 1, max = 1000))]
    pub reason: String,
}

/// Who asked for something: a customer, an admin, or the system itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActorKind {
    /// The customer who owns the order.
    Customer,
    /// An administrator.
    Admin,
    /// The system, e.g. the saga's deadline.
    System,
}

/// An actor and, for people, their id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// What kind of actor.
    pub kind: ActorKind,
    /// The customer or admin id; absent for the system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<CustomerId>,
}

/// The order was cancelled (by a person, or because the saga's deadline
/// passed); participants release what they reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelled {
    /// The order.
    pub order_id: OrderId,
    /// Why, e.g. "customer request" or "saga deadline exceeded".
    #[schemars(length(min = 1, max = 1000))]
    pub reason: String,
    /// Who cancelled.
    pub cancelled_by: Actor,
}

/// The order left the warehouse; inventory commits the reserved units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderShipped {
    /// The order.
    pub order_id: OrderId,
    /// Carrier name.
    #[schemars(length(min = 1, max = 100))]
    pub carrier: String,
    /// The carrier's tracking number.
    #[schemars(length(min = 1, max = 100))]
    pub tracking_number: String,
}

/// The customer received the order; customer-svc settles the credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderDelivered {
    /// The order.
    pub order_id: OrderId,
}

/// Shipping details of an order changed; only the fields that changed are present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingUpdated {
    /// The order.
    pub order_id: OrderId,
    /// New carrier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub carrier: Option<String>,
    /// New tracking number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100))]
    pub tracking_number: Option<String>,
    /// New address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<ShippingAddress>,
}

/// Every line of the order is reserved (all or nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockReserved {
    /// The order.
    pub order_id: OrderId,
    /// The reserved lines.
    #[schemars(length(min = 1, max = 100))]
    pub lines: Vec<StockLine>,
}

/// Why one line of an order could not be reserved.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShortageKind {
    /// Fewer units available than ordered.
    InsufficientStock,
    /// No such product.
    UnknownProduct,
    /// The product exists but is not for sale.
    InactiveProduct,
}

/// A line of an order that could not be reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShortLine {
    /// The product.
    pub product_id: ProductId,
    /// Units ordered.
    pub requested: Quantity,
    /// Units available when the order was processed.
    pub available: u32,
    /// Why it is short.
    pub problem: ShortageKind,
}

/// The order cannot be reserved; nothing was reserved for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockRejected {
    /// The order.
    pub order_id: OrderId,
    /// Human-readable summary.
    #[schemars(length(min = 1, max = 1000))]
    pub reason: String,
    /// The lines that are short, unknown or inactive.
    #[schemars(length(min = 1, max = 100))]
    pub short_lines: Vec<ShortLine>,
}

/// The order's reservation was released (compensation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockReleased {
    /// The order.
    pub order_id: OrderId,
    /// The released lines.
    #[schemars(length(max = 100))]
    pub lines: Vec<StockLine>,
    /// Why the participant released on its own; absent when the order was
    /// rejected or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReleaseReason>,
}

/// The order's reserved units left stock for good (it shipped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StockCommitted {
    /// The order.
    pub order_id: OrderId,
    /// The committed lines.
    #[schemars(length(max = 100))]
    pub lines: Vec<StockLine>,
}

/// The customer is valid and the order total is reserved against their credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditReserved {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The amount reserved.
    pub amount: Money,
}

/// Why customer-svc refused an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CustomerRejectionReason {
    /// No such customer.
    UnknownCustomer,
    /// The customer is suspended.
    CustomerSuspended,
    /// The order total exceeds the customer's available credit.
    CreditLimitExceeded,
}

/// customer-svc refused the order; nothing was reserved for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerRejected {
    /// The order.
    pub order_id: OrderId,
    /// The customer named by the order.
    pub customer_id: CustomerId,
    /// Machine-readable reason.
    pub reason: CustomerRejectionReason,
    /// Human-readable detail.
    #[schemars(length(min = 1, max = 1000))]
    pub detail: String,
}

/// The credit reserved for the order was released (compensation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditReleased {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The amount released.
    pub amount: Money,
    /// Why the participant released on its own; absent when the order was
    /// rejected or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<ReleaseReason>,
}

/// The order was delivered; its amount is no longer reserved but spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditSettled {
    /// The order.
    pub order_id: OrderId,
    /// The customer.
    pub customer_id: CustomerId,
    /// The amount settled.
    pub amount: Money,
}

/// The current state of a product (catalog topic, compacted by product
/// id), in version 1 of the event, which carried no version of its own.
/// Still decoded (a compacted topic keeps old records); never published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ProductUpserted")]
pub struct ProductUpsertedV1 {
    /// The product.
    pub product_id: ProductId,
    /// Stock-keeping unit, unique across the catalog.
    #[schemars(length(min = 1, max = 64))]
    pub sku: String,
    /// Display name.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// Price of one unit.
    pub unit_price: Money,
    /// Whether the product can be ordered.
    pub active: bool,
}

/// The current state of a product (catalog topic, compacted by product id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductUpserted {
    /// The product.
    pub product_id: ProductId,
    /// Stock-keeping unit, unique across the catalog.
    #[schemars(length(min = 1, max = 64))]
    pub sku: String,
    /// Display name.
    #[schemars(length(min = 1, max = 200))]
    pub name: String,
    /// Price of one unit.
    pub unit_price: Money,
    /// Whether the product can be ordered.
    pub active: bool,
    /// The product's catalog version: inventory-svc adds one at every
    /// change, under the product's row lock. A copy keeps the highest
    /// version it saw, whatever the clocks of the instances that sent them.
    #[schemars(range(min = 1))]
    pub version: u64,
}

/// Refuses an order that names a product twice: every participant keys its
/// work by product, and the contract promises one line per product.
fn one_line_per_product<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<OrderLine>, D::Error> {
    let lines = Vec::<OrderLine>::deserialize(deserializer)?;
    let mut seen = std::collections::HashSet::with_capacity(lines.len());
    if let Some(twice) = lines.iter().find(|line| !seen.insert(line.product_id)) {
        return Err(serde::de::Error::custom(format!(
            "product {} appears on more than one line",
            twice.product_id
        )));
    }
    Ok(lines)
}
