//! customer-svc's event handlers.
//!
//! | consumes (topic `orders`) | does | emits (topic `customers`) |
//! |---|---|---|
//! | OrderPlaced | checks the customer exists and is active, holds the total if it fits the available credit | CreditReserved or CustomerRejected (UNKNOWN_CUSTOMER, CUSTOMER_SUSPENDED, CREDIT_LIMIT_EXCEEDED) |
//! | OrderConfirmed | the credit reservation is decided: it no longer expires | nothing |
//! | OrderRejected, OrderCancelled | releases what the order holds | CreditReleased (only if something was held) |
//! | OrderDelivered | settles the held amount | CreditSettled; dead letter if the order holds nothing |
//! | (none: the hold sweeper) | releases a credit reservation still undecided `OMS_HOLD_GRACE_SECS` after its order's deadline | CreditReleased with reason `HOLD_EXPIRED` |
//!
//! Delivery is at-least-once; the reservation's recorded state makes every
//! effect happen once (no inbox row per event: every later event of an
//! order finds its record). The protocol is the saga's
//! participant protocol ([`event_runtime::participant`]), the same as
//! inventory-svc's; the resource is [`crate::app::credit::Credit`], wired by
//! `ServiceBuilder::take_part_in_saga` in `startup`.
