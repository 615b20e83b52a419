//! # service-kit: what every OMS service needs, written once
//!
//! A service's `main.rs` parses its settings, calls [`telemetry::init`] and
//! its own `build(settings)`, which uses [`ServiceBuilder`] to connect the
//! database (running migrations), create its topics, start the outbox relay
//! and its consumers, and serve its HTTP API. Every service thereby gets the
//! same behaviour:
//!
//! - configuration from `OMS_*` environment variables (or flags) with
//!   documented defaults: [`settings`]; secrets also from files
//!   (`OMS_X_FILE`): [`secrets`];
//! - logs, and OpenTelemetry traces exported over OTLP when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set: [`telemetry`];
//! - one shutdown signal (Ctrl-C, SIGTERM) for the HTTP server, the
//!   consumers and the relay: [`shutdown`];
//! - `GET /healthz`, `GET /readyz` (database and broker reachable) and
//!   `GET /metrics` (Prometheus): [`health`];
//! - errors as `application/problem+json` with a stable `code`: [`problem`];
//!   JSON, path and query rejections mapped to it: [`extract`];
//! - a request body size limit, request ids, request tracing that continues
//!   a caller's W3C trace;
//! - an OpenAPI document at `/openapi.json` built from the code and a docs UI
//!   at `/docs` (served from the binary): [`openapi`];
//! - bearer-token authentication behind one extractor: [`auth`];
//! - the time from a [`Clock`] that tests can hold and move: [`clock`];
//! - the expiry of saga holds nobody decides: [`holds`].
//!
//! ## Layout
//! [`app`] holds [`ServiceBuilder`] and the running [`App`]; the other modules
//! are the pieces listed above.

#![forbid(unsafe_code)]

pub mod app;
pub mod auth;
pub mod clock;
pub mod database;
pub mod extract;
pub mod health;
pub mod holds;
pub mod http;
pub mod openapi;
pub mod pagination;
pub mod problem;
pub mod secrets;
pub mod server;
pub mod settings;
pub mod shutdown;
pub mod telemetry;

pub use app::{App, ServiceBuilder};
pub use auth::{Authenticator, Caller, Role};
pub use clock::Clock;
pub use extract::{AnyCase, ClientAddress, Json, Path, Query};
pub use problem::{Answer, InvalidInput, Problem, ServiceError};
pub use settings::{CommonSettings, ServiceSettings};
