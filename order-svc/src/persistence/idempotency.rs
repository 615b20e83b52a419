//! Repository functions for idempotency keys.

use chrono::{DateTime, Utc};
use events::CustomerId;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, TryInsertResult};

use super::entities::idempotency_key;

/// Claims `(customer, key)` for a request. Returns `false` when the key is
/// taken; a concurrent claim of the same key waits for the first to commit
/// or roll back (PostgreSQL's unique index), so exactly one request wins.
///
/// # Errors
/// The database error.
pub async fn claim(
    conn: &impl ConnectionTrait,
    entry: idempotency_key::Model,
) -> Result<bool, DbErr> {
    let result = idempotency_key::Entity::insert(idempotency_key::ActiveModel::from(entry))
        .on_conflict_do_nothing_on([
            idempotency_key::Column::CustomerId,
            idempotency_key::Column::Key,
        ])
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(result, TryInsertResult::Inserted(1)))
}

/// The entry for `(customer, key)`.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    customer_id: CustomerId,
    key: &str,
) -> Result<Option<idempotency_key::Model>, DbErr> {
    idempotency_key::Entity::find_by_id((customer_id, key.to_owned()))
        .one(conn)
        .await
}

/// Forgets entries that expired before `now`, 1,000 per statement;
/// returns how many.
///
/// # Errors
/// The database error.
pub async fn delete_expired(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    events::plumbing::delete_before(conn, "idempotency_keys", "expires_at", now, 1_000).await
}

/// Forgets one expired entry, so its key can be claimed again.
///
/// # Errors
/// The database error.
pub async fn delete_if_expired(
    conn: &impl ConnectionTrait,
    customer_id: CustomerId,
    key: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CustomerId.eq(customer_id))
        .filter(idempotency_key::Column::Key.eq(key))
        .filter(idempotency_key::Column::ExpiresAt.lt(now))
        .exec(conn)
        .await?;
    Ok(())
}
