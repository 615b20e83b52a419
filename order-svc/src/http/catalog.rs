use axum::extract::State;
use events::{Money, ProductId};
use serde::{Deserialize, Serialize};
use service_kit::{Json, Problem, Query};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::catalog_copy;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_catalog))
}

/// A product as order-svc will price it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogProduct {
    /// Product id.
    pub product_id: ProductId,
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Price of one unit.
    pub unit_price: Money,
    /// Whether it can be ordered.
    pub active: bool,
}

/// A page of the catalog copy.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CatalogPage {
    /// Products by id.
    pub items: Vec<CatalogProduct>,
    /// Pass as `cursor` for the next page.
    pub next_cursor: Option<ProductId>,
}

/// Paging.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CatalogQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<ProductId>,
    /// Page size, 1-100 (default 50).
    pub limit: Option<u64>,
}

/// order-svc's copy of the catalog (kept from the `catalog` topic): the
/// prices new orders get.
#[utoipa::path(get, path = "/catalog/products", tag = "catalog", params(CatalogQuery),
    responses(
        (status = 200, body = CatalogPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_catalog(
    State(state): State<AppState>,
    Query(query): Query<CatalogQuery>,
) -> Result<Json<CatalogPage>, Problem> {
    let limit = service_kit::pagination::page_size(query.limit)?;
    let (page, next_cursor) = catalog_copy::list(&state.db, query.cursor, limit).await?;
    let items = page
        .into_iter()
        .map(|p| CatalogProduct {
            product_id: p.product_id,
            sku: p.sku,
            name: p.name,
            unit_price: p.unit_price,
            active: p.active,
        })
        .collect();
    Ok(Json(CatalogPage { items, next_cursor }))
}
