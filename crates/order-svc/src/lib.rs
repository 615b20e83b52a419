//! # order-svc
//!
//! Accepts orders, emits OrderPlaced, and runs the saga that confirms, rejects, cancels and compensates.
//!
//! ## Layout
//! - [`config`]: settings from `OMS_ORDER_*` and the shared `OMS_*` variables.
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
pub const SERVICE_NAME: &str = "order-svc";
