//! # order-svc
//!
//! Accepts orders, emits OrderPlaced, and runs the saga that confirms, rejects, cancels and compensates.
//!
//! ## The saga
//! One state machine decides every transition: [`domain::saga`] (a table and
//! a diagram in its docs). [`app::saga`] applies it to stored orders under a row
//! lock and writes the order, the timeline and the resulting event in one
//! transaction. Deadlines are stored with each order and enforced by
//! [`app::deadlines`], so a restarted order-svc still cancels overdue orders.
//! Compensation is the participants' part: on OrderRejected/OrderCancelled
//! they release whatever they hold for the order.
//!
//! ## Layout
//! - [`config`]: settings from `OMS_ORDER_*`, `OMS_SAGA_*` and the shared `OMS_*` variables.
//! - [`startup`]: [`build`] assembles the service with the service kit.
//! - [`domain`]: what a valid order is, and the saga's state machine; no I/O.
//! - [`app`]: the application layer that `http` and `consumer` call:
//!   [`app::orders`] (the [`app::orders::OrderDesk`]: place, cancel, fulfil,
//!   ship, change shipping, metrics; and the order queries), [`app::saga`]
//!   (the state machine applied to stored orders, and the one way order
//!   events are written: [`app::saga::emit`]), [`app::replies`] (the
//!   participants' replies applied to the saga, set-based),
//!   [`app::catalog_copy`] (the copy of inventory's catalog that prices
//!   orders), [`app::deadlines`] (the sweeper that cancels overdue orders).
//!   Everything that decides by the time reads the settings'
//!   [`Settings::clock`], so tests move time instead of waiting.
//! - [`consumer`]: what the service consumes, and which `app` handler
//!   applies it.
//! - [`http`]: the HTTP API, one module per resource.
//! - [`persistence`]: entities, repository functions, migrations.
//! - [`error`]: the one error type and its HTTP mapping.

#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod error;
pub mod http;
pub mod persistence;
pub mod startup;

pub use config::{SERVICE_NAME, Settings};
pub use startup::build;
