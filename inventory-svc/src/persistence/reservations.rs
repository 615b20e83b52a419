//! Repository functions for reservations and their lines, as the domain's
//! [`Reservation`]s. The consumer reads them locked and decides in memory;
//! a new decision is inserted only if the order has none, so that of two
//! concurrent deciders exactly one wins. The queries every participant
//! shares are [`event_runtime::hold_table`]'s.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use event_runtime::handler::Changes;
use event_runtime::hold_table::{self, phase_of};
use event_runtime::{key_chunks, statement_chunks};
use events::OrderId;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::entities::{reservation, reservation_line};
use crate::domain::{RESERVATION_PHASES, Reservation, ReservationLine};

/// The table of the records, for the protocol's own queries.
pub type Table = super::entities::reservation::Entity;

/// The reservation a row and its lines hold.
fn reservation_of(
    row: reservation::Model,
    mut lines: Vec<ReservationLine>,
) -> Result<Reservation, DbErr> {
    lines.sort_unstable();
    Ok(Reservation {
        order_id: row.order_id,
        phase: phase_of::<reservation::Entity>(row.order_id, &row.state)?,
        reason: row.reason,
        deadline_at: row.deadline_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        held: lines,
    })
}

/// The row that holds `reservation` (without its lines).
fn row_of(reservation: &Reservation) -> reservation::Model {
    reservation::Model {
        order_id: reservation.order_id,
        state: RESERVATION_PHASES.name(reservation.phase).to_owned(),
        reason: reservation.reason.clone(),
        deadline_at: reservation.deadline_at,
        created_at: reservation.created_at,
        updated_at: reservation.updated_at,
    }
}

/// `rows` with their lines: one statement for the lines of all of them
/// (per [`key_chunks`] of orders).
async fn with_lines(
    conn: &impl ConnectionTrait,
    rows: Vec<reservation::Model>,
) -> Result<Vec<Reservation>, DbErr> {
    let ids: Vec<OrderId> = rows.iter().map(|r| r.order_id).collect();
    let mut lines: BTreeMap<OrderId, Vec<ReservationLine>> = BTreeMap::new();
    for chunk in key_chunks(&ids) {
        let found = reservation_line::Entity::find()
            .filter(reservation_line::Column::OrderId.is_in(chunk.iter().copied()))
            .all(conn)
            .await?;
        for line in found {
            lines
                .entry(line.order_id)
                .or_default()
                .push(ReservationLine {
                    product_id: line.product_id,
                    units: line.quantity,
                });
        }
    }
    rows.into_iter()
        .map(|row| {
            let held = lines.remove(&row.order_id).unwrap_or_default();
            reservation_of(row, held)
        })
        .collect()
}

/// An order's reservation.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<Option<Reservation>, DbErr> {
    let rows = hold_table::find::<reservation::Entity>(conn, order_id).await?;
    Ok(with_lines(conn, rows.into_iter().collect()).await?.pop())
}

/// The reservations of `order_ids` that exist, locked (by order id) until
/// the transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_many_for_update(
    conn: &impl ConnectionTrait,
    order_ids: &[OrderId],
) -> Result<Vec<Reservation>, DbErr> {
    let rows = hold_table::find_many_for_update::<reservation::Entity>(conn, order_ids).await?;
    with_lines(conn, rows).await
}

/// Writes what a batch decided: new reservations and their lines, and the
/// changed ones; one statement per table and kind.
///
/// # Errors
/// The database error, or a write conflict when another instance decided
/// one of the new reservations meanwhile (the batch retries).
pub async fn save(
    conn: &impl ConnectionTrait,
    changes: Changes<OrderId, Reservation>,
) -> Result<(), DbErr> {
    let lines: Vec<reservation_line::ActiveModel> = changes
        .added
        .iter()
        .flat_map(|(order_id, reservation)| {
            reservation
                .held
                .iter()
                .map(|line| reservation_line::ActiveModel {
                    order_id: Set(*order_id),
                    product_id: Set(line.product_id),
                    quantity: Set(line.units),
                })
        })
        .collect();
    let rows =
        |records: &[(OrderId, Reservation)]| records.iter().map(|(_, r)| row_of(r)).collect();
    hold_table::insert_new::<reservation::ActiveModel>(conn, rows(&changes.added)).await?;
    // 200 orders of 100 lines are more values than one statement binds.
    for chunk in statement_chunks::<reservation_line::Entity, _>(lines) {
        reservation_line::Entity::insert_many(chunk)
            .exec_without_returning(conn)
            .await?;
    }
    hold_table::save_decisions::<reservation::ActiveModel>(conn, rows(&changes.changed)).await
}

/// Up to `limit` reservations that hold (RESERVED), made at or before
/// `made_before` when given, oldest first, each with its lines; after the
/// reservation `after` (a cursor: creation time and order id) when given.
///
/// # Errors
/// The database error.
pub async fn held_since(
    conn: &impl ConnectionTrait,
    made_before: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, OrderId)>,
    limit: u64,
) -> Result<Vec<Reservation>, DbErr> {
    let rows =
        hold_table::held_since::<reservation::Entity>(conn, made_before, after, limit).await?;
    with_lines(conn, rows).await
}
