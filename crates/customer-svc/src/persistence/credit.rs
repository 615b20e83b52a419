//! Repository functions for credit reservations. State changes are
//! conditional on the current state, so that of two concurrent deciders
//! exactly one wins.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::credit_reservation;
use crate::domain::CreditState;

/// An order's credit reservation.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    order_id: Uuid,
) -> Result<Option<credit_reservation::Model>, DbErr> {
    credit_reservation::Entity::find_by_id(order_id)
        .one(conn)
        .await
}

/// A decision to record.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The order.
    pub order_id: Uuid,
    /// The customer it names.
    pub customer_id: Uuid,
    /// Amount held (0 unless RESERVED).
    pub amount_minor: i64,
    /// Currency.
    pub currency: &'a str,
    /// The state decided.
    pub state: CreditState,
    /// Why, for rejections.
    pub reason: Option<&'a str>,
}

/// Records a decision about an order. Returns `false` (and writes nothing)
/// when the order already has one.
///
/// # Errors
/// The database error.
pub async fn insert(conn: &impl ConnectionTrait, decision: Decision<'_>) -> Result<bool, DbErr> {
    let now = Utc::now();
    let inserted = credit_reservation::Entity::insert(credit_reservation::ActiveModel {
        order_id: Set(decision.order_id),
        customer_id: Set(decision.customer_id),
        amount_minor: Set(decision.amount_minor),
        currency: Set(decision.currency.to_owned()),
        state: Set(decision.state.as_str().to_owned()),
        reason: Set(decision.reason.map(str::to_owned)),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing_on([credit_reservation::Column::OrderId])
    .exec_without_returning(conn)
    .await?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(1)))
}

/// Moves an order's reservation from `from` to `to`; returns whether this
/// caller made the change.
///
/// # Errors
/// The database error.
pub async fn transition(
    conn: &impl ConnectionTrait,
    order_id: Uuid,
    from: CreditState,
    to: CreditState,
) -> Result<bool, DbErr> {
    let result = credit_reservation::Entity::update_many()
        .col_expr(credit_reservation::Column::State, Expr::value(to.as_str()))
        .col_expr(
            credit_reservation::Column::UpdatedAt,
            Expr::value(Utc::now()),
        )
        .filter(credit_reservation::Column::OrderId.eq(order_id))
        .filter(credit_reservation::Column::State.eq(from.as_str()))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}
