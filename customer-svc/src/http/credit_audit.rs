//! Credit (admin): one order's credit reservation, the holds by age, the
//! release of a hold by hand, and the credit audit.

use axum::extract::State;
use chrono::{DateTime, Utc};
use event_runtime::participant::ManualRelease;
use events::{CustomerId, OrderId};
use serde::{Deserialize, Serialize};
use service_kit::holds::HeldQuery;
use service_kit::{Caller, Json, Path, Problem, Query};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::credit;
use crate::app::customers;
use crate::domain::{CREDIT_PHASES, CreditReservation};
use crate::error::CustomerError;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_credit_audit))
        .routes(routes!(get_credit_reservation))
        .routes(routes!(list_held_credit_reservations))
        .routes(routes!(release_credit_reservation))
}

/// A page of credit reservations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreditReservationPage {
    /// The reservations, oldest first.
    pub items: Vec<CreditReservationResponse>,
    /// The cursor of the next page; absent on the last.
    pub next_cursor: Option<OrderId>,
}

impl From<CreditReservation> for CreditReservationResponse {
    fn from(reservation: CreditReservation) -> Self {
        Self {
            order_id: reservation.order_id,
            state: CREDIT_PHASES.name(reservation.phase).to_owned(),
            customer_id: reservation.held.customer_id,
            amount_minor: reservation.held.amount.amount_minor(),
            currency: reservation.held.amount.currency().as_str().to_owned(),
            reason: reservation.reason,
            created_at: reservation.created_at,
        }
    }
}

/// The credit reservations that hold (RESERVED), oldest first (admin):
/// what an order nobody decides would keep from its customer.
#[utoipa::path(get, path = "/credit/reservations", tag = "credit", params(HeldQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CreditReservationPage),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_held_credit_reservations(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HeldQuery>,
) -> Result<Json<CreditReservationPage>, Problem> {
    caller.require_admin()?;
    let limit = service_kit::pagination::page_size(query.limit)?;
    let made_before = query.made_before(state.clock.now())?;
    let rows = credit::held_reservations(&state.db, made_before, query.cursor, limit + 1).await?;
    let (page, next_cursor) = service_kit::pagination::split_page(rows, limit, |r| r.order_id);
    Ok(Json(CreditReservationPage {
        items: page.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Releases an order's credit reservation by hand (admin): the amount goes
/// back to the customer and CreditReleased (reason
/// `RELEASED_BY_OPERATOR`) is published.
#[utoipa::path(post, path = "/credit/reservations/{order_id}/release", tag = "credit",
    params(("order_id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CreditReservationResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ))]
async fn release_credit_reservation(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<OrderId>,
) -> Result<Json<CreditReservationResponse>, Problem> {
    caller.require_admin()?;
    match credit::release_by_hand(&state.db, &state.outbox, &state.clock, order_id).await? {
        ManualRelease::Released(_) => {}
        ManualRelease::NotFound => {
            return Err(Problem::not_found(format!(
                "customer-svc has no credit reservation for order {order_id}"
            )));
        }
        ManualRelease::NotHeld(state) => {
            return Err(CustomerError::CreditReservationNotHeld { order_id, state }.into());
        }
    }
    let released = credit::reservation_of(&state.db, order_id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no credit reservation for order {order_id}")))?;
    Ok(Json(released.into()))
}

/// An order's credit reservation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreditReservationResponse {
    /// The order.
    pub order_id: OrderId,
    /// The customer it named (nil for an order released before it was placed).
    pub customer_id: CustomerId,
    /// `RESERVED`, `REJECTED`, `RELEASED` or `SETTLED`.
    #[schema(schema_with = credit_reservation_state)]
    pub state: String,
    /// The amount held or once held, in minor units.
    pub amount_minor: i64,
    /// Its currency.
    pub currency: String,
    /// Why it was rejected, or released by the service
    /// (`HOLD_EXPIRED`, `RELEASED_BY_OPERATOR`).
    pub reason: Option<String>,
    /// When it was decided (the age of a hold).
    pub created_at: DateTime<Utc>,
}

/// The credit reservation of one order (admin).
#[utoipa::path(get, path = "/credit/reservations/{order_id}", tag = "credit",
    params(("order_id" = Uuid, Path, description = "Order id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CreditReservationResponse),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_credit_reservation(
    State(state): State<AppState>,
    caller: Caller,
    Path(order_id): Path<OrderId>,
) -> Result<Json<CreditReservationResponse>, Problem> {
    caller.require_admin()?;
    let reservation = credit::reservation_of(&state.db, order_id)
        .await?
        .ok_or_else(|| {
            Problem::not_found(format!(
                "customer-svc has no credit reservation for order {order_id}"
            ))
        })?;
    Ok(Json(reservation.into()))
}

/// One customer's credit books.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerCreditBooks {
    /// The customer.
    pub customer_id: CustomerId,
    /// Their limit, in minor units.
    pub credit_limit_minor: i64,
    /// Held, per the customer.
    pub credit_reserved_minor: i64,
    /// Held, per the RESERVED reservations of their orders.
    pub reserved_by_orders: i64,
    /// Both agree and stay within the limit.
    pub balanced: bool,
}

/// The credit invariant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreditAudit {
    /// Whether every customer balances.
    pub balanced: bool,
    /// Every customer's books.
    pub customers: Vec<CustomerCreditBooks>,
}

/// Checks, for every customer, that reserved credit equals the total of
/// their orders that reserved and were neither released nor settled, and
/// never exceeds the limit (admin).
#[utoipa::path(get, path = "/credit/audit", tag = "credit",
    security(("bearer" = [])),
    responses(
        (status = 200, body = CreditAudit),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn get_credit_audit(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<CreditAudit>, Problem> {
    caller.require_admin()?;
    let customers: Vec<CustomerCreditBooks> = customers::credit_books(&state.db)
        .await?
        .into_iter()
        .map(|b| CustomerCreditBooks {
            balanced: b.balanced(),
            customer_id: b.customer_id,
            credit_limit_minor: b.credit_limit_minor,
            credit_reserved_minor: b.credit_reserved_minor,
            reserved_by_orders: b.reserved_by_orders,
        })
        .collect();
    Ok(Json(CreditAudit {
        balanced: customers.iter().all(|c| c.balanced),
        customers,
    }))
}

/// The schema of a credit reservation state: one of [`CREDIT_PHASES`].
fn credit_reservation_state() -> utoipa::openapi::Object {
    service_kit::holds::phase_schema(&CREDIT_PHASES, "Where the credit reservation stands.")
}
