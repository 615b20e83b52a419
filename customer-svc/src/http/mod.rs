//! customer-svc's HTTP API: one module per resource, each exposing `router()`.
//! The kit adds `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/docs`.
//!
//! Registering, signing in, refreshing and signing out are public (and
//! throttled); a customer reads and renames themself and changes their
//! password; everything else needs an admin token.

use std::sync::Arc;

use events::Currency;
use sea_orm::DatabaseConnection;
use utoipa_axum::router::OpenApiRouter;

use service_kit::auth::jwt::JwtAuthenticator;

use crate::app::sessions::Sessions;
use crate::app::tokens::{KeyStore, LocalKeys};

/// Sign-in, refresh, sign-out, the key set, key rotation.
pub mod auth;
/// The credit invariant check.
pub mod credit_audit;
/// Customers and their credit.
pub mod customers;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The service's database.
    pub db: DatabaseConnection,
    /// Its outbox (credit released by hand).
    pub outbox: event_runtime::Outbox,
    /// What "now" is (the age of credit reservations).
    pub clock: service_kit::Clock,
    /// The token signing keys.
    pub keys: Arc<KeyStore>,
    /// Sign-in, refresh tokens, throttling.
    pub sessions: Arc<Sessions>,
    /// The service's own token verifier, primed after a key rotation.
    pub verifier: Arc<JwtAuthenticator<LocalKeys>>,
    /// Credit limit of customers who register themselves, in minor units.
    pub default_credit_limit_minor: i64,
    /// Currency of new credit lines.
    pub currency: Currency,
}

/// The service's own routes.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(customers::router())
        .merge(auth::router())
        .merge(credit_audit::router())
        .with_state(state)
}
