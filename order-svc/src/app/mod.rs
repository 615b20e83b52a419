//! order-svc's application layer: the commands and queries that `http/`
//! and `consumer/` call, over `domain/` (the rules) and `persistence/` (the
//! tables). Each command is one transaction that writes the order and the
//! events it causes (outbox) together.

pub mod admission;
pub mod catalog_copy;
pub mod deadlines;
pub mod orders;
pub mod replies;
pub mod saga;
