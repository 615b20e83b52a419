use axum::extract::State;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use service_kit::{Caller, Json, Problem};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::customers;
use crate::error::CustomerError;

const TAG: &str = "auth";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_token))
        .routes(routes!(get_jwks))
        .routes(routes!(rotate_key))
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The customer's email.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Their password.
    #[schema(example = "correct horse battery")]
    pub password: String,
}

/// An access token.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT (EdDSA) to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Whose token it is.
    pub customer_id: uuid::Uuid,
}

/// A new signing key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotatedKey {
    /// Its key id; tokens signed from now on name it.
    pub kid: String,
}

/// Exchanges email and password for a short-lived access token. A wrong
/// email and a wrong password get the same answer.
#[utoipa::path(post, path = "/auth/token", tag = TAG, request_body = TokenRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Wrong email or password", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is suspended (`ACCOUNT_SUSPENDED`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn issue_token(
    State(state): State<AppState>,
    Json(request): Json<TokenRequest>,
) -> Result<impl axum::response::IntoResponse, Problem> {
    let (customer, issued) =
        customers::issue_token(&state.db, &state.keys, &request.email, &request.password).await?;
    // A token is a credential: no cache (RFC 6749 §5.1) may keep it.
    Ok((
        [
            (axum::http::header::CACHE_CONTROL, "no-store"),
            (axum::http::header::PRAGMA, "no-cache"),
        ],
        Json(TokenResponse {
            access_token: issued.token,
            token_type: "Bearer".into(),
            expires_in: issued.expires_in,
            customer_id: customer.id,
        }),
    ))
}

/// The public keys that verify access tokens (JWKS, RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = TAG,
    responses((status = 200, description = "The key set", body = Object)))]
async fn get_jwks(State(state): State<AppState>) -> Result<axum::Json<JwkSet>, Problem> {
    let keys = state
        .keys
        .published()
        .await
        .map_err(CustomerError::Internal)?;
    Ok(axum::Json(keys))
}

/// Starts signing with a new key (admin). Tokens signed with the old key
/// stay valid until they expire.
#[utoipa::path(post, path = "/auth/keys/rotate", tag = TAG,
    security(("bearer" = [])),
    responses(
        (status = 200, body = RotatedKey),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ))]
async fn rotate_key(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RotatedKey>, Problem> {
    caller.require_admin()?;
    let kid = state.keys.rotate().await.map_err(CustomerError::Internal)?;
    Ok(Json(RotatedKey { kid }))
}
