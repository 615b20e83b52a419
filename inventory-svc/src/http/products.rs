use axum::extract::State;
use axum::http::{StatusCode, header};
use chrono::{DateTime, Utc};
use events::{Money, ProductId};
use serde::{Deserialize, Serialize};
use service_kit::{Caller, Json, Path, Problem, Query};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::catalog;
use crate::domain::ProductFilter;
use crate::domain::product::{parse_initial_stock, parse_unit_price};
use crate::domain::{NewProduct, Product, ProductName, ProductPatch, Sku, StockAdjustment};
use crate::error::InventoryError;

const TAG: &str = "products";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, update_product))
        .routes(routes!(adjust_stock))
        .routes(routes!(get_availability))
        .routes(routes!(validate_quantity))
        .routes(routes!(get_prices))
}

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// Unique stock-keeping unit: 1-64 letters, digits, `-`, `_`, `.`.
    #[schema(example = "BOOK-0001")]
    pub sku: String,
    /// Display name, 1-200 characters.
    #[schema(example = "Notes on the Analytical Engine")]
    pub name: String,
    /// Price of one unit; more than zero.
    pub unit_price: Money,
    /// Units in stock, 0 or more.
    #[schema(example = 10)]
    pub initial_stock: i64,
    /// Whether it can be ordered (default true).
    #[serde(default = "default_active")]
    pub active: bool,
}

fn default_active() -> bool {
    true
}

/// A change to a product; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    /// New name.
    pub name: Option<String>,
    /// New unit price.
    pub unit_price: Option<Money>,
    /// New active flag.
    pub active: Option<bool>,
}

/// A restock (positive delta) or correction (negative delta).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustStockRequest {
    /// Units to add or (negative) remove; never 0.
    #[schema(example = 25)]
    pub delta: i64,
    /// Why, for the ledger.
    #[schema(example = "delivery from supplier")]
    pub reason: String,
}

/// A product's stock figures.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StockLevels {
    /// Units that can be reserved now.
    pub available: i64,
    /// Units held for open orders.
    pub reserved: i64,
    /// Units shipped.
    pub committed: i64,
}

/// A product.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductResponse {
    /// Product id.
    pub id: ProductId,
    /// SKU.
    pub sku: String,
    /// Display name.
    pub name: String,
    /// Price of one unit.
    pub unit_price: Money,
    /// Whether it can be ordered.
    pub active: bool,
    /// Stock figures.
    pub stock: StockLevels,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Product> for ProductResponse {
    fn from(product: Product) -> Self {
        Self {
            id: product.id,
            sku: product.sku.as_str().to_owned(),
            name: product.name.as_str().to_owned(),
            unit_price: product.unit_price,
            active: product.active,
            stock: StockLevels {
                available: product.stock.available,
                reserved: product.stock.reserved,
                committed: product.stock.committed,
            },
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }
}

/// A page of products.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProductPage {
    /// The products, by id.
    pub items: Vec<ProductResponse>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<ProductId>,
}

/// Paging and filters of the product list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListProductsQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<ProductId>,
    /// Page size, 1-100 (default 50).
    pub limit: Option<u64>,
    /// Only active (true) or inactive (false) products.
    pub active: Option<bool>,
    /// Only the product with this SKU.
    pub sku: Option<String>,
}

/// How many units are asked for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityQuery {
    /// Units wanted, at least 1.
    pub quantity: u32,
}

/// Whether a quantity can be reserved now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Availability {
    /// The product.
    pub product_id: ProductId,
    /// Units asked for.
    pub requested: u32,
    /// Units available now.
    pub available: i64,
    /// Whether the product is active and has the units.
    pub reservable: bool,
}

/// Whether a quantity can be reserved now, in the shape simpler order
/// services answer `validate` with.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct QuantityValidation {
    /// The product.
    pub product_id: ProductId,
    /// Units asked for.
    pub quantity: u32,
    /// Units available now.
    pub available: i64,
    /// Whether the product is active and has the units.
    pub valid: bool,
}

/// One price of a product.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PriceEntry {
    /// The unit price.
    pub unit_price: Money,
    /// When it took effect; it holds until the next (newer) entry's time.
    pub effective_at: DateTime<Utc>,
    /// The product's catalog version that carried it (its `ProductUpserted`).
    pub catalog_version: i64,
}

/// A product's price history, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PriceHistory {
    /// The product.
    pub product_id: ProductId,
    /// Its prices, newest first.
    pub items: Vec<PriceEntry>,
    /// Pass as `cursor` for older prices; absent on the last page.
    pub next_cursor: Option<i64>,
}

/// Paging of the price history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PricesQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Page size, 1-100 (default 50).
    pub limit: Option<u64>,
}

type Created<T> = (StatusCode, [(header::HeaderName, String); 1], Json<T>);

fn wanted(quantity: u32) -> Result<u32, InventoryError> {
    if quantity == 0 {
        return Err(InventoryError::invalid("quantity", "must be at least 1"));
    }
    Ok(quantity)
}

/// Creates a product with its initial stock (admin).
#[utoipa::path(post, path = "/products", tag = TAG, request_body = CreateProductRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; Location names the product", body = ProductResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "SKU taken", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn create_product(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<CreateProductRequest>,
) -> Result<Created<ProductResponse>, Problem> {
    caller.require_admin()?;
    let new = NewProduct {
        sku: Sku::parse(&request.sku)?,
        name: ProductName::parse(&request.name)?,
        unit_price: parse_unit_price(request.unit_price)?,
        initial_stock: parse_initial_stock(request.initial_stock)?,
        active: request.active,
    };
    let product = catalog::create_product(&state.db, &state.outbox, new).await?;
    let location = format!("/products/{}", product.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(product.into()),
    ))
}

