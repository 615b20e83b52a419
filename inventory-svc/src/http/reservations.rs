//! Per-order reservations (admin): one order's, the holds by age, and the
//! release of a hold by hand.

use axum::extract::State;
use chrono::{DateTime, Utc};
use events::{OrderId, ProductId};
use serde::{Deserialize, Serialize};
use service_kit::holds::HeldQuery;
use service_kit::{Caller, Json, Path, Problem, Query};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::stock;
use crate::domain::{RESERVATION_PHASES, Reservation};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_reservation))
        .routes(routes!(list_held_reservations))
        .routes(routes!(release_reservation))
}

/// A page of reservations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReservationPage {
    /// The reservations, oldest first.
    pub items: Vec<ReservationResponse>,
    /// The cursor of the next page; absent on the last.
    pub next_cursor: Option<OrderId>,
}

impl From<Reservation> for ReservationResponse {
    fn from(reservation: Reservation) -> Self {
        Self {
            order_id: reservation.order_id,
            state: RESERVATION_PHASES.name(reservation.phase).to_owned(),
            reason: reservation.reason,
            lines: reservation
                .held
                .into_iter()
                .map(|l| ReservationLine {
                    product_id: l.product_id,
                    quantity: l.units,
                })
                .collect(),
            created_at: reservation.created_at,
            updated_at: reservation.updated_at,
        }
    }
}

/// The reservations that hold units (RESERVED), oldest first (admin):
/// what an order nobody decides would keep from sale.
#[utoipa::path(get, path = "/reservations", tag = "reservations", params(HeldQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReservationPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_held_reservations(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HeldQuery>,
) -> Result<Json<ReservationPage>, Problem> {
    caller.require_admin()?;
    let limit = service_kit::pagination::page_size(query.limit)?;
    let made_before = query.made_before(state.clock.now())?;
    let rows = stock::held_reservations(&state.db, made_before, query.cursor, limit + 1).await?;
    let (page, next_cursor) =
        service_kit::pagination::split_page(rows, limit, |reservation| reservation.order_id);
    Ok(Json(ReservationPage {
        items: page.into_iter().map(ReservationResponse::from).collect(),
        next_cursor,
    }))
}

/// Releases an order's reservation by hand (admin): the units go back to
/// stock and StockReleased (reason `RELEASED_BY_OPERATOR`) is published.
#[utoipa::path(post, path = "/reservations/{order_id}/release", tag = "reservations",
    params(("order_id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReservationResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
async fn release_reservation(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<OrderId>,
) -> Result<Json<ReservationResponse>, Problem> {
    caller.require_admin()?;
    let released = stock::release_by_hand(&state.db, &state.outbox, &state.clock, order_id).await?;
    Ok(Json(released.into()))
}

/// Units of one product in a reservation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReservationLine {
    /// The product.
    pub product_id: ProductId,
    /// Units.
    pub quantity: i64,
}

/// An order's reservation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReservationResponse {
    /// The order.
    pub order_id: OrderId,
    /// `RESERVED`, `REJECTED`, `RELEASED` or `COMMITTED`.
    #[schema(schema_with = reservation_state)]
    pub state: String,
    /// Why it was rejected, or released without being reserved.
    pub reason: Option<String>,
    /// The units held (RESERVED), given back (RELEASED) or shipped (COMMITTED).
    pub lines: Vec<ReservationLine>,
    /// First decision.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The reservation of one order (admin).
#[utoipa::path(get, path = "/reservations/{order_id}", tag = "reservations",
    params(("order_id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReservationResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_reservation(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<OrderId>,
) -> Result<Json<ReservationResponse>, Problem> {
    caller.require_admin()?;
    Ok(Json(
        stock::reservation_of(&state.db, order_id).await?.into(),
    ))
}

/// The schema of a reservation state: one of [`RESERVATION_PHASES`].
fn reservation_state() -> utoipa::openapi::Object {
    service_kit::holds::phase_schema(&RESERVATION_PHASES, "Where the reservation stands.")
}
