use axum::extract::State;
use events::{CustomerId, OrderId};
use serde::{Deserialize, Serialize};
use service_kit::{Caller, Json, Path, Problem};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::credit;
use crate::app::customers;
use crate::domain::CreditState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_credit_audit))
        .routes(routes!(get_credit_reservation))
}

/// An order's credit reservation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreditReservationResponse {
    /// The order.
    pub order_id: OrderId,
    /// The customer it named (nil for an order released before it was placed).
    pub customer_id: CustomerId,
    /// `RESERVED`, `REJECTED`, `RELEASED` or `SETTLED`.
    pub state: CreditState,
    /// The amount held or once held, in minor units.
    pub amount_minor: i64,
    /// Its currency.
    pub currency: String,
    /// Why it was rejected.
    pub reason: Option<String>,
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
    Ok(Json(CreditReservationResponse {
        state: reservation.state,
        order_id,
        customer_id: reservation.customer_id,
        amount_minor: reservation.amount_minor,
        currency: reservation.currency,
        reason: reservation.reason,
    }))
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
