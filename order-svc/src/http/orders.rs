use events::{
    CustomerId, EventId, Money, OrderId, OrderStatus, ProductId, Quantity, ShippingAddress,
};
use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service_kit::{AnyCase, Caller, Json, Path, Problem, Query};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::admission::Ticket;
use crate::app::orders::{self, FulfilmentStep, IdempotentRequest, Placed};
use crate::domain::values::shipping_address;
use crate::domain::{
    Carrier, IdempotencyKey, NewOrder, OrderFilter, OrderWithLines, Reason, ShippingChange,
    TimelineEntry as Entry, TrackingNumber,
};
use crate::error::OrderError;

const TAG: &str = "orders";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(order_metrics))
        .routes(routes!(get_order, delete_order))
        .routes(routes!(
            get_order_status,
            set_order_status,
            put_order_status
        ))
        .routes(routes!(get_order_events))
        .routes(routes!(cancel_order))
        .routes(routes!(update_shipping))
}

/// One requested line.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineRequest {
    /// A product of the catalog.
    pub product_id: ProductId,
    /// Units, 1-10000.
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: u32,
}

/// An order to place. Prices come from the catalog, never from the request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// Who orders; a customer may only order for themself (default: the caller).
    pub customer_id: Option<CustomerId>,
    /// 1-100 lines, one per product.
    pub lines: Vec<OrderLineRequest>,
    /// Where to ship.
    pub shipping_address: Option<ShippingAddress>,
    /// Shipping details known at placement, in the shape simpler order
    /// services take; its `address` is the same as `shipping_address`
    /// (give either, or both equal).
    pub shipping: Option<ShippingDetails>,
}

/// Carrier, tracking number and address, all optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingDetails {
    /// Carrier, 1-100 characters.
    pub carrier: Option<String>,
    /// Tracking number, 1-100 characters.
    pub tracking_number: Option<String>,
    /// Where to ship.
    pub address: Option<ShippingAddress>,
}

/// A line of an order, at the price it was placed at.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderLineResponse {
    /// The product.
    pub product_id: ProductId,
    /// Units.
    pub quantity: Quantity,
    /// Price of one unit.
    pub unit_price: Money,
    /// quantity × unit price.
    pub line_total: Money,
}

/// An order.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderResponse {
    /// Order id.
    pub id: OrderId,
    /// Who ordered.
    pub customer_id: CustomerId,
    /// `PENDING`, `CONFIRMED`, `REJECTED`, `CANCELLED`, `SHIPPED` or `DELIVERED`.
    pub status: OrderStatus,
    /// The lines.
    pub lines: Vec<OrderLineResponse>,
    /// Sum of the lines.
    pub total: Money,
    /// Where to ship.
    pub shipping_address: Option<ShippingAddress>,
    /// Carrier, once known.
    pub carrier: Option<String>,
    /// Tracking number, once known.
    pub tracking_number: Option<String>,
    /// Why it was rejected or cancelled.
    pub reason: Option<String>,
    /// When a PENDING order is cancelled if still undecided.
    pub deadline_at: DateTime<Utc>,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<OrderWithLines> for OrderResponse {
    fn from(OrderWithLines { order, lines }: OrderWithLines) -> Self {
        Self {
            id: order.id,
            customer_id: order.customer_id,
            status: order.status,
            lines: lines
                .into_iter()
                .map(|line| OrderLineResponse {
                    product_id: line.product_id,
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    line_total: line.total,
                })
                .collect(),
            total: order.total,
            shipping_address: order.shipping_address,
            carrier: order.carrier.map(String::from),
            tracking_number: order.tracking_number.map(String::from),
            reason: order.reason.map(String::from),
            deadline_at: order.deadline_at,
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

/// A page of orders.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderPage {
    /// Orders by id (placement order).
    pub items: Vec<OrderResponse>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<OrderId>,
}

/// Filters and paging of the order list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListOrdersQuery {
    /// Only orders in this status (any case: `shipped` is `SHIPPED`).
    #[param(value_type = Option<OrderStatus>)]
    pub status: Option<AnyCase<OrderStatus>>,
    /// Only this customer's orders (admins; customers see only their own).
    pub customer_id: Option<CustomerId>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<OrderId>,
    /// Page size, 1-100 (default 50).
    pub limit: Option<u64>,
}

/// An order's status.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderStatusResponse {
    /// The order.
    pub order_id: OrderId,
    /// Its status.
    pub status: OrderStatus,
    /// Why it was rejected or cancelled.
    pub reason: Option<String>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One entry of the timeline.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    /// The event's id.
    pub event_id: EventId,
    /// Its type, e.g. `StockReserved`.
    pub event_type: String,
    /// The service that produced it.
    pub producer: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Its reason or detail, if it has one.
    pub reason: Option<String>,
}

