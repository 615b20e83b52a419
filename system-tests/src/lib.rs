//! # system-tests
//!
//! Tests of the whole system, and nothing else: order-svc, inventory-svc
//! and customer-svc started together in one process (each with its own
//! database, PostgreSQL or SQLite, on one topic prefix of the real
//! broker), driven through their HTTP APIs and topics. A service's own
//! tests start that service alone; what needs all three lives here, so no
//! service depends on another, not even for its tests.
//!
//! ## Layout
//! - `tests/system/helpers.rs`: `spawn_system(backend)` and the typed
//!   helpers (place an order, wait for its decision, the invariants every
//!   test ends with).
//! - `tests/system/saga.rs`, `holds.rs`, `orders_api.rs`, `keys.rs`,
//!   `service.rs`: the saga, hold expiry, order-svc's API, token keys
//!   and the service edges.
//!
//! Run them with `cargo test -p system-tests` (a broker and PostgreSQL:
//! see `scripts/test.sh`).

#![forbid(unsafe_code)]
