//! The whole system (order-svc, inventory-svc, customer-svc) against the
//! real broker and PostgreSQL: see the crate's documentation.

mod helpers;
mod holds;
mod keys;
mod orders_api;
mod saga;
mod service;
