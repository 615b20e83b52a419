//! inventory-svc's one error type, and how each case is answered over HTTP.

use axum::http::StatusCode;
use events::{OrderId, ProductId};
use sea_orm::DbErr;
use service_kit::{Answer, InvalidInput, ServiceError};

/// Everything that can go wrong in inventory-svc.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// 422 `INVALID_INPUT`: a field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// 404 `PRODUCT_NOT_FOUND`.
    #[error("product {0} does not exist")]
    ProductNotFound(ProductId),
    /// 404 `RESERVATION_NOT_FOUND`.
    #[error("there is no reservation for order {0}")]
    ReservationNotFound(OrderId),
    /// 409 `RESERVATION_NOT_HELD`: the reservation holds nothing to release.
    #[error("the reservation of order {order_id} is {state}; it holds nothing to release")]
    ReservationNotHeld {
        /// The order.
        order_id: OrderId,
        /// Its reservation's state.
        state: String,
    },
    /// 409 `SKU_TAKEN`.
    #[error("a product with sku {0:?} exists already")]
    SkuTaken(String),
    /// 409 `INSUFFICIENT_STOCK`: the change would take available stock below zero.
    #[error(
        "product {product_id} has {available} units available; a change of {delta} would go below zero"
    )]
    InsufficientStock {
        /// The product.
        product_id: ProductId,
        /// Units available now.
        available: i64,
        /// The refused change.
        delta: i64,
    },
    /// 503 `DATABASE_BUSY` / `DATABASE_UNAVAILABLE` when retrying can help, else 500: the database failed.
    #[error(transparent)]
    Database(#[from] DbErr),
}

impl InventoryError {
    /// An [`InventoryError::Invalid`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid(InvalidInput::new(field, message))
    }
}

impl ServiceError for InventoryError {
    fn answer(self) -> Answer {
        use StatusCode as S;
        match self {
            Self::Invalid(invalid) => Answer::InvalidInput(invalid.field),
            Self::ProductNotFound(_) => {
                Answer::problem(S::NOT_FOUND, "PRODUCT_NOT_FOUND", "No such product")
            }
            Self::ReservationNotFound(_) => {
                Answer::problem(S::NOT_FOUND, "RESERVATION_NOT_FOUND", "No such reservation")
            }
            Self::ReservationNotHeld { .. } => Answer::problem(
                S::CONFLICT,
                "RESERVATION_NOT_HELD",
                "The reservation holds nothing",
            ),
            Self::SkuTaken(_) => Answer::problem(S::CONFLICT, "SKU_TAKEN", "The SKU is taken"),
            Self::InsufficientStock { available, .. } => {
                Answer::problem(S::CONFLICT, "INSUFFICIENT_STOCK", "Not enough stock")
                    .with("available", available)
            }
            Self::Database(error) => Answer::Database(error),
        }
    }
}
