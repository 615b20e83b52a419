//! Repository functions for refresh tokens.

use chrono::{DateTime, Utc};
use event_runtime::for_update;
use events::CustomerId;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::refresh_token;
use crate::domain::RefreshToken;

impl From<refresh_token::Model> for RefreshToken {
    fn from(row: refresh_token::Model) -> Self {
        Self {
            token_hash: row.token_hash,
            family_id: row.family_id,
            customer_id: row.customer_id,
            created_at: row.created_at,
            expires_at: row.expires_at,
            rotated_at: row.rotated_at,
            revoked_at: row.revoked_at,
        }
    }
}

impl From<RefreshToken> for refresh_token::Model {
    fn from(token: RefreshToken) -> Self {
        Self {
            token_hash: token.token_hash,
            family_id: token.family_id,
            customer_id: token.customer_id,
            created_at: token.created_at,
            expires_at: token.expires_at,
            rotated_at: token.rotated_at,
            revoked_at: token.revoked_at,
        }
    }
}

/// Stores a new refresh token.
///
/// # Errors
/// The database error.
pub async fn insert(conn: &impl ConnectionTrait, token: RefreshToken) -> Result<(), DbErr> {
    refresh_token::Entity::insert(refresh_token::ActiveModel::from(
        refresh_token::Model::from(token),
    ))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The token with this hash, unlocked: the check before a write.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<RefreshToken>, DbErr> {
    Ok(refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .one(conn)
        .await?
        .map(RefreshToken::from))
}

/// The token with this hash, locked until the transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<RefreshToken>, DbErr> {
    let query =
        refresh_token::Entity::find().filter(refresh_token::Column::TokenHash.eq(token_hash));
    Ok(for_update(query, conn)
        .one(conn)
        .await?
        .map(RefreshToken::from))
}

/// Marks a token exchanged for its successor.
///
/// # Errors
/// The database error.
pub async fn mark_rotated(
    conn: &impl ConnectionTrait,
    token_hash: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RotatedAt, Expr::value(at))
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .exec(conn)
        .await?;
    Ok(())
}

/// Revokes every live token of a family; returns how many.
///
/// # Errors
/// The database error.
pub async fn revoke_family(
    conn: &impl ConnectionTrait,
    family_id: Uuid,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    revoke_where(conn, refresh_token::Column::FamilyId.eq(family_id), at).await
}

/// Revokes every live token of a customer; returns how many.
///
/// # Errors
/// The database error.
pub async fn revoke_customer(
    conn: &impl ConnectionTrait,
    customer_id: CustomerId,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    revoke_where(conn, refresh_token::Column::CustomerId.eq(customer_id), at).await
}

async fn revoke_where(
    conn: &impl ConnectionTrait,
    whose: sea_orm::sea_query::SimpleExpr,
    at: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(at))
        .filter(whose)
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

/// Deletes the tokens that expired before `cutoff`; returns how many.
///
/// # Errors
/// The database error.
pub async fn delete_expired(
    conn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    event_runtime::retention::delete_before(conn, "refresh_tokens", "expires_at", cutoff, 5_000)
        .await
}
