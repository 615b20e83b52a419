//! inventory-svc's HTTP API: one module per resource, each exposing `router()`.
//! The kit adds `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/docs`.
//!
//! Reading the catalog is public; every write, reservations and the stock
//! audit need an admin token.

use event_runtime::Outbox;
use sea_orm::DatabaseConnection;
use utoipa_axum::router::OpenApiRouter;

/// Products: create, list, read, change, restock, availability.
pub mod products;
/// Per-order reservations.
pub mod reservations;
/// The stock conservation check.
pub mod stock_audit;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The service's database.
    pub db: DatabaseConnection,
    /// Its outbox.
    pub outbox: Outbox,
    /// What "now" is (the age of reservations).
    pub clock: service_kit::Clock,
}

/// The service's own routes.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(products::router())
        .merge(reservations::router())
        .merge(stock_audit::router())
        .with_state(state)
}
