//! inventory-svc's event handlers.
//!
//! | consumes (topic `orders`) | does | emits (topic `inventory`) |
//! |---|---|---|
//! | OrderPlaced | reserves every line or none, recording the order's deadline | StockReserved or StockRejected |
//! | OrderConfirmed | the reservation is decided: it no longer expires | nothing |
//! | OrderRejected, OrderCancelled | releases what the order holds | StockReleased (only if something was held) |
//! | OrderShipped | commits the reservation | StockCommitted; dead letter if the order holds nothing |
//! | (none: the hold sweeper) | releases a reservation still undecided `OMS_HOLD_GRACE_SECS` after its order's deadline | StockReleased with reason `HOLD_EXPIRED` |
//!
//! Delivery is at-least-once; the reservation's recorded state makes every
//! effect happen once (no inbox row per event: every later event of an
//! order finds its record). The protocol is the saga's
//! participant protocol ([`event_runtime::participant`]), the same as
//! customer-svc's; the resource is [`crate::app::stock::Stock`], wired by
//! `ServiceBuilder::take_part_in_saga` in `startup`.
