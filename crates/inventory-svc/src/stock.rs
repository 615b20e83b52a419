//! Reservations: inventory's part of the order saga.
//!
//! Each function runs inside the consumer's transaction (which also records
//! the event in the inbox and the reply in the outbox) and returns the reply
//! to emit, if any. The rules are in [`crate::domain::reservation`].
//!
//! **Never oversell.** A reservation takes each line with one conditional
//! `UPDATE … SET available = available - q WHERE available >= q AND active`,
//! in product-id order, inside a savepoint; if any line fails, the savepoint
//! is rolled back, so either every line is held or none is. The condition is
//! evaluated under the row lock, so any number of consumers in any number of
//! processes cannot take `available` below zero (the database's `CHECK`
//! constraint would refuse it besides).

use std::collections::BTreeMap;

use events::{
    OrderPlaced, Quantity, ShortLine, ShortageKind, StockCommitted, StockLine, StockRejected,
    StockReleased, StockReserved,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, TransactionTrait};
use uuid::Uuid;

use crate::domain::ReservationState;
use crate::domain::reservation::{CommitDecision, ReleaseDecision, on_commit, on_release};
use crate::persistence::{products, reservations};

/// What handling an OrderPlaced produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Every line is held.
    Reserved(StockReserved),
    /// Nothing is held.
    Rejected(StockRejected),
    /// The order was decided before (reserved, rejected, or cancelled first).
    AlreadyDecided(ReservationState),
}

/// Reserves every line of `placed`, or none.
///
/// # Errors
/// Database errors (the caller retries the whole batch).
pub async fn reserve_order(
    txn: &DatabaseTransaction,
    placed: &OrderPlaced,
) -> Result<ReserveOutcome, DbErr> {
    if let Some(existing) = reservations::find(txn, placed.order_id).await? {
        return Ok(ReserveOutcome::AlreadyDecided(parse_state(
            &existing.state,
        )?));
    }
    // One entry per product, in id order: a stable lock order across orders.
    let mut wanted: BTreeMap<Uuid, i64> = BTreeMap::new();
    for line in &placed.lines {
        *wanted.entry(line.product_id).or_default() += i64::from(line.quantity.get());
    }

    let savepoint = txn.begin().await?;
    let mut all_taken = true;
    for (&product_id, &quantity) in &wanted {
        if !products::reserve_units(&savepoint, product_id, quantity).await? {
            all_taken = false;
            break;
        }
    }
    if all_taken {
        let lines: Vec<(Uuid, i64)> = wanted.iter().map(|(&p, &q)| (p, q)).collect();
        if !reservations::insert(
            &savepoint,
            placed.order_id,
            ReservationState::Reserved,
            None,
            &lines,
        )
        .await?
        {
            // Decided concurrently by another consumer: keep its decision.
            savepoint.rollback().await?;
            let existing =
                reservations::find(txn, placed.order_id)
                    .await?
                    .ok_or(DbErr::RecordNotFound(
                        "a reservation that blocked ours has vanished".into(),
                    ))?;
            return Ok(ReserveOutcome::AlreadyDecided(parse_state(
                &existing.state,
            )?));
        }
        savepoint.commit().await?;
        return Ok(ReserveOutcome::Reserved(StockReserved {
            order_id: placed.order_id,
            lines: stock_lines(&lines)?,
        }));
    }
    savepoint.rollback().await?;

    let short_lines = shortages(txn, &wanted).await?;
    let reason = describe(&short_lines);
    if !reservations::insert(
        txn,
        placed.order_id,
        ReservationState::Rejected,
        Some(&reason),
        &[],
    )
    .await?
    {
        let existing =
            reservations::find(txn, placed.order_id)
                .await?
                .ok_or(DbErr::RecordNotFound(
                    "a reservation that blocked ours has vanished".into(),
                ))?;
        return Ok(ReserveOutcome::AlreadyDecided(parse_state(
            &existing.state,
        )?));
    }
    Ok(ReserveOutcome::Rejected(StockRejected {
        order_id: placed.order_id,
        reason,
        short_lines,
    }))
}

/// Releases what `order_id` holds (OrderRejected, OrderCancelled). Returns
/// the reply when units were released; releasing twice, or an order that
/// never reserved, returns `None`. An order released before it was placed
/// gets a RELEASED record, so its late OrderPlaced reserves nothing.
///
/// # Errors
/// Database errors.
pub async fn release_order(
    txn: &DatabaseTransaction,
    order_id: Uuid,
) -> Result<Option<StockReleased>, DbErr> {
    let current = reservations::find(txn, order_id)
        .await?
        .map(|r| parse_state(&r.state))
        .transpose()?;
    match on_release(current) {
        ReleaseDecision::Nothing => Ok(None),
        ReleaseDecision::Tombstone => {
            if reservations::insert(
                txn,
                order_id,
                ReservationState::Released,
                Some("released before reserved"),
                &[],
            )
            .await?
            {
                Ok(None)
            } else {
                // A reservation appeared meanwhile: release it like any other.
                Box::pin(release_order(txn, order_id)).await
            }
        }
        ReleaseDecision::Release => {
            if !reservations::transition(
                txn,
                order_id,
                ReservationState::Reserved,
                ReservationState::Released,
            )
            .await?
            {
                return Ok(None);
            }
            let lines = reservation_lines(txn, order_id).await?;
            for &(product_id, quantity) in &lines {
                products::release_units(txn, product_id, quantity).await?;
            }
            Ok(Some(StockReleased {
                order_id,
                lines: stock_lines(&lines)?,
            }))
        }
    }
}

