//! order-svc's HTTP API: one module per resource, each exposing `router()`.
//! The kit adds `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/docs`.
//!
//! Every order endpoint needs a token: customers see and act on their own
//! orders only (others' are "not found"); admins on all.

use sea_orm::DatabaseConnection;
use utoipa_axum::router::OpenApiRouter;

use crate::app::orders::OrderDesk;

/// The catalog copy, as order-svc prices it.
pub mod catalog;
/// Orders: place, read, cancel, fulfil, ship, timeline, metrics.
pub mod orders;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The service's database.
    pub db: DatabaseConnection,
    /// Places orders (group commit, idempotency).
    pub desk: OrderDesk,
}

/// The service's own routes.
pub fn router(state: AppState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(orders::router())
        .merge(catalog::router())
        .with_state(state)
}
