//! customer-svc's one error type, and how each case is answered over HTTP.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sea_orm::{DbErr, SqlErr};
use service_kit::Problem;
use uuid::Uuid;

/// Everything that can go wrong in customer-svc.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    /// 422 `INVALID_INPUT`: a field breaks a rule.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// The rule it breaks.
        message: String,
    },
    /// 404 `CUSTOMER_NOT_FOUND`.
    #[error("customer {0} does not exist")]
    CustomerNotFound(Uuid),
    /// 409 `EMAIL_TAKEN`.
    #[error("a customer with this email exists already")]
    EmailTaken,
    /// 409 `CREDIT_LIMIT_BELOW_RESERVED`: a limit under what open orders hold.
    #[error("the credit limit {limit} is below the {reserved} reserved for open orders")]
    LimitBelowReserved {
        /// The refused limit, in minor units.
        limit: i64,
        /// What is reserved now, in minor units.
        reserved: i64,
    },
    /// 401 `INVALID_CREDENTIALS`: no hint which part was wrong.
    #[error("the email or the password is wrong")]
    InvalidCredentials,
    /// 403 `ACCOUNT_SUSPENDED`: the credentials are right, the account may
    /// not sign in (said only to whoever knows its password).
    #[error("the account is suspended")]
    AccountSuspended,
    /// 403 `FORBIDDEN`.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 503 `DATABASE_BUSY` / `DATABASE_UNAVAILABLE` when retrying can help, else 500: the database failed.
    #[error(transparent)]
    Database(#[from] DbErr),
    /// 500: something else failed (hashing, signing).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl CustomerError {
    /// An [`CustomerError::Invalid`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }

    /// Whether a database error is a unique-constraint violation.
    pub fn is_unique_violation(error: &DbErr) -> bool {
        matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
    }
}

impl From<CustomerError> for Problem {
    fn from(error: CustomerError) -> Self {
        let detail = error.to_string();
        match error {
            CustomerError::Invalid { field, .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_INPUT",
                "The request is invalid",
            )
            .with_detail(detail)
            .with_extension("field", field),
            CustomerError::CustomerNotFound(_) => Problem::new(
                StatusCode::NOT_FOUND,
                "CUSTOMER_NOT_FOUND",
                "No such customer",
            )
            .with_detail(detail),
            CustomerError::EmailTaken => {
                Problem::new(StatusCode::CONFLICT, "EMAIL_TAKEN", "The email is taken")
                    .with_detail(detail)
            }
            CustomerError::LimitBelowReserved { reserved, .. } => Problem::new(
                StatusCode::CONFLICT,
                "CREDIT_LIMIT_BELOW_RESERVED",
                "Credit limit too low",
            )
            .with_detail(detail)
            .with_extension("reserved_minor", reserved),
            CustomerError::InvalidCredentials => Problem::new(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "Authentication failed",
            )
            .with_detail(detail),
            CustomerError::AccountSuspended => Problem::new(
                StatusCode::FORBIDDEN,
                "ACCOUNT_SUSPENDED",
                "The account is suspended",
            )
            .with_detail(detail),
            CustomerError::Forbidden(why) => {
                Problem::new(StatusCode::FORBIDDEN, "FORBIDDEN", "Not allowed").with_detail(why)
            }
            CustomerError::Database(error) => Problem::database(error),
            CustomerError::Internal(error) => Problem::internal(&error),
        }
    }
}

impl IntoResponse for CustomerError {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
