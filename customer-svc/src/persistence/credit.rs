//! Repository functions for credit reservations. The consumer reads them
//! locked and decides in memory; a new decision is inserted only if the
//! order has none, so that of two concurrent deciders exactly one wins.

use chrono::{DateTime, Utc};
use event_runtime::{
    find_many_for_update as find_many_locked, insert_new as insert_new_rows, save_columns,
};
use events::OrderId;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::domain::CreditState;

use super::entities::credit_reservation;

/// An order's credit reservation.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<Option<credit_reservation::Model>, DbErr> {
    credit_reservation::Entity::find_by_id(order_id)
        .one(conn)
        .await
}

/// The credit reservations of `order_ids` that exist, locked (by order
/// id) until the transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_many_for_update(
    conn: &impl ConnectionTrait,
    order_ids: &[OrderId],
) -> Result<Vec<credit_reservation::Model>, DbErr> {
    find_many_locked::<credit_reservation::Entity, _>(
        conn,
        credit_reservation::Column::OrderId,
        order_ids,
    )
    .await
}

/// Inserts decisions about orders that had none; returns how many were
/// inserted (fewer when another writer decided some meanwhile).
///
/// # Errors
/// The database error.
pub async fn insert_new(
    conn: &impl ConnectionTrait,
    rows: Vec<credit_reservation::Model>,
) -> Result<(), DbErr> {
    insert_new_rows::<credit_reservation::ActiveModel>(
        conn,
        rows,
        credit_reservation::Column::OrderId,
    )
    .await
}

/// Saves the state and time of existing (locked) reservations.
///
/// # Errors
/// The database error.
pub async fn update_states(
    conn: &impl ConnectionTrait,
    rows: Vec<credit_reservation::Model>,
) -> Result<(), DbErr> {
    use credit_reservation::Column as C;
    save_columns::<credit_reservation::ActiveModel>(
        conn,
        rows,
        C::OrderId,
        [C::State, C::Reason, C::DeadlineAt, C::UpdatedAt],
    )
    .await
}

/// Up to `limit` orders whose credit reservation holds, undecided, with a
/// deadline at or before `cutoff`, earliest first (over the deadline's
/// index).
///
/// # Errors
/// The database error.
pub async fn expired(
    conn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<OrderId>, DbErr> {
    use credit_reservation::Column as C;
    credit_reservation::Entity::find()
        .select_only()
        .column(C::OrderId)
        .filter(C::DeadlineAt.lte(cutoff))
        .filter(C::State.eq(CreditState::Reserved))
        .order_by_asc(C::DeadlineAt)
        .order_by_asc(C::OrderId)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// Up to `limit` credit reservations that hold (RESERVED), made at or
/// before `made_before` when given, oldest first; after the reservation
/// `after` (a cursor: creation time and order id) when given.
///
/// # Errors
/// The database error.
pub async fn held_since(
    conn: &impl ConnectionTrait,
    made_before: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, OrderId)>,
    limit: u64,
) -> Result<Vec<credit_reservation::Model>, DbErr> {
    use credit_reservation::Column as C;
    let mut query = credit_reservation::Entity::find().filter(C::State.eq(CreditState::Reserved));
    // No bound rather than a far-off one: SQLite compares times as text,
    // and a year beyond 9999 does not sort after this one.
    if let Some(made_before) = made_before {
        query = query.filter(C::CreatedAt.lte(made_before));
    }
    if let Some((created_at, order_id)) = after {
        query = query.filter(
            Condition::any().add(C::CreatedAt.gt(created_at)).add(
                Condition::all()
                    .add(C::CreatedAt.eq(created_at))
                    .add(C::OrderId.gt(order_id)),
            ),
        );
    }
    query
        .order_by_asc(C::CreatedAt)
        .order_by_asc(C::OrderId)
        .limit(limit)
        .all(conn)
        .await
}
