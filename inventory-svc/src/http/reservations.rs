use axum::extract::State;
use chrono::{DateTime, Utc};
use events::{OrderId, ProductId};
use serde::{Deserialize, Serialize};
use service_kit::{Caller, Json, Path, Problem};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::stock;
use crate::domain::ReservationState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_reservation))
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
    pub state: ReservationState,
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
    let (reservation, lines) = stock::reservation_of(&state.db, order_id).await?;
    Ok(Json(ReservationResponse {
        order_id,
        state: reservation.state,
        reason: reservation.reason,
        lines: lines
            .into_iter()
            .map(|l| ReservationLine {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect(),
        created_at: reservation.created_at,
        updated_at: reservation.updated_at,
    }))
}
