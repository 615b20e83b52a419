use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use events::CustomerId;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use service_kit::{Caller, ClientAddress, Json, Problem};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::app::sessions::Session;
use crate::error::CustomerError;

const TAG: &str = "auth";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_token))
        .routes(routes!(refresh_token))
        .routes(routes!(sign_out))
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

/// A refresh token to exchange or revoke.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The `refresh_token` of the last token answer.
    pub refresh_token: String,
}

/// An access token and the refresh token that renews it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT (EdDSA) to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Opaque; `POST /auth/refresh` exchanges it (once) for a new pair.
    pub refresh_token: String,
    /// Seconds until the refresh token expires unused.
    pub refresh_expires_in: u64,
    /// Whose token it is.
    pub customer_id: CustomerId,
}

/// A token answer that no cache (RFC 6749 §5.1) may keep.
fn token_answer(session: Session) -> impl IntoResponse {
    (
        [
            (axum::http::header::CACHE_CONTROL, "no-store"),
            (axum::http::header::PRAGMA, "no-cache"),
        ],
        Json(TokenResponse {
            access_token: session.access.token,
            token_type: "Bearer".into(),
            expires_in: session.access.expires_in,
            refresh_token: session.refresh_token,
            refresh_expires_in: session.refresh_expires_in,
            customer_id: session.customer_id,
        }),
    )
}

/// A new signing key.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RotatedKey {
    /// Its key id; tokens signed from now on name it.
    pub kid: String,
    /// By when every service refuses tokens of the keys this rotation
    /// retired: they stay published for a token lifetime
    /// (`OMS_TOKEN_TTL_SECS`) and a minute, and verifiers reload the key set
    /// every `OMS_JWKS_REFRESH_SECS`.
    pub retired_keys_refused_by: DateTime<Utc>,
}

/// Exchanges email and password for a short-lived access token and a
/// refresh token. A wrong email and a wrong password get the same answer.
/// Throttled per client address; an account is locked for a growing while
/// after repeated wrong passwords.
#[utoipa::path(post, path = "/auth/token", tag = TAG, request_body = TokenRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Wrong email or password (`INVALID_CREDENTIALS`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is suspended (`ACCOUNT_SUSPENDED`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts from this address, or the account is locked (`TOO_MANY_ATTEMPTS`); `Retry-After` says how long", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password-hashing slot is busy (`PASSWORD_HASHING_BUSY`); `Retry-After`", body = Problem, content_type = "application/problem+json"),
    ))]
async fn issue_token(
    State(state): State<AppState>,
    client: ClientAddress,
    Json(request): Json<TokenRequest>,
) -> Result<impl IntoResponse, Problem> {
    let session = state
        .sessions
        .sign_in(client, &request.email, &request.password)
        .await?;
    Ok(token_answer(session))
}

/// Exchanges a refresh token for a new access token and a new refresh
/// token; the old one stops working. Showing an already exchanged refresh
/// token again revokes every token of that sign-in.
#[utoipa::path(post, path = "/auth/refresh", tag = TAG, request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Unknown, expired or revoked (`INVALID_REFRESH_TOKEN`), or used already, which revokes the sign-in (`REFRESH_TOKEN_REUSED`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account is suspended (`ACCOUNT_SUSPENDED`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn refresh_token(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> Result<impl IntoResponse, Problem> {
    let session = state.sessions.refresh(&request.refresh_token).await?;
    Ok(token_answer(session))
}

/// Signs out: revokes the refresh token and every token of its sign-in.
/// Access tokens already issued stay valid until they expire (minutes).
/// An unknown token is answered the same (RFC 7009).
#[utoipa::path(post, path = "/auth/logout", tag = TAG, request_body = RefreshRequest,
    responses(
        (status = 204, description = "Revoked"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
async fn sign_out(
    State(state): State<AppState>,
    Json(request): Json<RefreshRequest>,
) -> Result<StatusCode, Problem> {
    state.sessions.sign_out(&request.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
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
/// stay valid until they expire; the answer says by when every service
/// refuses the old key.
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
    let rotation = state.keys.rotate().await.map_err(CustomerError::Internal)?;
    // Tokens of the new key must verify here at once, whatever the
    // verifier's refresh interval.
    if let Err(error) = state.verifier.refresh().await {
        tracing::warn!(error = %error, "could not reload the key set after a rotation");
    }
    Ok(Json(RotatedKey {
        kid: rotation.kid,
        retired_keys_refused_by: rotation.retired_keys_refused_by,
    }))
}
