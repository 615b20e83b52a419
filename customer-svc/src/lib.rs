//! # customer-svc
//!
//! Owns customer profiles and credit; validates the customer of every order, reserves credit in the saga, and issues the tokens every service checks.
//!
//! ## Guarantees
//! - **Never over the limit**: a customer's reserved credit never exceeds
//!   their limit, under any number of concurrent orders and instances
//!   (conditional updates under row locks, a `CHECK` constraint behind
//!   them); see [`app::credit`].
//! - **Books that balance**: reserved credit equals the total of the
//!   customer's orders that reserved and were neither released nor settled;
//!   `GET /credit/audit` checks it.
//! - **Idempotent**: duplicates, replays and out-of-order releases change
//!   nothing twice (the saga's participant protocol: one record per order,
//!   [`event_runtime::participant`], shared with inventory-svc, whose
//!   states [`domain::credit`] names).
//! - **Tokens**: EdDSA JWTs signed with keys kept sealed in the database and
//!   published at `/.well-known/jwks.json`; rotation keeps old tokens valid
//!   until they expire ([`app::tokens`]). Refresh tokens rotate on each use; a
//!   reused one revokes its sign-in ([`app::sessions`]).
//! - **Throttled credentials**: per-address rate limits, a growing
//!   lock-out after wrong passwords, and a bound on concurrent password
//!   hashing ([`app::throttle`], [`app::passwords`]).
//! - **Safe start**: no default admin password or missing key-encryption
//!   key outside dev mode; the admin is created once ([`app::customers`]).
//!
//! ## Layout
//! - [`admin_reset`]: [`reset_admin`], the admin password reset that
//!   `oms admin reset-password` runs against the database.
//! - [`config`]: settings from `OMS_CUSTOMER_*`, `OMS_ADMIN_*` and the shared `OMS_*` variables.
//! - [`startup`]: [`build`] assembles the service with the service kit.
//! - [`domain`]: emails, names, passwords, statuses, the credit state machine; no I/O.
//! - [`app`]: the application layer that `http` and `consumer` call:
//!   [`app::customers`] (commands and queries, password changes, the admin
//!   bootstrap), [`app::credit`] (the credit that the saga's participant
//!   protocol reserves, releases and settles), [`app::sessions`] (sign-in, refresh tokens, sign-out), [`app::passwords`]
//!   (bounded hashing), [`app::throttle`] (per-address limits, the per-account
//!   lock-out) and [`app::tokens`] (signing keys, sealed at rest). Lock-outs
//!   and refresh tokens read the time from the settings' [`Settings::clock`].
//! - [`consumer`]: what the service consumes: the participant protocol over
//!   [`app::credit::Credit`].
//! - [`http`]: the HTTP API, one module per resource.
//! - [`persistence`]: entities, repository functions, migrations.
//! - [`error`]: the one error type and its HTTP mapping.

#![forbid(unsafe_code)]

pub mod admin_reset;
pub mod app;
pub mod config;
pub mod consumer;
pub mod domain;
pub mod error;
pub mod http;
pub mod persistence;
pub mod startup;

pub use admin_reset::reset_admin;
pub use config::{SERVICE_NAME, Settings};
pub use startup::build;
