//! sea-orm entities of customer-svc's tables.

pub mod credit_reservation;
pub mod customer;
pub mod refresh_token;
pub mod signing_key;
