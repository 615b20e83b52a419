//! customer-svc's integration tests, against the real broker and PostgreSQL.

mod auth;
mod credentials;
mod credit;
mod customers;
mod helpers;
mod holds;
mod security;
mod service;
mod sessions;
