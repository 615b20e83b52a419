//! # customer-svc
//!
//! Owns customer profiles and credit; validates the customer of every order, reserves credit in the saga, and issues the tokens every service checks.
//!
//! ## Guarantees
//! - **Never over the limit**: a customer's reserved credit never exceeds
//!   their limit, under any number of concurrent orders and instances
//!   (conditional updates under row locks, a `CHECK` constraint behind
//!   them); see [`credit`].
//! - **Books that balance**: reserved credit equals the total of the
//!   customer's orders that reserved and were neither released nor settled;
//!   `GET /credit/audit` checks it.
//! - **Idempotent**: duplicates, replays and out-of-order releases change
//!   nothing twice (inbox + the state machine in [`domain::credit`]).
//! - **Tokens**: EdDSA JWTs signed with keys kept sealed in the database and
//!   published at `/.well-known/jwks.json`; rotation keeps old tokens valid
//!   until they expire ([`tokens`]). Refresh tokens rotate on each use; a
//!   reused one revokes its sign-in ([`sessions`]).
//! - **Throttled credentials**: per-address rate limits, a growing
//!   lock-out after wrong passwords, and a bound on concurrent password
//!   hashing ([`throttle`], [`passwords`]).
//! - **Safe start**: no default admin password or missing key-encryption
//!   key outside dev mode; the admin is created once ([`customers`]).
//!
//! ## Layout
//! - [`config`]: settings from `OMS_CUSTOMER_*`, `OMS_ADMIN_*` and the shared `OMS_*` variables.
//! - [`startup`]: [`build`] assembles the service with the service kit.
//! - [`domain`]: emails, names, passwords, statuses, the credit state machine; no I/O.
//! - [`customers`]: customer commands and queries, password changes, the admin bootstrap.
//! - [`credit`]: reserve, release, settle (the saga's customer side).
//! - [`sessions`]: sign-in, refresh tokens, sign-out.
//! - [`passwords`]: bounded password hashing.
//! - [`throttle`]: per-address rate limits and the per-account lock-out.
//! - [`tokens`]: signing keys, sealed at rest, and access tokens.
//! - [`consumer`]: the event handler that calls [`credit`].
//! - [`http`]: the HTTP API, one module per resource.
//! - [`persistence`]: entities, repository functions, migrations.
//! - [`error`]: the one error type and its HTTP mapping.

#![forbid(unsafe_code)]

pub mod config;
pub mod consumer;
pub mod credit;
pub mod customers;
pub mod domain;
pub mod error;
pub mod http;
pub mod passwords;
pub mod persistence;
pub mod sessions;
pub mod startup;
pub mod throttle;
pub mod tokens;

pub use config::Settings;
pub use startup::build;

/// The service's name: the `producer` of its events and its consumer groups' stem.
pub const SERVICE_NAME: &str = "customer-svc";
