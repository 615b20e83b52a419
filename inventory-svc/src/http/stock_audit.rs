use axum::extract::State;
use events::ProductId;
use serde::{Deserialize, Serialize};
use service_kit::{Caller, Json, Problem};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::catalog;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_stock_audit))
}

/// One product's books.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductBooks {
    /// The product.
    pub product_id: ProductId,
    /// Its SKU.
    pub sku: String,
    /// Initial stock plus every adjustment.
    pub ledger_total: i64,
    /// Units available.
    pub available: i64,
    /// Units reserved (product figure).
    pub reserved: i64,
    /// Units committed (product figure).
    pub committed: i64,
    /// Units in RESERVED reservations.
    pub reserved_by_orders: i64,
    /// Units in COMMITTED reservations.
    pub committed_by_orders: i64,
    /// `ledger_total = available + reserved + committed`, and the product's
    /// reserved and committed figures equal the reservations'.
    pub balanced: bool,
}

/// The stock conservation check.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StockAudit {
    /// Whether every product balances.
    pub balanced: bool,
    /// Every product's books.
    pub products: Vec<ProductBooks>,
}

/// Checks that stock is conserved for every product (admin).
#[utoipa::path(get, path = "/stock/audit", tag = "stock",
    security(("bearer" = [])),
    responses(
        (status = 200, body = StockAudit),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_stock_audit(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<StockAudit>, Problem> {
    caller.require_admin()?;
    let products: Vec<ProductBooks> = catalog::stock_books(&state.db)
        .await?
        .into_iter()
        .map(|b| ProductBooks {
            balanced: b.balanced(),
            product_id: b.product_id,
            sku: b.sku,
            ledger_total: b.ledger_total,
            available: b.available,
            reserved: b.reserved,
            committed: b.committed,
            reserved_by_orders: b.reserved_by_orders,
            committed_by_orders: b.committed_by_orders,
        })
        .collect();
    Ok(Json(StockAudit {
        balanced: products.iter().all(|p| p.balanced),
        products,
    }))
}
