//! The table of a participant's records ([`HoldRecord`]s), queried the
//! same way by every participant: each table has the columns `order_id`
//! (its key), `state` (a [`Phase`], spelt the participant's way),
//! `reason`, `deadline_at`, `created_at` and `updated_at`, beside its own.
//! A participant's entity implements [`HoldTable`]; its repository turns
//! rows into records ([`phase_of`]) and calls these functions.
//!
//! [`HoldRecord`]: crate::hold_records::HoldRecord

use chrono::{DateTime, Utc};
use events::OrderId;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::database::{
    find_many_for_update as find_many_locked, insert_new as insert_new_rows, save_columns,
};
use crate::hold_records::{Phase, PhaseNames};

/// The columns every participant's table has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldColumn {
    /// `order_id`, the key.
    OrderId,
    /// `state`: the record's [`Phase`], by [`HoldTable::PHASES`].
    State,
    /// `reason`.
    Reason,
    /// `deadline_at`.
    DeadlineAt,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
}

/// A participant's table of records.
pub trait HoldTable: EntityTrait {
    /// How its `state` column spells each phase.
    const PHASES: PhaseNames;

    /// The entity's column for `column`.
    fn column(column: HoldColumn) -> Self::Column;
}

/// Implements [`HoldTable`] for the `Entity` in scope, whose `Column`
/// names the shared columns the usual way (`Column::OrderId`,
/// `Column::State`, …), with `$phases` as its [`HoldTable::PHASES`].
#[macro_export]
macro_rules! impl_hold_table {
    ($phases:expr) => {
        impl $crate::HoldTable for Entity {
            const PHASES: $crate::PhaseNames = $phases;

            fn column(column: $crate::HoldColumn) -> Column {
                match column {
                    $crate::HoldColumn::OrderId => Column::OrderId,
                    $crate::HoldColumn::State => Column::State,
                    $crate::HoldColumn::Reason => Column::Reason,
                    $crate::HoldColumn::DeadlineAt => Column::DeadlineAt,
                    $crate::HoldColumn::CreatedAt => Column::CreatedAt,
                    $crate::HoldColumn::UpdatedAt => Column::UpdatedAt,
                }
            }
        }
    };
}

/// The phase stored as `state` in `order_id`'s row of `E`.
///
/// # Errors
/// [`DbErr::Type`] when `state` names no phase.
pub fn phase_of<E: HoldTable>(order_id: OrderId, state: &str) -> Result<Phase, DbErr> {
    E::PHASES
        .parse(state)
        .ok_or_else(|| DbErr::Type(format!("order {order_id}: unknown stored state {state:?}")))
}

/// `order_id`'s row.
///
/// # Errors
/// The database error.
pub async fn find<E: HoldTable>(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<Option<E::Model>, DbErr> {
    E::find()
        .filter(E::column(HoldColumn::OrderId).eq(order_id))
        .one(conn)
        .await
}

/// The rows of `order_ids` that exist, locked (by order id) until the
/// transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_many_for_update<E: HoldTable>(
    conn: &impl ConnectionTrait,
    order_ids: &[OrderId],
) -> Result<Vec<E::Model>, DbErr> {
    find_many_locked::<E, _>(conn, E::column(HoldColumn::OrderId), order_ids).await
}

/// Inserts decisions about orders that had none; fails with a write
/// conflict when another writer decided one meanwhile (the batch retries).
///
/// # Errors
/// The database error, or the conflict.
pub async fn insert_new<A>(
    conn: &impl ConnectionTrait,
    rows: Vec<<A::Entity as EntityTrait>::Model>,
) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    A::Entity: HoldTable,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    insert_new_rows::<A>(conn, rows, A::Entity::column(HoldColumn::OrderId)).await
}

/// Saves the state, reason, deadline and time of existing (locked) rows,
/// one statement for all.
///
/// # Errors
/// The database error.
pub async fn save_decisions<A>(
    conn: &impl ConnectionTrait,
    rows: Vec<<A::Entity as EntityTrait>::Model>,
) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
    A::Entity: HoldTable,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    let column = A::Entity::column;
    save_columns::<A>(
        conn,
        rows,
        column(HoldColumn::OrderId),
        [
            HoldColumn::State,
            HoldColumn::Reason,
            HoldColumn::DeadlineAt,
            HoldColumn::UpdatedAt,
        ]
        .map(column),
    )
    .await
}

/// Up to `limit` orders whose record holds, undecided, with a deadline at
/// or before `cutoff`, earliest first (over the deadline's index).
///
/// # Errors
/// The database error.
pub async fn expired<E: HoldTable>(
    conn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<OrderId>, DbErr> {
    let column = E::column;
    E::find()
        .select_only()
        .column(column(HoldColumn::OrderId))
        .filter(column(HoldColumn::DeadlineAt).lte(cutoff))
        .filter(column(HoldColumn::State).eq(E::PHASES.name(Phase::Held)))
        .order_by_asc(column(HoldColumn::DeadlineAt))
        .order_by_asc(column(HoldColumn::OrderId))
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await
}

/// Up to `limit` rows that hold, made at or before `made_before` when
/// given, oldest first; after the record `after` (a cursor: creation time
/// and order id) when given.
///
/// # Errors
/// The database error.
pub async fn held_since<E: HoldTable>(
    conn: &impl ConnectionTrait,
    made_before: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, OrderId)>,
    limit: u64,
) -> Result<Vec<E::Model>, DbErr> {
    let column = E::column;
    let created_at = column(HoldColumn::CreatedAt);
    let order_id = column(HoldColumn::OrderId);
    let mut query = E::find().filter(column(HoldColumn::State).eq(E::PHASES.name(Phase::Held)));
    // No bound rather than a far-off one: SQLite compares times as text,
    // and a year beyond 9999 does not sort after this one.
    if let Some(made_before) = made_before {
        query = query.filter(created_at.lte(made_before));
    }
    if let Some((after_created, after_order)) = after {
        query = query.filter(
            Condition::any().add(created_at.gt(after_created)).add(
                Condition::all()
                    .add(created_at.eq(after_created))
                    .add(order_id.gt(after_order)),
            ),
        );
    }
    query
        .order_by_asc(created_at)
        .order_by_asc(order_id)
        .limit(limit)
        .all(conn)
        .await
}
