//! Repository functions for idempotency keys.

use chrono::{DateTime, Utc};
use events::{CustomerId, OrderId};
use sea_orm::ActiveValue::{Set, Unchanged};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    TryInsertResult,
};

use super::entities::idempotency_key;

/// A remembered request and the answer it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remembered {
    /// The request, canonical JSON.
    pub request: String,
    /// The answer, JSON; empty until the request's transaction sets it.
    pub response: String,
}

/// Claims `key` for `customer_id`'s `request`, which places `order_id`,
/// until `expires_at`; `false` when the key is taken. A concurrent claim of
/// the same key waits for the first to commit or roll back (PostgreSQL's
/// unique index), so exactly one request wins.
///
/// # Errors
/// The database error.
pub async fn claim(
    conn: &impl ConnectionTrait,
    customer_id: CustomerId,
    key: &str,
    request: &str,
    order_id: OrderId,
    expires_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let entry = idempotency_key::Model {
        customer_id,
        key: key.to_owned(),
        request: request.to_owned(),
        order_id,
        response: String::new(),
        expires_at,
    };
    let result = idempotency_key::Entity::insert(idempotency_key::ActiveModel::from(entry))
        .on_conflict_do_nothing_on([
            idempotency_key::Column::CustomerId,
            idempotency_key::Column::Key,
        ])
        .exec_without_returning(conn)
        .await?;
    Ok(matches!(result, TryInsertResult::Inserted(1)))
}

/// Remembers the answer to the request that claimed `key`.
///
/// # Errors
/// The database error.
pub async fn answer(
    conn: &impl ConnectionTrait,
    customer_id: CustomerId,
    key: &str,
    response: String,
) -> Result<(), DbErr> {
    idempotency_key::ActiveModel {
        customer_id: Unchanged(customer_id),
        key: Unchanged(key.to_owned()),
        response: Set(response),
        ..Default::default()
    }
    .update(conn)
    .await?;
    Ok(())
}

/// The entry for `(customer, key)`.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    customer_id: CustomerId,
    key: &str,
) -> Result<Option<Remembered>, DbErr> {
    Ok(
        idempotency_key::Entity::find_by_id((customer_id, key.to_owned()))
            .one(conn)
            .await?
            .map(|row| Remembered {
                request: row.request,
                response: row.response,
            }),
    )
}

/// Forgets entries that expired before `now`, 1,000 per statement;
/// returns how many.
///
/// # Errors
/// The database error.
pub async fn delete_expired(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    event_runtime::delete_before(conn, "idempotency_keys", "expires_at", now, 1_000).await
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
