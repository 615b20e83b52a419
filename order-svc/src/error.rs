//! order-svc's one error type, and how each case is answered over HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use events::{OrderId, OrderStatus, ProductId};
use sea_orm::DbErr;
use service_kit::Problem;

/// Everything that can go wrong in order-svc.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// 422 `INVALID_INPUT`: a field breaks a rule.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// The rule it breaks.
        message: String,
    },
    /// 422 `UNKNOWN_PRODUCT`: not in the catalog.
    #[error("product {0} is not in the catalog")]
    UnknownProduct(ProductId),
    /// 422 `INACTIVE_PRODUCT`: in the catalog but not for sale.
    #[error("product {0} is not for sale")]
    InactiveProduct(ProductId),
    /// 422 `MIXED_CURRENCIES`: the lines are priced in different currencies.
    #[error("the products are priced in different currencies ({0} and {1}); order them separately")]
    MixedCurrencies(String, String),
    /// 422 `IDEMPOTENCY_KEY_REUSED`: the key was used with another request.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    /// 404 `ORDER_NOT_FOUND` (also for orders of other customers).
    #[error("order {0} does not exist")]
    OrderNotFound(OrderId),
    /// 403 `FORBIDDEN`.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 409 `INVALID_TRANSITION`: the order cannot move that way now.
    #[error("an order that is {from} cannot become {to}")]
    InvalidTransition {
        /// Its status now.
        from: OrderStatus,
        /// The status asked for.
        to: OrderStatus,
        /// Where it could go.
        allowed: Vec<OrderStatus>,
    },
    /// 409 `SHIPPING_LOCKED`: shipping details cannot change any more.
    #[error("the shipping details of an order that is {0} cannot change")]
    ShippingLocked(OrderStatus),
    /// 503 `DATABASE_BUSY` / `DATABASE_UNAVAILABLE` when retrying can help, else 500: the database failed.
    #[error(transparent)]
    Database(#[from] DbErr),
    /// 500: something else failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl OrderError {
    /// An [`OrderError::Invalid`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<OrderError> for Problem {
    fn from(error: OrderError) -> Self {
        let detail = error.to_string();
        let unprocessable = |code: &str, title: &str| {
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, title).with_detail(detail.clone())
        };
        match error {
            OrderError::Invalid { field, .. } => Problem::invalid_input(field, detail),
            OrderError::UnknownProduct(id) => unprocessable("UNKNOWN_PRODUCT", "Unknown product")
                .with_extension("product_id", id.to_string()),
            OrderError::InactiveProduct(id) => {
                unprocessable("INACTIVE_PRODUCT", "Product not for sale")
                    .with_extension("product_id", id.to_string())
            }
            OrderError::MixedCurrencies(..) => {
                unprocessable("MIXED_CURRENCIES", "Mixed currencies")
            }
            OrderError::IdempotencyKeyReused => {
                unprocessable("IDEMPOTENCY_KEY_REUSED", "Idempotency-Key reused")
            }
            OrderError::OrderNotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "ORDER_NOT_FOUND", "No such order")
                    .with_detail(detail)
            }
            OrderError::Forbidden(why) => {
                Problem::new(StatusCode::FORBIDDEN, "FORBIDDEN", "Not allowed").with_detail(why)
            }
            OrderError::InvalidTransition { from, allowed, .. } => Problem::new(
                StatusCode::CONFLICT,
                "INVALID_TRANSITION",
                "The order cannot move that way",
            )
            .with_detail(detail)
            .with_extension("order_status", from.as_str())
            .with_extension(
                "allowed_transitions",
                allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ),
            OrderError::ShippingLocked(status) => Problem::new(
                StatusCode::CONFLICT,
                "SHIPPING_LOCKED",
                "Shipping details are final",
            )
            .with_detail(detail)
            .with_extension("order_status", status.as_str()),
            OrderError::Database(error) => Problem::database(error),
            OrderError::Internal(error) => Problem::internal(&error),
        }
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
