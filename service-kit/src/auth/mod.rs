//! Bearer-token authentication, applied the same way by every service.
//!
//! Handlers take a [`Caller`] argument; the extractor reads
//! `Authorization: Bearer <token>` and asks the service's [`Authenticator`]
//! (installed by [`ServiceBuilder::authenticator`](crate::ServiceBuilder::authenticator))
//! who the token belongs to. The rules:
//!
//! - no or malformed `Authorization` header, or a token the authenticator
//!   refuses: **401** `UNAUTHENTICATED` with `WWW-Authenticate: Bearer`;
//! - a caller without the required role: **403** `FORBIDDEN`
//!   ([`Caller::require_admin`]);
//! - a customer acting on another customer's resources: **403**
//!   ([`Caller::require_self_or_admin`]), or 404 where the resource's
//!   existence must not leak (the handler decides).
//!
//! Until a service installs an authenticator, every token is refused: a
//! protected endpoint is never open by accident.
//!
//! Tokens are JWTs signed by customer-svc with an Ed25519 key (EdDSA) and
//! verified against its published key set: [`jwt`].

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use events::CustomerId;
use futures::future::BoxFuture;
use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::problem::Problem;

pub mod jwt;

/// What a caller may do; also a typed database column (`customer`,
/// `admin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Role {
    /// A customer: acts on their own resources.
    #[sea_orm(string_value = "customer")]
    Customer,
    /// An administrator: acts on everything.
    #[sea_orm(string_value = "admin")]
    Admin,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The customer id (for an admin, the admin account's id).
    pub id: CustomerId,
    /// The caller's role.
    pub role: Role,
}

impl Caller {
    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// # Errors
    /// 403 `FORBIDDEN` unless the caller is an admin.
    pub fn require_admin(&self) -> Result<(), Problem> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(forbidden("This operation needs the admin role"))
        }
    }

    /// # Errors
    /// 403 `FORBIDDEN` unless the caller is `customer_id` or an admin.
    pub fn require_self_or_admin(&self, customer_id: CustomerId) -> Result<(), Problem> {
        if self.is_admin() || self.id == customer_id {
            Ok(())
        } else {
            Err(forbidden("Customers may act only on their own resources"))
        }
    }
}

fn forbidden(detail: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "FORBIDDEN", "Not allowed").with_detail(detail)
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("a bearer token is required")]
    MissingToken,
    /// The token is malformed, forged, expired or unknown.
    #[error("the bearer token is invalid: {0}")]
    InvalidToken(String),
    /// The authenticator could not check the token (e.g. its keys are
    /// unreachable); the client may retry.
    #[error("the bearer token cannot be checked now: {0}")]
    Unavailable(String),
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        if let AuthError::Unavailable(_) = self {
            return Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "AUTH_UNAVAILABLE",
                "Authentication is unavailable",
            )
            .with_detail(self.to_string())
            .into_response();
        }
        let mut response = Problem::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Authentication required",
        )
        .with_detail(self.to_string())
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    }
}

/// Turns a bearer token into a [`Caller`].
pub trait Authenticator: Send + Sync + 'static {
    /// Checks `token` (without the `Bearer ` prefix).
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] for a token that must be refused,
    /// [`AuthError::Unavailable`] when it cannot be checked now.
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Caller, AuthError>>;
}

/// The authenticator of a service that has none configured: refuses every token.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefuseAll;

impl Authenticator for RefuseAll {
    fn authenticate<'a>(&'a self, _token: &'a str) -> BoxFuture<'a, Result<Caller, AuthError>> {
        Box::pin(async {
            Err(AuthError::InvalidToken(
                "this service accepts no tokens yet".into(),
            ))
        })
    }
}

/// The authenticator a service's router carries (as a request extension).
#[derive(Clone)]
pub struct SharedAuthenticator(pub Arc<dyn Authenticator>);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?;
        let authenticator = parts
            .extensions
            .get::<SharedAuthenticator>()
            .map(|a| a.0.clone())
            .unwrap_or_else(|| Arc::new(RefuseAll));
        authenticator.authenticate(token).await
    }
}

/// `Option<Caller>`: `None` without an `Authorization` header (an anonymous
/// caller), the caller with a valid token, and a 401 for an invalid one.
impl<S: Send + Sync> OptionalFromRequestParts<S> for Caller {
    type Rejection = AuthError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(None);
        }
        <Caller as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn roles_are_stored_as_they_are_shown() {
        testkit::assert_stored_as_serialized::<super::Role>();
    }
}
