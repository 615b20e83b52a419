//! Repository functions for reservations and their lines. State changes
//! are conditional on the current state, so that of two concurrent
//! deciders exactly one wins.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

use super::entities::{reservation, reservation_line};
use crate::domain::ReservationState;

/// An order's reservation.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    order_id: Uuid,
) -> Result<Option<reservation::Model>, DbErr> {
    reservation::Entity::find_by_id(order_id).one(conn).await
}

/// The lines of an order's reservation, by product id.
///
/// # Errors
/// The database error.
pub async fn lines(
    conn: &impl ConnectionTrait,
    order_id: Uuid,
) -> Result<Vec<reservation_line::Model>, DbErr> {
    reservation_line::Entity::find()
        .filter(reservation_line::Column::OrderId.eq(order_id))
        .order_by_asc(reservation_line::Column::ProductId)
        .all(conn)
        .await
}

/// Records a decision about an order, with its lines. Returns `false` (and
/// writes nothing) when the order already has one.
///
/// # Errors
/// The database error.
pub async fn insert(
    conn: &impl ConnectionTrait,
    order_id: Uuid,
    state: ReservationState,
    reason: Option<&str>,
    lines: &[(Uuid, i64)],
) -> Result<bool, DbErr> {
    let now = Utc::now();
    let inserted = reservation::Entity::insert(reservation::ActiveModel {
        order_id: Set(order_id),
        state: Set(state.as_str().to_owned()),
        reason: Set(reason.map(str::to_owned)),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([reservation::Column::OrderId])
    .exec_without_returning(conn)
    .await?;
    if !matches!(inserted, sea_orm::TryInsertResult::Inserted(1)) {
        return Ok(false);
    }
    if !lines.is_empty() {
        reservation_line::Entity::insert_many(lines.iter().map(|(product_id, quantity)| {
            reservation_line::ActiveModel {
                order_id: Set(order_id),
                product_id: Set(*product_id),
                quantity: Set(*quantity),
            }
        }))
        .exec_without_returning(conn)
        .await?;
    }
    Ok(true)
}

/// Moves an order's reservation from `from` to `to`. Returns whether it
/// was in `from` (and so whether this caller made the change).
///
/// # Errors
/// The database error.
pub async fn transition(
    conn: &impl ConnectionTrait,
    order_id: Uuid,
    from: ReservationState,
    to: ReservationState,
) -> Result<bool, DbErr> {
    let result = reservation::Entity::update_many()
        .col_expr(reservation::Column::State, Expr::value(to.as_str()))
        .col_expr(reservation::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(reservation::Column::OrderId.eq(order_id))
        .filter(reservation::Column::State.eq(from.as_str()))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}
