//! Repository functions for reservations and their lines. The consumer
//! reads them locked and decides in memory; a new decision is inserted only
//! if the order has none, so that of two concurrent deciders exactly one
//! wins.

use events::plumbing::{
    find_many_for_update as find_many_locked, insert_new as insert_new_rows, save_columns,
};
use events::{OrderId, ProductId};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

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
    if order_ids.is_empty() {
        return Ok(Vec::new());
    }
    reservation_line::Entity::find()
        .filter(reservation_line::Column::OrderId.is_in(order_ids.iter().copied()))
        .all(conn)
        .await
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

/// Inserts reservation lines `(order, product, quantity)`.
///
/// # Errors
/// The database error.
pub async fn insert_lines(
    conn: &impl ConnectionTrait,
    lines: Vec<(OrderId, ProductId, i64)>,
) -> Result<(), DbErr> {
    if lines.is_empty() {
        return Ok(());
    }
    reservation_line::Entity::insert_many(lines.into_iter().map(
        |(order_id, product_id, quantity)| reservation_line::ActiveModel {
            order_id: Set(order_id),
            product_id: Set(product_id),
            quantity: Set(quantity),
        },
    ))
    .exec_without_returning(conn)
    .await?;
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
        [C::State, C::Reason, C::UpdatedAt],
    )
    .await
}
