//! sea-orm entities of customer-svc's tables.

pub mod credit_reservation;
pub mod customer;
pub mod signing_key;