/// What handling an OrderShipped produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The reserved units left stock.
    Committed(StockCommitted),
    /// They had already.
    AlreadyCommitted,
    /// The order holds nothing to ship: a saga error, with the reason.
    Refused(String),
}

/// Commits an order's reservation (OrderShipped).
///
/// # Errors
/// Database errors.
pub async fn commit_order(
    txn: &DatabaseTransaction,
    order_id: Uuid,
) -> Result<CommitOutcome, DbErr> {
    let current = reservations::find(txn, order_id)
        .await?
        .map(|r| parse_state(&r.state))
        .transpose()?;
    match on_commit(current) {
        CommitDecision::Nothing => Ok(CommitOutcome::AlreadyCommitted),
        CommitDecision::Refuse(reason) => Ok(CommitOutcome::Refused(reason)),
        CommitDecision::Commit => {
            if !reservations::transition(
                txn,
                order_id,
                ReservationState::Reserved,
                ReservationState::Committed,
            )
            .await?
            {
                return Ok(CommitOutcome::AlreadyCommitted);
            }
            let lines = reservation_lines(txn, order_id).await?;
            for &(product_id, quantity) in &lines {
                products::commit_units(txn, product_id, quantity).await?;
            }
            Ok(CommitOutcome::Committed(StockCommitted {
                order_id,
                lines: stock_lines(&lines)?,
            }))
        }
    }
}

async fn reservation_lines(
    conn: &impl ConnectionTrait,
    order_id: Uuid,
) -> Result<Vec<(Uuid, i64)>, DbErr> {
    Ok(reservations::lines(conn, order_id)
        .await?
        .into_iter()
        .map(|l| (l.product_id, l.quantity))
        .collect())
}

/// Why each wanted line cannot be reserved now.
async fn shortages(
    conn: &impl ConnectionTrait,
    wanted: &BTreeMap<Uuid, i64>,
) -> Result<Vec<ShortLine>, DbErr> {
    let ids: Vec<Uuid> = wanted.keys().copied().collect();
    let found: BTreeMap<Uuid, _> = products::find_many(conn, &ids)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    let mut short = Vec::new();
    for (&product_id, &quantity) in wanted {
        let (available, problem) = match found.get(&product_id) {
            None => (0, Some(ShortageKind::UnknownProduct)),
            Some(product) if !product.active => {
                (product.available, Some(ShortageKind::InactiveProduct))
            }
            Some(product) if product.available < quantity => {
                (product.available, Some(ShortageKind::InsufficientStock))
            }
            Some(_) => (0, None),
        };
        if let Some(problem) = problem {
            short.push(ShortLine {
                product_id,
                requested: quantity_of(quantity)?,
                available: u32::try_from(available.max(0)).unwrap_or(u32::MAX),
                problem,
            });
        }
    }
    if short.is_empty() {
        // Every line looked fine on re-reading: a concurrent release raced
        // our attempt. Retrying the batch will reserve or refuse for real.
        return Err(DbErr::Custom(
            "stock changed during the reservation; retrying".into(),
        ));
    }
    Ok(short)
}

fn describe(short: &[ShortLine]) -> String {
    let parts: Vec<String> = short
        .iter()
        .map(|line| match line.problem {
            ShortageKind::InsufficientStock => format!(
                "product {} has {} of {} units available",
                line.product_id,
                line.available,
                line.requested.get()
            ),
            ShortageKind::UnknownProduct => format!("product {} does not exist", line.product_id),
            ShortageKind::InactiveProduct => format!("product {} is not for sale", line.product_id),
        })
        .collect();
    let reason = format!("cannot reserve: {}", parts.join("; "));
    // The event schema and the reservations table hold at most 1000
    // characters; the short lines themselves are all in `short_lines`.
    if reason.chars().count() <= 1000 {
        reason
    } else {
        let mut cut: String = reason.chars().take(997).collect();
        cut.push_str("...");
        cut
    }
}

fn stock_lines(lines: &[(Uuid, i64)]) -> Result<Vec<StockLine>, DbErr> {
    lines
        .iter()
        .map(|&(product_id, quantity)| {
            Ok(StockLine {
                product_id,
                quantity: quantity_of(quantity)?,
            })
        })
        .collect()
}

fn quantity_of(units: i64) -> Result<Quantity, DbErr> {
    u32::try_from(units)
        .ok()
        .and_then(|u| Quantity::new(u).ok())
        .ok_or_else(|| DbErr::Custom(format!("stored quantity {units} is out of range")))
}

fn parse_state(raw: &str) -> Result<ReservationState, DbErr> {
    raw.parse().map_err(DbErr::Custom)
}
