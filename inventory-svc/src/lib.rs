//! # inventory-svc
//!
//! Owns the catalog, stock levels and per-order reservations; never oversells. Takes part in the order saga.
//!
//! ## Guarantees
//! - **Never oversells**: available stock cannot go below zero under any
//!   number of concurrent orders and instances (conditional updates under row
//!   locks, a `CHECK` constraint behind them); see [`app::stock`].
//! - **All or nothing** per order: every line is reserved, or none.
//! - **Conserved**: for every product, initial stock + adjustments =
//!   available + reserved + committed, and reserved/committed equal what the
//!   reservations hold; `GET /stock/audit` checks it.
//! - **Idempotent**: duplicates, replays and out-of-order releases change
//!   nothing twice (the saga's participant protocol: one record per order,
//!   [`event_runtime::participant`], shared with customer-svc, whose
//!   states [`domain::reservation`] names).
//!
//! ## Layout
//! - [`config`]: settings from `OMS_INVENTORY_*` and the shared `OMS_*` variables.
//! - [`startup`]: [`build`] assembles the service with the service kit.
//! - [`domain`]: SKUs, names, adjustments, the reservation state machine; no I/O.
//! - [`app`]: the application layer that `http` and `consumer` call:
//!   [`app::catalog`] (product commands and queries, ProductUpserted, the price
//!   history) and [`app::stock`] (the stock that the saga's participant
//!   protocol reserves, releases and commits, and the reservation queries).
//! - [`consumer`]: what the service consumes: the participant protocol over
//!   [`app::stock::Stock`].
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
