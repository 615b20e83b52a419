//! customer-svc's HTTP API: one module per resource, each exposing `router()`.
//! The kit adds `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/docs`.
//!
//! Registering and getting a token are public; a customer reads and renames
//! themself; everything else needs an admin token.

use std::sync::Arc;

use events::Currency;
use sea_orm::DatabaseConnection;
use utoipa_axum::router::OpenApiRouter;

use crate::tokens::KeyStore;

/// `POST /auth/token`, the key set, key rotation.
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
    /// The token signing keys.
    pub keys: Arc<KeyStore>,
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
