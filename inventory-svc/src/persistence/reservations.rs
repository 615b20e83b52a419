//! Repository functions for reservations and their lines. The consumer
//! reads them locked and decides in memory; a new decision is inserted only
//! if the order has none, so that of two concurrent deciders exactly one
//! wins.

use chrono::{DateTime, Utc};
use event_runtime::{
    find_many_for_update as find_many_locked, insert_new as insert_new_rows, key_chunks,
    save_columns, statement_chunks,
};
use events::{OrderId, ProductId};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::domain::ReservationState;

use super::entities::{reservation, reservation_line};

/// An order's reservation.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<Option<reservation::Model>, DbErr> {
    reservation::Entity::find_by_id(order_id).one(conn).await
}

/// The lines of an order's reservation, by product id.
///
/// # Errors
/// The database error.
pub async fn lines(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<Vec<reservation_line::Model>, DbErr> {
    reservation_line::Entity::find()
        .filter(reservation_line::Column::OrderId.eq(order_id))
        .order_by_asc(reservation_line::Column::ProductId)
        .all(conn)
        .await
}

/// The reservations of `order_ids` that exist, locked (by order id) until
/// the transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_many_for_update(
    conn: &impl ConnectionTrait,
    order_ids: &[OrderId],
) -> Result<Vec<reservation::Model>, DbErr> {
    find_many_locked::<reservation::Entity, _>(conn, reservation::Column::OrderId, order_ids).await
}

/// The lines of the reservations of `order_ids`.
///
/// # Errors
/// The database error.
pub async fn lines_of(
    conn: &impl ConnectionTrait,
    order_ids: &[OrderId],
) -> Result<Vec<reservation_line::Model>, DbErr> {
    let mut lines = Vec::new();
    for chunk in key_chunks(order_ids) {
        lines.extend(
            reservation_line::Entity::find()
                .filter(reservation_line::Column::OrderId.is_in(chunk.iter().copied()))
                .all(conn)
                .await?,
        );
    }
    Ok(lines)
}

/// Inserts decisions about orders that had none; returns how many were
/// inserted (fewer when another writer decided some meanwhile).
///
/// # Errors
/// The database error.
pub async fn insert_new(
    conn: &impl ConnectionTrait,
    rows: Vec<reservation::Model>,
) -> Result<(), DbErr> {
    insert_new_rows::<reservation::ActiveModel>(conn, rows, reservation::Column::OrderId).await
}

/// Inserts reservation lines `(order, product, quantity)`, one statement
/// per [`statement_chunks`] of them.
///
/// # Errors
/// The database error.
pub async fn insert_lines(
    conn: &impl ConnectionTrait,
    lines: Vec<(OrderId, ProductId, i64)>,
) -> Result<(), DbErr> {
    // 200 orders of 100 lines are more values than one statement binds.
    for chunk in statement_chunks::<reservation_line::Entity, _>(lines) {
        reservation_line::Entity::insert_many(chunk.into_iter().map(
            |(order_id, product_id, quantity)| reservation_line::ActiveModel {
                order_id: Set(order_id),
                product_id: Set(product_id),
                quantity: Set(quantity),
            },
        ))
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// Saves the state, reason and time of existing (locked) reservations.
///
/// # Errors
/// The database error.
pub async fn update_states(
    conn: &impl ConnectionTrait,
    rows: Vec<reservation::Model>,
) -> Result<(), DbErr> {
    use reservation::Column as C;
    save_columns::<reservation::ActiveModel>(
        conn,
        rows,
        C::OrderId,
        [C::State, C::Reason, C::DeadlineAt, C::UpdatedAt],
    )
    .await
}

/// Up to `limit` orders whose reservation holds, undecided, with a deadline
/// at or before `cutoff`, earliest first (over the deadline's index).
///
/// # Errors
/// The database error.
pub async fn expired(
    conn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<OrderId>, DbErr> {
    use reservation::Column as C;
    reservation::Entity::find()
        .select_only()
        .column(C::OrderId)
        .filter(C::DeadlineAt.lte(cutoff))
        .filter(C::State.eq(ReservationState::Reserved))
        .order_by_asc(C::DeadlineAt)
        .order_by_asc(C::OrderId)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// Up to `limit` reservations that hold (RESERVED), made at or before
/// `made_before` when given, oldest first; after the reservation `after`
/// (a cursor: creation time and order id) when given.
///
/// # Errors
/// The database error.
pub async fn held_since(
    conn: &impl ConnectionTrait,
    made_before: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, OrderId)>,
    limit: u64,
) -> Result<Vec<reservation::Model>, DbErr> {
    use reservation::Column as C;
    use sea_orm::Condition;
    let mut query = reservation::Entity::find().filter(C::State.eq(ReservationState::Reserved));
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
