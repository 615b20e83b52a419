//! customer-svc's one error type, and how each case is answered over HTTP.

use axum::http::StatusCode;
use events::CustomerId;
use sea_orm::DbErr;
use service_kit::{Answer, InvalidInput, ServiceError};

/// Everything that can go wrong in customer-svc.
#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    /// 422 `INVALID_INPUT`: a field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// 404 `CUSTOMER_NOT_FOUND`.
    #[error("customer {0} does not exist")]
    CustomerNotFound(CustomerId),
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
    /// 429 `TOO_MANY_ATTEMPTS` with `Retry-After`: the client address's
    /// bucket is empty or the account is locked after wrong passwords.
    #[error("too many attempts; retry in {} s", retry_after_secs(*.retry_after))]
    TooManyAttempts {
        /// How long to wait.
        retry_after: std::time::Duration,
    },
    /// 503 `PASSWORD_HASHING_BUSY` with `Retry-After`: every hashing slot
    /// stayed taken for the whole queue timeout.
    #[error("the service is hashing as many passwords as it can; retry shortly")]
    Busy,
    /// 401 `INVALID_REFRESH_TOKEN`: unknown, expired or revoked.
    #[error("the refresh token is unknown, expired or revoked")]
    InvalidRefreshToken,
    /// 401 `REFRESH_TOKEN_REUSED`: a token already exchanged was shown
    /// again, so its whole family is revoked (RFC 9700 §4.14.2).
    #[error("the refresh token was used already; every token of its sign-in is revoked")]
    RefreshTokenReused,
    /// 409 `CREDIT_RESERVATION_NOT_HELD`: an operator asked to release a
    /// credit reservation that holds nothing.
    #[error("the credit reservation of order {order_id} is {state}; it holds nothing to release")]
    CreditReservationNotHeld {
        /// The order.
        order_id: events::OrderId,
        /// The reservation's state.
        state: String,
    },
    /// 403 `WRONG_PASSWORD`: the current password given to change it is wrong.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
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
        Self::Invalid(InvalidInput::new(field, message))
    }
}

/// Whole seconds to wait, at least one.
fn retry_after_secs(wait: std::time::Duration) -> u32 {
    u32::try_from(
        wait.as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0)),
    )
    .unwrap_or(u32::MAX)
    .max(1)
}

impl ServiceError for CustomerError {
    fn answer(self) -> Answer {
        use StatusCode as S;
        match self {
            Self::Invalid(invalid) => Answer::InvalidInput(invalid.field),
            Self::CustomerNotFound(_) => {
                Answer::problem(S::NOT_FOUND, "CUSTOMER_NOT_FOUND", "No such customer")
            }
            Self::EmailTaken => Answer::problem(S::CONFLICT, "EMAIL_TAKEN", "The email is taken"),
            Self::LimitBelowReserved { reserved, .. } => Answer::problem(
                S::CONFLICT,
                "CREDIT_LIMIT_BELOW_RESERVED",
                "Credit limit too low",
            )
            .with("reserved_minor", reserved),
            Self::InvalidCredentials => Answer::problem(
                S::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "Authentication failed",
            ),
            Self::AccountSuspended => Answer::problem(
                S::FORBIDDEN,
                "ACCOUNT_SUSPENDED",
                "The account is suspended",
            ),
            Self::TooManyAttempts { retry_after } => Answer::problem(
                S::TOO_MANY_REQUESTS,
                "TOO_MANY_ATTEMPTS",
                "Too many attempts",
            )
            .retry_after(retry_after_secs(retry_after)),
            Self::Busy => Answer::problem(
                S::SERVICE_UNAVAILABLE,
                "PASSWORD_HASHING_BUSY",
                "Too many password checks at once",
            )
            .retry_after(1),
            Self::InvalidRefreshToken => Answer::problem(
                S::UNAUTHORIZED,
                "INVALID_REFRESH_TOKEN",
                "The refresh token is not valid",
            ),
            Self::RefreshTokenReused => Answer::problem(
                S::UNAUTHORIZED,
                "REFRESH_TOKEN_REUSED",
                "The refresh token was used already",
            ),
            Self::WrongCurrentPassword => Answer::problem(
                S::FORBIDDEN,
                "WRONG_PASSWORD",
                "The current password is wrong",
            ),
            Self::CreditReservationNotHeld { .. } => Answer::problem(
                S::CONFLICT,
                "CREDIT_RESERVATION_NOT_HELD",
                "The credit reservation holds nothing",
            ),
            Self::Forbidden(_) => Answer::problem(S::FORBIDDEN, "FORBIDDEN", "Not allowed"),
            Self::Database(error) => Answer::Database(error),
            Self::Internal(error) => Answer::Internal(error),
        }
    }
}
