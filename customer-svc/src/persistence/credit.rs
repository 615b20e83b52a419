//! Repository functions for credit reservations, as the domain's
//! [`CreditReservation`]s. The consumer reads them locked and decides in
//! memory; a new decision is inserted only if the order has none, so that
//! of two concurrent deciders exactly one wins. The queries every
//! participant shares are [`event_runtime::hold_table`]'s.

use chrono::{DateTime, Utc};
use event_runtime::handler::Changes;
use event_runtime::hold_table::{self, phase_of};
use events::{Money, OrderId};
use sea_orm::{ConnectionTrait, DbErr};

use super::entities::credit_reservation;
use crate::domain::{CREDIT_PHASES, CreditReservation, HeldCredit};

/// The table of the records, for the protocol's own queries.
pub type Table = super::entities::credit_reservation::Entity;

/// The credit reservation a row holds.
///
/// # Errors
/// [`DbErr::Type`] when a stored value breaks its type's rule.
fn reservation_of(row: credit_reservation::Model) -> Result<CreditReservation, DbErr> {
    let order_id = row.order_id;
    Ok(CreditReservation {
        order_id,
        phase: phase_of::<credit_reservation::Entity>(order_id, &row.state)?,
        reason: row.reason,
        deadline_at: row.deadline_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
        held: HeldCredit {
            customer_id: row.customer_id,
            amount: Money::parse(row.amount_minor, &row.currency).map_err(|e| {
                DbErr::Type(format!(
                    "order {order_id}: the stored amount is invalid: {e}"
                ))
            })?,
        },
    })
}

/// The row that holds `reservation`.
fn row_of(reservation: &CreditReservation) -> credit_reservation::Model {
    credit_reservation::Model {
        order_id: reservation.order_id,
        customer_id: reservation.held.customer_id,
        amount_minor: reservation.held.amount.amount_minor(),
        currency: reservation.held.amount.currency().as_str().to_owned(),
        state: CREDIT_PHASES.name(reservation.phase).to_owned(),
        reason: reservation.reason.clone(),
        deadline_at: reservation.deadline_at,
        created_at: reservation.created_at,
        updated_at: reservation.updated_at,
    }
}

fn reservations_of(rows: Vec<credit_reservation::Model>) -> Result<Vec<CreditReservation>, DbErr> {
    rows.into_iter().map(reservation_of).collect()
}

/// An order's credit reservation.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<Option<CreditReservation>, DbErr> {
    hold_table::find::<credit_reservation::Entity>(conn, order_id)
        .await?
        .map(reservation_of)
        .transpose()
}

/// The credit reservations of `order_ids` that exist, locked (by order
/// id) until the transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_many_for_update(
    conn: &impl ConnectionTrait,
    order_ids: &[OrderId],
) -> Result<Vec<CreditReservation>, DbErr> {
    hold_table::find_many_for_update::<credit_reservation::Entity>(conn, order_ids)
        .await
        .and_then(reservations_of)
}

/// Writes what a batch decided: new reservations and the changed ones,
/// one statement each.
///
/// # Errors
/// The database error, or a write conflict when another instance decided
/// one of the new reservations meanwhile (the batch retries).
pub async fn save(
    conn: &impl ConnectionTrait,
    changes: Changes<OrderId, CreditReservation>,
) -> Result<(), DbErr> {
    let rows =
        |records: &[(OrderId, CreditReservation)]| records.iter().map(|(_, r)| row_of(r)).collect();
    hold_table::insert_new::<credit_reservation::ActiveModel>(conn, rows(&changes.added)).await?;
    hold_table::save_decisions::<credit_reservation::ActiveModel>(conn, rows(&changes.changed))
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
) -> Result<Vec<CreditReservation>, DbErr> {
    hold_table::held_since::<credit_reservation::Entity>(conn, made_before, after, limit)
        .await
        .and_then(reservations_of)
}