/// Lists products by id, with cursor paging and filters.
#[utoipa::path(get, path = "/products", tag = TAG, params(ListProductsQuery),
    responses(
        (status = 200, body = ProductPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_products(
    State(state): State<AppState>,
    Query(query): Query<ListProductsQuery>,
) -> Result<Json<ProductPage>, Problem> {
    let limit = service_kit::pagination::page_size(query.limit)?;
    let filter = ProductFilter {
        active: query.active,
        sku: query.sku,
    };
    let (page, next_cursor) =
        catalog::list_products(&state.db, &filter, query.cursor, limit).await?;
    let items = page.into_iter().map(ProductResponse::from).collect();
    Ok(Json(ProductPage { items, next_cursor }))
}

/// One product.
#[utoipa::path(get, path = "/products/{id}", tag = TAG,
    params(("id" = Uuid, Path, description = "Product id")),
    responses(
        (status = 200, body = ProductResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<ProductId>,
) -> Result<Json<ProductResponse>, Problem> {
    Ok(Json(catalog::get_product(&state.db, id).await?.into()))
}

/// Changes a product's name, price or active flag (admin).
#[utoipa::path(patch, path = "/products/{id}", tag = TAG, request_body = UpdateProductRequest,
    params(("id" = Uuid, Path, description = "Product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ProductResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_product(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<ProductId>,
    Json(request): Json<UpdateProductRequest>,
) -> Result<Json<ProductResponse>, Problem> {
    caller.require_admin()?;
    let patch = ProductPatch {
        name: request
            .name
            .as_deref()
            .map(ProductName::parse)
            .transpose()?,
        unit_price: request.unit_price.map(parse_unit_price).transpose()?,
        active: request.active,
    };
    if patch.is_empty() {
        return Err(
            InventoryError::invalid("body", "name, unit_price or active must be given").into(),
        );
    }
    Ok(Json(
        catalog::update_product(&state.db, &state.outbox, id, patch)
            .await?
            .into(),
    ))
}

/// Restocks or corrects available stock (admin). Never takes it below zero.
#[utoipa::path(post, path = "/products/{id}/stock", tag = TAG, request_body = AdjustStockRequest,
    params(("id" = Uuid, Path, description = "Product id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ProductResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Would go below zero", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn adjust_stock(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<ProductId>,
    Json(request): Json<AdjustStockRequest>,
) -> Result<Json<ProductResponse>, Problem> {
    caller.require_admin()?;
    let adjustment = StockAdjustment::parse(request.delta, &request.reason)?;
    Ok(Json(
        catalog::adjust_stock(&state.db, id, adjustment)
            .await?
            .into(),
    ))
}

/// Whether `quantity` units can be reserved now.
#[utoipa::path(get, path = "/products/{id}/availability", tag = TAG,
    params(("id" = Uuid, Path, description = "Product id"), AvailabilityQuery),
    responses(
        (status = 200, body = Availability),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_availability(
    State(state): State<AppState>,
    Path(id): Path<ProductId>,
    Query(query): Query<AvailabilityQuery>,
) -> Result<Json<Availability>, Problem> {
    let quantity = wanted(query.quantity)?;
    let (product, reservable) = catalog::availability(&state.db, id, quantity).await?;
    Ok(Json(Availability {
        product_id: id,
        requested: quantity,
        available: product.stock.available,
        reservable,
    }))
}

/// Whether `quantity` units can be reserved now: the availability check in
/// the shape simpler order services call (`valid` is `reservable`).
#[utoipa::path(get, path = "/products/{id}/validate", tag = TAG,
    params(("id" = Uuid, Path, description = "Product id"), AvailabilityQuery),
    responses(
        (status = 200, body = QuantityValidation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn validate_quantity(
    State(state): State<AppState>,
    Path(id): Path<ProductId>,
    Query(query): Query<AvailabilityQuery>,
) -> Result<Json<QuantityValidation>, Problem> {
    let quantity = wanted(query.quantity)?;
    let (product, valid) = catalog::availability(&state.db, id, quantity).await?;
    Ok(Json(QuantityValidation {
        product_id: id,
        quantity,
        available: product.stock.available,
        valid,
    }))
}

/// Every price the product has had, newest first, with when it took
/// effect. Orders keep the price they were placed at.
#[utoipa::path(get, path = "/products/{id}/prices", tag = TAG,
    params(("id" = Uuid, Path, description = "Product id"), PricesQuery),
    responses(
        (status = 200, body = PriceHistory),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_prices(
    State(state): State<AppState>,
    Path(id): Path<ProductId>,
    Query(query): Query<PricesQuery>,
) -> Result<Json<PriceHistory>, Problem> {
    let limit = service_kit::pagination::page_size(query.limit)?;
    let (page, next_cursor) = catalog::price_history(&state.db, id, query.cursor, limit).await?;
    let items = page
        .into_iter()
        .map(|p| PriceEntry {
            unit_price: p.unit_price,
            effective_at: p.effective_at,
            catalog_version: p.catalog_version,
        })
        .collect();
    Ok(Json(PriceHistory {
        product_id: id,
        items,
        next_cursor,
    }))
}
