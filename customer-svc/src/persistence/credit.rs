//! Repository functions for credit reservations. The consumer reads them
//! locked and decides in memory; a new decision is inserted only if the
//! order has none, so that of two concurrent deciders exactly one wins.

use events::OrderId;
use events::plumbing::{
    find_many_for_update as find_many_locked, insert_new as insert_new_rows, save_columns,
};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait};

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
        [C::State, C::Reason, C::UpdatedAt],
    )
    .await
}
