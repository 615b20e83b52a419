//! Repository functions for refresh tokens.

use chrono::{DateTime, Utc};
use event_runtime::for_update;
use events::CustomerId;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::refresh_token;

/// Stores a new refresh token.
///
/// # Errors
/// The database error.
pub async fn insert(conn: &impl ConnectionTrait, token: refresh_token::Model) -> Result<(), DbErr> {
    refresh_token::Entity::insert(refresh_token::ActiveModel::from(token))
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
) -> Result<Option<refresh_token::Model>, DbErr> {
    refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .one(conn)
        .await
}

/// The token with this hash, locked until the transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<refresh_token::Model>, DbErr> {
    let query =
        refresh_token::Entity::find().filter(refresh_token::Column::TokenHash.eq(token_hash));
    for_update(query, conn).one(conn).await
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