/// Every event of an order's saga, in the order order-svc recorded them.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Timeline {
    /// The order.
    pub order_id: OrderId,
    /// The events.
    pub events: Vec<TimelineEntry>,
}

/// Why an order is cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Free text, 1-1000 characters.
    pub reason: Option<String>,
}

/// A fulfilment step (admin): `SHIPPED` with carrier and tracking number, or `DELIVERED`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChangeRequest {
    /// The status to move to, in any case (`shipped` is `SHIPPED`).
    #[schema(value_type = OrderStatus)]
    pub status: AnyCase<OrderStatus>,
    /// Carrier, for `SHIPPED`.
    pub carrier: Option<String>,
    /// Tracking number, for `SHIPPED`.
    pub tracking_number: Option<String>,
}

/// New shipping details; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShippingRequest {
    /// Carrier.
    pub carrier: Option<String>,
    /// Tracking number.
    pub tracking_number: Option<String>,
    /// Address.
    pub shipping_address: Option<ShippingAddress>,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Latency {
    /// How many orders were measured.
    pub count: usize,
    /// Median.
    pub p50: Option<i64>,
    /// 90th percentile.
    pub p90: Option<i64>,
    /// 99th percentile.
    pub p99: Option<i64>,
    /// Slowest.
    pub max: Option<i64>,
}

impl From<Entry> for TimelineEntry {
    fn from(entry: Entry) -> Self {
        Self {
            event_id: entry.event_id,
            event_type: entry.event_type,
            producer: entry.producer,
            occurred_at: entry.occurred_at,
            reason: entry.reason,
        }
    }
}

impl Latency {
    fn of(mut millis: Vec<i64>) -> Self {
        millis.sort_unstable();
        Self {
            count: millis.len(),
            p50: orders::quantile(&millis, 0.5),
            p90: orders::quantile(&millis, 0.9),
            p99: orders::quantile(&millis, 0.99),
            max: millis.last().copied(),
        }
    }
}

/// Orders by status and how fast the saga decides.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrderMetricsResponse {
    /// Every order, whatever its status.
    pub total_orders: u64,
    /// Mean milliseconds from placement to decision (confirmed, rejected or
    /// cancelled; last 10,000 decisions); absent before the first.
    pub avg_processing_ms: Option<f64>,
    /// Orders decided in the last minute.
    pub decided_last_minute: u64,
    /// Orders per status.
    pub counts: BTreeMap<String, u64>,
    /// Placement to CONFIRMED (last 10,000 decisions).
    pub place_to_confirmed_ms: Latency,
    /// Placement to REJECTED (last 10,000 decisions).
    pub place_to_rejected_ms: Latency,
}

fn accepted(order: OrderResponse) -> Response {
    let location = format!("/orders/{}", order.id);
    (
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(order),
    )
        .into_response()
}

