//! Repository functions for token signing keys.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::entities::signing_key;
use crate::domain::SigningKey;

impl From<signing_key::Model> for SigningKey {
    fn from(row: signing_key::Model) -> Self {
        Self {
            kid: row.kid,
            sealed_private_key: row.private_key,
            created_at: row.created_at,
            superseded_at: row.superseded_at,
        }
    }
}

impl From<SigningKey> for signing_key::Model {
    fn from(key: SigningKey) -> Self {
        Self {
            kid: key.kid,
            private_key: key.sealed_private_key,
            created_at: key.created_at,
            superseded_at: key.superseded_at,
        }
    }
}

/// Every key, oldest first.
///
/// # Errors
/// The database error.
pub async fn all(conn: &impl ConnectionTrait) -> Result<Vec<SigningKey>, DbErr> {
    Ok(signing_key::Entity::find()
        .order_by_asc(signing_key::Column::CreatedAt)
        .all(conn)
        .await?
        .into_iter()
        .map(SigningKey::from)
        .collect())
}

/// Stores a new key and marks every other current key superseded at its
/// creation time.
///
/// # Errors
/// The database error.
pub async fn insert_current(conn: &impl ConnectionTrait, key: SigningKey) -> Result<(), DbErr> {
    let at: DateTime<Utc> = key.created_at;
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::SupersededAt, Expr::value(at))
        .filter(signing_key::Column::SupersededAt.is_null())
        .exec(conn)
        .await?;
    signing_key::Entity::insert(signing_key::ActiveModel::from(signing_key::Model::from(
        key,
    )))
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Replaces the stored private key of `kid` (sealing a legacy PEM).
///
/// # Errors
/// The database error.
pub async fn set_private_key(
    conn: &impl ConnectionTrait,
    kid: &str,
    private_key: String,
) -> Result<(), DbErr> {
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::PrivateKey, Expr::value(private_key))
        .filter(signing_key::Column::Kid.eq(kid))
        .exec(conn)
        .await?;
    Ok(())
}

/// Deletes the keys superseded before `cutoff` (no live token names them);
/// returns how many.
///
/// # Errors
/// The database error.
pub async fn delete_superseded_before(
    conn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(signing_key::Entity::delete_many()
        .filter(signing_key::Column::SupersededAt.lt(cutoff))
        .exec(conn)
        .await?
        .rows_affected)
}
