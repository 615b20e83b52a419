//! inventory-svc's integration tests, against the real broker and PostgreSQL.

mod helpers;
mod holds;
mod products;
mod reservations;
mod service;
