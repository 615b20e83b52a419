//! # customer-svc
//!
//! Owns customer profiles and credit; validates the customer of every order, reserves credit in the saga, and issues the tokens every service checks.
//!
//! ## Layout
//! - [`config`]: settings from `OMS_CUSTOMER_*` and the shared `OMS_*` variables.
//! - [`startup`]: [`build`] assembles the service with the service kit.
//! - [`http`]: the HTTP API.
//! - [`persistence`]: the database and its migrations.

#![forbid(unsafe_code)]

pub mod config;
pub mod http;
pub mod persistence;
pub mod startup;

pub use config::Settings;
pub use startup::build;

/// The service's name: the `producer` of its events and its consumer groups' stem.
pub const SERVICE_NAME: &str = "customer-svc";
