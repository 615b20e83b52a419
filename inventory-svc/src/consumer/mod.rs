//! inventory-svc's event handlers.
//!
//! | consumes (topic `orders`) | does | emits (topic `inventory`) |
//! |---|---|---|
//! | OrderPlaced | reserves every line or none | StockReserved or StockRejected |
//! | OrderRejected, OrderCancelled | releases what the order holds | StockReleased (only if something was held) |
//! | OrderShipped | commits the reservation | StockCommitted; dead letter if the order holds nothing |
//!
//! Delivery is at-least-once; the inbox and the reservation's recorded
//! state make every effect happen once. The protocol is the saga's
//! participant protocol ([`events::plumbing::participant`]), the same as
//! customer-svc's; the resource is [`crate::app::stock::Stock`].

use events::plumbing::ParticipantHandler;

use crate::app::stock::Stock;

/// Handles the order lifecycle events.
pub type OrderEvents = ParticipantHandler<Stock>;