/// Places an order. It is PENDING until stock and credit are reserved;
/// follow it at the Location. With `Idempotency-Key`, a retry of the same
/// request returns the first answer and creates nothing.
#[utoipa::path(post, path = "/orders", tag = TAG, request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: 1-255 printable ASCII characters, kept per customer")),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted; Location names the order", body = OrderResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Ordering for another customer", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, unknown or inactive product, or the key reused with another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many orders in the saga (`OVERLOADED`; the bound is `OMS_MAX_PENDING_ORDERS`), or the database cannot take the request now (`DATABASE_BUSY`, `DATABASE_UNAVAILABLE`); nothing was written: retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ))]
async fn place_order(
    Admitted(ticket): Admitted,
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(request): Json<PlaceOrderRequest>,
) -> Result<Response, Problem> {
    let customer_id = request.customer_id.unwrap_or(caller.id);
    if !orders::may_act_for(&caller, customer_id) {
        return Err(OrderError::Forbidden("customers may order only for themselves").into());
    }
    let idempotent = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(IdempotentRequest {
            key: IdempotencyKey::parse(value.as_bytes())?,
            // The request as the key remembers it: the customer resolved.
            request: serde_json::to_string(&PlaceOrderRequest {
                customer_id: Some(customer_id),
                ..request.clone()
            })
            .map_err(|e| OrderError::Internal(e.into()))?,
        }),
    };
    let lines: Vec<(ProductId, u32)> = request
        .lines
        .iter()
        .map(|l| (l.product_id, l.quantity))
        .collect();
    let shipping = request.shipping.clone().unwrap_or(ShippingDetails {
        carrier: None,
        tracking_number: None,
        address: None,
    });
    let address = match (request.shipping_address, shipping.address) {
        (Some(a), Some(b)) if a != b => {
            return Err(OrderError::invalid(
                "shipping.address",
                "differs from shipping_address; give one of them",
            )
            .into());
        }
        (a, b) => a.or(b),
    };
    let new = NewOrder::parse(customer_id, &lines)?.shipped_as(
        address.map(shipping_address).transpose()?,
        shipping
            .carrier
            .map(|c| Carrier::parse("shipping.carrier", &c))
            .transpose()?,
        shipping
            .tracking_number
            .map(|t| TrackingNumber::parse("shipping.tracking_number", &t))
            .transpose()?,
    );
    let render = |created: &OrderWithLines| {
        serde_json::to_string(&OrderResponse::from(created.clone()))
            .map_err(|e| OrderError::Internal(e.into()))
    };
    let placed = state
        .desk
        .place(&caller, new, idempotent, render, ticket)
        .await?;
    if let Placed::New(created) = &placed {
        tracing::Span::current().record("order_id", tracing::field::display(created.order.id));
    }
    match placed {
        Placed::New(created) => Ok(accepted(created.into())),
        Placed::Replayed(first_answer) => {
            let order: OrderResponse =
                serde_json::from_str(&first_answer).map_err(|e| OrderError::Internal(e.into()))?;
            Ok(accepted(order))
        }
    }
}

/// Lists orders: a customer's own, or (admin) anyone's, by placement.
#[utoipa::path(get, path = "/orders", tag = TAG, params(ListOrdersQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ListOrdersQuery>,
) -> Result<Json<OrderPage>, Problem> {
    let limit = service_kit::pagination::page_size(query.limit)?;
    let filter = OrderFilter {
        customer_id: query.customer_id,
        status: query.status.map(|s| s.0),
    };
    let (page, next_cursor) =
        orders::list_orders(&state.db, &caller, filter, query.cursor, limit).await?;
    let items = page.into_iter().map(OrderResponse::from).collect();
    Ok(Json(OrderPage { items, next_cursor }))
}

/// Orders by status and placement→decision latency percentiles (admin).
#[utoipa::path(get, path = "/orders/metrics", tag = TAG,
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderMetricsResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn order_metrics(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<OrderMetricsResponse>, Problem> {
    caller.require_admin()?;
    let metrics = state.desk.metrics().await?;
    let decisions = &metrics.to_decision_ms;
    #[allow(clippy::cast_precision_loss)]
    let avg_processing_ms = (!decisions.is_empty())
        .then(|| decisions.iter().sum::<i64>() as f64 / decisions.len() as f64);
    Ok(Json(OrderMetricsResponse {
        total_orders: metrics.counts.iter().map(|(_, n)| n).sum(),
        avg_processing_ms,
        decided_last_minute: metrics.decided_last_minute,
        counts: metrics
            .counts
            .into_iter()
            .map(|(s, n)| (s.as_str().to_owned(), n))
            .collect(),
        place_to_confirmed_ms: Latency::of(metrics.to_confirmed_ms),
        place_to_rejected_ms: Latency::of(metrics.to_rejected_ms),
    }))
}

/// One order (its customer or an admin).
#[utoipa::path(get, path = "/orders/{id}", tag = TAG,
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<OrderId>,
) -> Result<Json<OrderResponse>, Problem> {
    Ok(Json(
        orders::get_order(&state.db, &caller, id).await?.into(),
    ))
}

/// An order's status.
#[utoipa::path(get, path = "/orders/{id}/status", tag = TAG,
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderStatusResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_order_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<OrderId>,
) -> Result<Json<OrderStatusResponse>, Problem> {
    let order = orders::get_order(&state.db, &caller, id).await?.order;
    Ok(Json(OrderStatusResponse {
        order_id: id,
        status: order.status,
        reason: order.reason.map(String::from),
        updated_at: order.updated_at,
    }))
}

/// The order's timeline: every saga event, in order, with time, type and reason.
#[utoipa::path(get, path = "/orders/{id}/events", tag = TAG,
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Timeline),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_order_events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<OrderId>,
) -> Result<Json<Timeline>, Problem> {
    let events = orders::timeline(&state.db, &caller, id)
        .await?
        .into_iter()
        .map(TimelineEntry::from)
        .collect();
    Ok(Json(Timeline {
        order_id: id,
        events,
    }))
}

