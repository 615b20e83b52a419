//! One example of every event type, with fixed ids and times. They appear
//! in the published schemas (`examples`) and drive the contract tests.

use chrono::{DateTime, TimeZone, Utc};
use uuid::uuid;

use crate::envelope::{Envelope, Event};
use crate::ids::{CustomerId, EventId, OrderId, ProductId};
use crate::payloads::*;
use crate::primitives::{Currency, Money, Quantity, ShippingAddress};

const ORDER: OrderId = OrderId::from_uuid(uuid!("01936c4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f"));
const CUSTOMER: CustomerId = CustomerId::from_uuid(uuid!("01936c4e-0000-7000-8000-00000000c001"));
const PRODUCT: ProductId = ProductId::from_uuid(uuid!("01936c4e-0000-7000-8000-00000000b001"));

fn eur(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::parse("EUR").expect("valid code")).expect("non-negative")
}

fn units(n: u32) -> Quantity {
    Quantity::new(n).expect("positive")
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
        .single()
        .expect("valid time")
}

fn stock_lines() -> Vec<StockLine> {
    vec![StockLine {
        product_id: PRODUCT,
        quantity: units(2),
    }]
}

/// One example event of every type, in [`EVENT_TYPES`](crate::envelope::EVENT_TYPES) order.
pub fn all() -> Vec<Event> {
    let address = ShippingAddress {
        name: "Ada Lovelace".into(),
        line1: "12 Analytical Row".into(),
        line2: None,
        city: "London".into(),
        postal_code: "N1 9GU".into(),
        country: "GB".into(),
    };
    vec![
        OrderPlacedV1 {
            order_id: ORDER,
            customer_id: CUSTOMER,
            lines: vec![OrderLine {
                product_id: PRODUCT,
                quantity: units(2),
                unit_price: eur(1999),
            }],
            total: eur(3998),
            shipping_address: Some(address.clone()),
        }
        .into(),
        OrderPlaced {
            order_id: ORDER,
            customer_id: CUSTOMER,
            lines: vec![OrderLine {
                product_id: PRODUCT,
                quantity: units(2),
                unit_price: eur(1999),
            }],
            total: eur(3998),
            shipping_address: Some(address.clone()),
            deadline_at: at() + chrono::Duration::seconds(30),
        }
        .into(),
        OrderConfirmed { order_id: ORDER }.into(),
        OrderRejected {
            order_id: ORDER,
            rejected_by: Participant::Inventory,
            reason: "insufficient stock for 1 line".into(),
        }
        .into(),
        OrderCancelled {
            order_id: ORDER,
            reason: "customer request".into(),
            cancelled_by: Actor {
                kind: ActorKind::Customer,
                id: Some(CUSTOMER),
            },
        }
        .into(),
        OrderShipped {
            order_id: ORDER,
            carrier: "DHL".into(),
            tracking_number: "JD014600006281230704".into(),
        }
        .into(),
        OrderDelivered { order_id: ORDER }.into(),
        ShippingUpdated {
            order_id: ORDER,
            carrier: None,
            tracking_number: None,
            shipping_address: Some(address),
        }
        .into(),
        StockReserved {
            order_id: ORDER,
            lines: stock_lines(),
        }
        .into(),
        StockRejected {
            order_id: ORDER,
            reason: "1 line cannot be reserved".into(),
            short_lines: vec![ShortLine {
                product_id: PRODUCT,
                requested: units(2),
                available: 1,
                problem: ShortageKind::InsufficientStock,
            }],
        }
        .into(),
        StockReleased {
            order_id: ORDER,
            lines: stock_lines(),
            reason: Some(ReleaseReason::HoldExpired),
        }
        .into(),
        StockCommitted {
            order_id: ORDER,
            lines: stock_lines(),
        }
        .into(),
        CreditReserved {
            order_id: ORDER,
            customer_id: CUSTOMER,
            amount: eur(3998),
        }
        .into(),
        CustomerRejected {
            order_id: ORDER,
            customer_id: CUSTOMER,
            reason: CustomerRejectionReason::CreditLimitExceeded,
            detail: "order total 39.98 EUR exceeds available credit 10.00 EUR".into(),
        }
        .into(),
        CreditReleased {
            order_id: ORDER,
            customer_id: CUSTOMER,
            amount: eur(3998),
            reason: None,
        }
        .into(),
        CreditSettled {
            order_id: ORDER,
            customer_id: CUSTOMER,
            amount: eur(3998),
        }
        .into(),
        ProductUpsertedV1 {
            product_id: PRODUCT,
            sku: "BOOK-0001".into(),
            name: "Notes on the Analytical Engine".into(),
            unit_price: eur(1999),
            active: true,
        }
        .into(),
        ProductUpserted {
            product_id: PRODUCT,
            sku: "BOOK-0001".into(),
            name: "Notes on the Analytical Engine".into(),
            unit_price: eur(1999),
            active: true,
            version: 3,
        }
        .into(),
    ]
}

/// The example of the latest version of `event_type`, wrapped in an
/// envelope with fixed metadata.
pub fn envelope_of(event_type: &str) -> Option<Envelope> {
    let latest = all()
        .iter()
        .filter(|e| e.event_type() == event_type)
        .map(Event::schema_version)
        .max()?;
    envelope_of_version(event_type, latest)
}

/// The example of version `schema_version` of `event_type`, wrapped in an
/// envelope with fixed metadata.
pub fn envelope_of_version(event_type: &str, schema_version: u32) -> Option<Envelope> {
    let event = all()
        .into_iter()
        .find(|e| e.event_type() == event_type && e.schema_version() == schema_version)?;
    let (producer, causation_id) = match event.topic() {
        crate::topics::Topic::Orders => ("order-svc", None),
        crate::topics::Topic::Inventory => (
            "inventory-svc",
            Some(EventId::from_uuid(uuid!(
                "01936c4e-8a2b-7c3d-9e4f-000000000001"
            ))),
        ),
        crate::topics::Topic::Customers => (
            "customer-svc",
            Some(EventId::from_uuid(uuid!(
                "01936c4e-8a2b-7c3d-9e4f-000000000001"
            ))),
        ),
        crate::topics::Topic::Catalog => ("inventory-svc", None),
    };
    Some(Envelope {
        event_id: EventId::from_uuid(uuid!("01936c4e-8a2b-7c3d-9e4f-0000000000e1")),
        occurred_at: at(),
        correlation_id: event.aggregate_id(),
        causation_id,
        producer: producer.into(),
        event,
    })
}
