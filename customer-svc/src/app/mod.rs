//! customer-svc's application layer: the commands and queries that `http/`
//! and `consumer/` call, over `domain/` (the rules) and `persistence/` (the
//! tables).

pub mod credit;
pub mod customers;
pub mod passwords;
pub mod sessions;
pub mod throttle;
pub mod tokens;
