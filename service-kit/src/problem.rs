//! Errors as RFC 9457 problem details (`application/problem+json`), each
//! with a stable upper-case `code` that clients can switch on.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use event_runtime::database;
use sea_orm::DbErr;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The media type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response. Serialized as
/// `{"type", "title", "status", "code", "detail"?, …extensions}`.
///
/// Boxed, so that `Result<T, Problem>` stays as small as `T` on the happy path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Problem {
    details: Box<ProblemDetails>,
    /// Seconds for the `Retry-After` header of a 503 or 429.
    #[serde(skip)]
    retry_after_secs: Option<u32>,
}

/// The members of a [`Problem`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = Problem, example = json!({
    "type": "urn:oms:problem:MALFORMED_JSON",
    "title": "The request body is not valid JSON",
    "status": 400,
    "code": "MALFORMED_JSON",
    "detail": "expected `,` or `}` at line 1 column 12"
}))]
pub struct ProblemDetails {
    /// `urn:oms:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// A stable, upper-case, machine-readable code, e.g. `PAYLOAD_TOO_LARGE`.
    pub code: String,
    /// What went wrong in this occurrence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Problem-specific members, e.g. `allowed_transitions`.
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl std::ops::Deref for Problem {
    type Target = ProblemDetails;

    fn deref(&self) -> &ProblemDetails {
        &self.details
    }
}

impl utoipa::PartialSchema for Problem {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ProblemDetails::schema()
    }
}

impl ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        ProblemDetails::name()
    }
}

impl Problem {
    /// A problem with a status, a stable code and a title.
    pub fn new(status: StatusCode, code: &str, title: impl Into<String>) -> Self {
        Self {
            details: Box::new(ProblemDetails {
                type_uri: format!("urn:oms:problem:{code}"),
                title: title.into(),
                status: status.as_u16(),
                code: code.to_owned(),
                detail: None,
                extensions: serde_json::Map::new(),
            }),
            retry_after_secs: None,
        }
    }

    /// Adds the occurrence's detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.details.detail = Some(detail.into());
        self
    }

    /// Adds a problem-specific member. Its name must not be one of the
    /// standard members (`type`, `title`, `status`, `code`, `detail`).
    pub fn with_extension(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        debug_assert!(
            !matches!(key, "type" | "title" | "status" | "code" | "detail"),
            "extension {key:?} would shadow a standard problem member"
        );
        self.details.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// Tells the client, in a `Retry-After` header, when to try again.
    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_secs = Some(seconds);
        self
    }

    /// The `Retry-After` seconds, if any.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after_secs
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 422 `INVALID_INPUT`: `field` of the request breaks a rule, which
    /// `detail` states.
    pub fn invalid_input(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_INPUT",
            "The request is invalid",
        )
        .with_detail(detail)
        .with_extension("field", field.into())
    }

    /// 404 `NOT_FOUND`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The resource does not exist",
        )
        .with_detail(detail)
    }

    /// 500 `INTERNAL`: logs `error` with its whole cause chain and tells the
    /// client nothing about it.
    ///
    /// A database error that retrying can fix becomes a 503 instead, as in
    /// [`database`](Self::database).
    pub fn internal(error: &anyhow::Error) -> Self {
        if let Some(problem) = error
            .downcast_ref::<DbErr>()
            .and_then(Self::retryable_database)
        {
            return problem;
        }
        tracing::error!(error = format!("{error:#}"), "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Internal error",
        )
        .with_detail("The error was logged; retry later or contact the operator.")
    }

    /// The answer to a failed database call: 503 `DATABASE_BUSY` when
    /// SQLite stayed locked through every retry, 503
    /// `DATABASE_UNAVAILABLE` when the database cannot be reached or has no
    /// free connection in time (both with `Retry-After`), otherwise 500
    /// `INTERNAL` with the error logged.
    pub fn database(error: DbErr) -> Self {
        Self::retryable_database(&error).unwrap_or_else(|| Self::internal(&error.into()))
    }

    fn retryable_database(error: &DbErr) -> Option<Self> {
        if database::is_busy(error) {
            tracing::warn!(error = %error, "database still locked after retries; answering 503");
            Some(
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "DATABASE_BUSY",
                    "The database is busy",
                )
                .with_detail("Too many writes are waiting for the database; retry shortly.")
                .with_retry_after(1),
            )
        } else if database::is_unavailable(error) {
            tracing::warn!(error = %error, "database unavailable; answering 503");
            Some(
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "DATABASE_UNAVAILABLE",
                    "The database is unavailable",
                )
                .with_detail("The service cannot reach its database right now; retry shortly.")
                .with_retry_after(2),
            )
        } else {
            None
        }
    }
}

impl From<DbErr> for Problem {
    fn from(error: DbErr) -> Self {
        Self::database(error)
    }
}

/// A field of a request that breaks a rule: answered 422 `INVALID_INPUT`
/// naming the field. The case every service's error has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    /// The offending field.
    pub field: &'static str,
    /// The rule it breaks.
    pub message: String,
}

impl InvalidInput {
    /// `field` breaks the rule `message` states.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A service's one error type: each case says how it is answered
/// ([`Answer`]), and its message is the problem's `detail`. Every such
/// error converts into a [`Problem`], so handlers return `Problem` and use
/// `?` on it.
pub trait ServiceError: std::fmt::Display {
    /// How this case is answered.
    fn answer(self) -> Answer;
}

/// How one case of a [`ServiceError`] is answered.
#[derive(Debug)]
pub enum Answer {
    /// This problem (status, stable code, title and any extension
    /// members), with the error's message as its detail.
    Problem(Problem),
    /// 422 `INVALID_INPUT` naming the field, with the error's message.
    InvalidInput(&'static str),
    /// A failed database call ([`Problem::database`]).
    Database(DbErr),
    /// Anything else: 500, logged ([`Problem::internal`]).
    Internal(anyhow::Error),
}

impl Answer {
    /// `status`, a stable `code` and a `title`.
    pub fn problem(status: StatusCode, code: &str, title: &str) -> Self {
        Self::Problem(Problem::new(status, code, title))
    }

    /// The same, with the extension member `name`.
    #[must_use]
    pub fn with(self, name: &str, value: impl Into<serde_json::Value>) -> Self {
        match self {
            Self::Problem(problem) => Self::Problem(problem.with_extension(name, value)),
            other => other,
        }
    }

    /// The same, with a `Retry-After` of `seconds`.
    #[must_use]
    pub fn retry_after(self, seconds: u32) -> Self {
        match self {
            Self::Problem(problem) => Self::Problem(problem.with_retry_after(seconds)),
            other => other,
        }
    }
}

impl<E: ServiceError> From<E> for Problem {
    fn from(error: E) -> Self {
        let detail = error.to_string();
        match error.answer() {
            Answer::Problem(problem) => problem.with_detail(detail),
            Answer::InvalidInput(field) => Self::invalid_input(field, detail),
            Answer::Database(error) => Self::database(error),
            Answer::Internal(error) => Self::internal(&error),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.retry_after_secs;
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}
