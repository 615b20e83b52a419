//! Repository functions for token signing keys.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::entities::signing_key;

/// Every key, oldest first.
///
/// # Errors
/// The database error.
pub async fn all(conn: &impl ConnectionTrait) -> Result<Vec<signing_key::Model>, DbErr> {
    signing_key::Entity::find()
        .order_by_asc(signing_key::Column::CreatedAt)
        .all(conn)
        .await
}

/// Stores a new key and marks every other current key superseded at its
/// creation time.
///
/// # Errors
/// The database error.
pub async fn insert_current(
    conn: &impl ConnectionTrait,
    key: signing_key::Model,
) -> Result<(), DbErr> {
    let at: DateTime<Utc> = key.created_at;
    signing_key::Entity::update_many()
        .col_expr(signing_key::Column::SupersededAt, Expr::value(at))
        .filter(signing_key::Column::SupersededAt.is_null())
        .exec(conn)
        .await?;
    signing_key::Entity::insert(signing_key::ActiveModel::from(key))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}