/// Cancels an order while PENDING or CONFIRMED (its customer or an admin);
/// participants release what they reserved. 409 afterwards.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = TAG, request_body(content = Option<CancelRequest>, description = "Optional reason"),
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too late to cancel", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<OrderId>,
    body: Bytes,
) -> Result<Json<OrderResponse>, Problem> {
    let reason = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let request: CancelRequest = serde_json::from_slice(&body).map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_BODY",
                "The request body does not have the expected shape",
            )
            .with_detail(e.to_string())
        })?;
        request.reason
    };
    let reason = reason.map(|r| Reason::parse("reason", &r)).transpose()?;
    Ok(Json(state.desk.cancel(&caller, id, reason).await?.into()))
}

/// Cancels an order, like `POST /orders/{id}/cancel`; the record is kept.
#[utoipa::path(delete, path = "/orders/{id}", tag = TAG,
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too late to cancel", body = Problem, content_type = "application/problem+json"),
    ))]
async fn delete_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<OrderId>,
) -> Result<Json<OrderResponse>, Problem> {
    Ok(Json(state.desk.cancel(&caller, id, None).await?.into()))
}

/// Fulfilment (admin): CONFIRMED → SHIPPED with carrier and tracking number,
/// SHIPPED → DELIVERED. Anything else is a 409 listing the allowed transitions.
#[utoipa::path(patch, path = "/orders/{id}/status", tag = TAG, request_body = StatusChangeRequest,
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed now; `allowed_transitions` says what is", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn set_order_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<OrderId>,
    Json(request): Json<StatusChangeRequest>,
) -> Result<Json<OrderResponse>, Problem> {
    change_status(&state, &caller, id, request).await
}

/// The same fulfilment step as `PATCH /orders/{id}/status`, for clients
/// that send `PUT`: the same transitions, the same errors.
#[utoipa::path(put, path = "/orders/{id}/status", tag = TAG, request_body = StatusChangeRequest,
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed now; `allowed_transitions` says what is", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn put_order_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<OrderId>,
    Json(request): Json<StatusChangeRequest>,
) -> Result<Json<OrderResponse>, Problem> {
    change_status(&state, &caller, id, request).await
}

async fn change_status(
    state: &AppState,
    caller: &Caller,
    id: OrderId,
    request: StatusChangeRequest,
) -> Result<Json<OrderResponse>, Problem> {
    caller.require_admin()?;
    let step = match request.status.0 {
        OrderStatus::Shipped => FulfilmentStep::Ship {
            carrier: Carrier::parse("carrier", request.carrier.as_deref().unwrap_or_default())?,
            tracking_number: TrackingNumber::parse(
                "tracking_number",
                request.tracking_number.as_deref().unwrap_or_default(),
            )?,
        },
        OrderStatus::Delivered => FulfilmentStep::Deliver,
        other => FulfilmentStep::Other(other),
    };
    Ok(Json(state.desk.fulfil(id, step).await?.into()))
}

/// Changes carrier, tracking number or address before delivery (its
/// customer or an admin); publishes ShippingUpdated.
#[utoipa::path(patch, path = "/orders/{id}/shipping", tag = TAG, request_body = ShippingRequest,
    params(("id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = OrderResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Delivered, rejected or cancelled", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn update_shipping(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<OrderId>,
    Json(request): Json<ShippingRequest>,
) -> Result<Json<OrderResponse>, Problem> {
    let change = ShippingChange {
        carrier: request
            .carrier
            .map(|c| Carrier::parse("carrier", &c))
            .transpose()?,
        tracking_number: request
            .tracking_number
            .map(|t| TrackingNumber::parse("tracking_number", &t))
            .transpose()?,
        shipping_address: request.shipping_address.map(shipping_address).transpose()?,
    };
    if change.is_empty() {
        return Err(OrderError::invalid(
            "body",
            "carrier, tracking_number or shipping_address must be given",
        )
        .into());
    }
    Ok(Json(
        state
            .desk
            .update_shipping(&caller, id, change)
            .await?
            .into(),
    ))
}

/// A place in the saga's backlog for the order being placed
/// ([`crate::app::admission`]). It is the handler's first extractor, so
/// a refusal comes before the token is checked and the body read, and
/// costs next to nothing however many are refused.
struct Admitted(Ticket);

impl FromRequestParts<AppState> for Admitted {
    type Rejection = Problem;

    async fn from_request_parts(_: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Ok(Self(state.desk.admit()?))
    }
}
