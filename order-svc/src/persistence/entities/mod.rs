//! sea-orm entities of order-svc's tables.

pub mod catalog_product;
pub mod idempotency_key;
pub mod order;
pub mod order_event;
pub mod order_line;
