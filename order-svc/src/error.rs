//! order-svc's one error type, and how each case is answered over HTTP.

use axum::http::StatusCode;
use events::{OrderId, OrderStatus, ProductId};
use sea_orm::DbErr;
use service_kit::{Answer, InvalidInput, ServiceError};

/// Everything that can go wrong in order-svc.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// 422 `INVALID_INPUT`: a field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
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
    /// 503 `OVERLOADED` with `Retry-After`: the saga's backlog is at its
    /// bound (see `app::admission`); nothing was written.
    #[error(
        "order-svc takes no new order now: the saga's backlog is at its bound; retry after {retry_after_secs} s"
    )]
    Overloaded {
        /// Seconds for the `Retry-After` header.
        retry_after_secs: u32,
    },
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
        Self::Invalid(InvalidInput::new(field, message))
    }
}

impl ServiceError for OrderError {
    fn answer(self) -> Answer {
        use StatusCode as S;
        match self {
            Self::Invalid(invalid) => Answer::InvalidInput(invalid.field),
            Self::UnknownProduct(id) => Answer::problem(
                S::UNPROCESSABLE_ENTITY,
                "UNKNOWN_PRODUCT",
                "Unknown product",
            )
            .with("product_id", id.to_string()),
            Self::InactiveProduct(id) => Answer::problem(
                S::UNPROCESSABLE_ENTITY,
                "INACTIVE_PRODUCT",
                "Product not for sale",
            )
            .with("product_id", id.to_string()),
            Self::MixedCurrencies(..) => Answer::problem(
                S::UNPROCESSABLE_ENTITY,
                "MIXED_CURRENCIES",
                "Mixed currencies",
            ),
            Self::IdempotencyKeyReused => Answer::problem(
                S::UNPROCESSABLE_ENTITY,
                "IDEMPOTENCY_KEY_REUSED",
                "Idempotency-Key reused",
            ),
            Self::OrderNotFound(_) => {
                Answer::problem(S::NOT_FOUND, "ORDER_NOT_FOUND", "No such order")
            }
            Self::Forbidden(_) => Answer::problem(S::FORBIDDEN, "FORBIDDEN", "Not allowed"),
            Self::InvalidTransition { from, allowed, .. } => Answer::problem(
                S::CONFLICT,
                "INVALID_TRANSITION",
                "The order cannot move that way",
            )
            .with("order_status", from.as_str())
            .with(
                "allowed_transitions",
                allowed.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            ),
            Self::ShippingLocked(status) => {
                Answer::problem(S::CONFLICT, "SHIPPING_LOCKED", "Shipping details are final")
                    .with("order_status", status.as_str())
            }
            Self::Overloaded { retry_after_secs } => Answer::problem(
                S::SERVICE_UNAVAILABLE,
                "OVERLOADED",
                "Too many orders in progress",
            )
            .retry_after(retry_after_secs),
            Self::Database(error) => Answer::Database(error),
            Self::Internal(error) => Answer::Internal(error),
        }
    }
}
