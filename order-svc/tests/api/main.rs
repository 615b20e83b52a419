//! order-svc's integration tests: the whole system (order-svc,
//! inventory-svc, customer-svc) against the real broker and PostgreSQL.

mod helpers;
mod holds;
mod keys;
mod orders_api;
mod saga;
mod service;
