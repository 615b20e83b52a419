//! customer-svc's HTTP API: one module per resource, each exposing `router()`.
//! The kit adds `/healthz`, `/readyz`, `/metrics`, `/openapi.json` and `/docs`.

use utoipa_axum::router::OpenApiRouter;

/// The service's own routes.
pub fn router() -> OpenApiRouter {
    OpenApiRouter::new()
}
