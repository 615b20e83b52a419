//! Reservations: inventory's resource in the order saga, set-based. The
//! protocol (which event holds, releases or commits, and when it does
//! nothing) is [`event_runtime::participant`]; this module supplies the
//! stock.
//!
//! A batch of order events is applied in three steps, inside the
//! consumer's transaction (which also records the events in the inbox and
//! the replies in the outbox):
//! 1. [`Stock::load`](Participant::load) reads, with one statement each,
//!    the reservations of the batch's orders, their lines, and every
//!    product they touch, locking the reservations (by order id) and then
//!    the products (by product id): one global lock order, so instances
//!    never deadlock.
//! 2. [`StockBatch`] applies each event in partition order, in memory, and
//!    returns the reply.
//! 3. [`Stock::save`](Participant::save) writes the reservations, their
//!    lines and the products with one statement per table.
//!
//! **No reservation outlives its order.** A reservation records its
//! order's deadline until the order is confirmed; the participant
//! protocol's hold sweeper releases one still undecided
//! `OMS_HOLD_GRACE_SECS` after it (StockReleased with the reason
//! `HOLD_EXPIRED`). [`Stock::expired`](Participant::expired) finds them
//! over an index on `reservations.deadline_at`.
//!
//! **Never oversell.** Every product a batch changes is locked from step 1
//! to the commit (SQLite: the writer holds the whole database), and a
//! reservation takes its lines only if each is active and has the units,
//! so `available` cannot go below zero; the database's `CHECK` constraint
//! would refuse it besides. A reservation that another instance decided
//! while this batch ran (the order's row did not exist to be locked) makes
//! the batch fail and retry, and the retry finds the other decision.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use event_runtime::participant::{self, ManualRelease};
use event_runtime::{FinishedBy, Holdings, Outbox, Participant, TOMBSTONE_REASON, Tracked};
use events::{
    Event, OrderId, OrderPlaced, ProductId, Quantity, ReleaseReason, ShortLine, ShortageKind,
    StockCommitted, StockLine, StockRejected, StockReleased, StockReserved,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use service_kit::Clock;

use crate::domain::ReservationState;
use crate::error::InventoryError;
use crate::persistence::entities::{product, reservation, reservation_line};
use crate::persistence::{products, reservations};

/// inventory-svc's resource in the saga: stock, held per order.
#[derive(Debug, Clone, Default)]
pub struct Stock {
    /// The service's time: a reservation's `created_at` (its age in the
    /// hold listing) and `updated_at` are read from it, as is the expiry.
    clock: Clock,
}

impl Stock {
    /// Stock whose records are stamped by `clock`.
    pub fn new(clock: Clock) -> Self {
        Self { clock }
    }
}

impl Participant for Stock {
    type Holdings = StockBatch;

    const FINISHED_BY: FinishedBy = FinishedBy::Shipment;
    const RECORD: &'static str = "reservation";
    const FINISH: &'static str = "ship";
    const RESOURCE: &'static str = "stock";

    async fn expired<C: ConnectionTrait>(
        &self,
        conn: &C,
        cutoff: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<OrderId>, DbErr> {
        reservations::expired(conn, cutoff, limit).await
    }

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        orders: &BTreeSet<OrderId>,
        placed: &[&OrderPlaced],
    ) -> Result<StockBatch, DbErr> {
        let ids: Vec<OrderId> = orders.iter().copied().collect();
        let found = reservations::find_many_for_update(txn, &ids).await?;
        let known: Vec<OrderId> = found.iter().map(|r| r.order_id).collect();
        let mut lines: BTreeMap<OrderId, Vec<(ProductId, i64)>> = BTreeMap::new();
        for line in reservations::lines_of(txn, &known).await? {
            lines
                .entry(line.order_id)
                .or_default()
                .push((line.product_id, line.quantity));
        }
        let mut product_ids: BTreeSet<ProductId> = placed
            .iter()
            .flat_map(|p| p.lines.iter().map(|l| l.product_id))
            .collect();
        product_ids.extend(lines.values().flatten().map(|&(product, _)| product));
        let product_ids: Vec<ProductId> = product_ids.into_iter().collect();
        let products = products::find_many_for_update(txn, &product_ids).await?;
        let reservations = found.into_iter().map(|row| {
            let mut held_lines = lines.remove(&row.order_id).unwrap_or_default();
            held_lines.sort_unstable();
            (
                row.order_id,
                Held {
                    state: row.state,
                    reason: row.reason,
                    lines: held_lines,
                    deadline_at: row.deadline_at,
                    created_at: row.created_at,
                },
            )
        });
        Ok(StockBatch {
            reservations: Tracked::loaded(reservations),
            products: Tracked::loaded(products.into_iter().map(|p| (p.id, p))),
            now: self.clock.now(),
        })
    }

    async fn save(&self, txn: &DatabaseTransaction, batch: StockBatch) -> Result<(), DbErr> {
        batch.save(txn).await
    }
}

/// One order's reservation as the batch sees it.
#[derive(Debug, Clone)]
struct Held {
    state: ReservationState,
    reason: Option<String>,
    lines: Vec<(ProductId, i64)>,
    /// The order's deadline while it holds and is undecided.
    deadline_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

/// The rows a batch of order events touches, and what it changed.
#[derive(Debug, Default)]
pub struct StockBatch {
    reservations: Tracked<OrderId, Held>,
    products: Tracked<ProductId, product::Model>,
    /// The batch's time, on the service's clock.
    now: DateTime<Utc>,
}

impl Holdings for StockBatch {
    type State = ReservationState;

    fn state(&self, order_id: OrderId) -> Option<ReservationState> {
        self.reservations.get(order_id).map(|held| held.state)
    }

    /// Reserves every line of `placed`, or none.
    fn hold(&mut self, placed: &OrderPlaced) -> Result<Event, DbErr> {
        let mut wanted: BTreeMap<ProductId, i64> = BTreeMap::new();
        for line in &placed.lines {
            *wanted.entry(line.product_id).or_default() += i64::from(line.quantity.get());
        }
        let short_lines = self.shortages(&wanted)?;
        if !short_lines.is_empty() {
            let reason = describe(&short_lines);
            self.record(
                placed.order_id,
                ReservationState::Rejected,
                Some(reason.clone()),
                Vec::new(),
                None,
            );
            return Ok(StockRejected {
                order_id: placed.order_id,
                reason,
                short_lines,
            }
            .into());
        }
        for (&product_id, &quantity) in &wanted {
            let product = self.product_mut(product_id)?;
            product.available -= quantity;
            product.reserved += quantity;
        }
        let lines: Vec<(ProductId, i64)> = wanted.into_iter().collect();
        let reply = StockReserved {
            order_id: placed.order_id,
            lines: stock_lines(&lines)?,
        };
        self.record(
            placed.order_id,
            ReservationState::Reserved,
            None,
            lines,
            Some(placed.deadline_at),
        );
        Ok(reply.into())
    }

    fn tombstone(&mut self, order_id: OrderId) {
        self.record(
            order_id,
            ReservationState::Released,
            Some(TOMBSTONE_REASON.to_owned()),
            Vec::new(),
            None,
        );
    }

    fn deadline(&self, order_id: OrderId) -> Option<DateTime<Utc>> {
        self.reservations
            .get(order_id)
            .and_then(|held| held.deadline_at)
    }

    fn confirm(&mut self, order_id: OrderId) {
        if let Some(held) = self.reservations.get_mut(order_id)
            && held.deadline_at.is_some()
        {
            held.deadline_at = None;
        }
    }

    fn release(
        &mut self,
        order_id: OrderId,
        reason: Option<ReleaseReason>,
    ) -> Result<Event, DbErr> {
        let lines = self.move_reserved(order_id, ReservationState::Released)?;
        if let (Some(reason), Some(held)) = (reason, self.reservations.get_mut(order_id)) {
            held.reason = Some(reason.to_string());
        }
        Ok(StockReleased {
            order_id,
            lines: stock_lines(&lines)?,
            reason,
        }
        .into())
    }

    fn finish(&mut self, order_id: OrderId) -> Result<Event, DbErr> {
        let lines = self.move_reserved(order_id, ReservationState::Committed)?;
        Ok(StockCommitted {
            order_id,
            lines: stock_lines(&lines)?,
        }
        .into())
    }
}

impl StockBatch {
    /// Writes what the batch changed: new reservations and their lines,
    /// changed reservations, changed products; one statement each.
    async fn save(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let now = self.now;
        let reservations = self.reservations.into_changes();
        let row = |(order_id, held): &(OrderId, Held)| reservation::Model {
            order_id: *order_id,
            state: held.state,
            reason: held.reason.clone(),
            deadline_at: held.deadline_at,
            created_at: held.created_at,
            updated_at: now,
        };
        let lines = reservations
            .added
            .iter()
            .flat_map(|(order_id, held)| {
                held.lines
                    .iter()
                    .map(|&(product_id, quantity)| (*order_id, product_id, quantity))
            })
            .collect();
        reservations::insert_new(conn, reservations.added.iter().map(row).collect()).await?;
        reservations::insert_lines(conn, lines).await?;
        reservations::update_states(conn, reservations.changed.iter().map(row).collect()).await?;
        let changed: Vec<product::Model> = self
            .products
            .into_changes()
            .changed
            .into_iter()
            .map(|(_, mut product)| {
                product.updated_at = now;
                product
            })
            .collect();
        products::save_stock(conn, changed).await
    }

    fn record(
        &mut self,
        order_id: OrderId,
        state: ReservationState,
        reason: Option<String>,
        lines: Vec<(ProductId, i64)>,
        deadline_at: Option<DateTime<Utc>>,
    ) {
        self.reservations.add(
            order_id,
            Held {
                state,
                reason,
                lines,
                deadline_at,
                created_at: self.now,
            },
        );
    }

    /// Moves a RESERVED order's units out of `reserved`: back to
    /// `available` (a release) or to `committed` (a shipment).
    fn move_reserved(
        &mut self,
        order_id: OrderId,
        to: ReservationState,
    ) -> Result<Vec<(ProductId, i64)>, DbErr> {
        let lines = self
            .reservations
            .get(order_id)
            .map(|held| held.lines.clone())
            .unwrap_or_default();
        for &(product_id, quantity) in &lines {
            if self
                .products
                .get(product_id)
                .is_none_or(|p| p.reserved < quantity)
            {
                return Err(DbErr::Custom(format!(
                    "product {product_id} holds fewer reserved units than order {order_id}"
                )));
            }
        }
        for &(product_id, quantity) in &lines {
            let product = self.product_mut(product_id)?;
            product.reserved -= quantity;
            match to {
                ReservationState::Committed => product.committed += quantity,
                _ => product.available += quantity,
            }
        }
        if let Some(held) = self.reservations.get_mut(order_id) {
            held.state = to;
            held.deadline_at = None;
        }
        Ok(lines)
    }

    fn product_mut(&mut self, id: ProductId) -> Result<&mut product::Model, DbErr> {
        self.products
            .get_mut(id)
            .ok_or_else(|| DbErr::RecordNotFound(format!("product {id}")))
    }

    /// Why each wanted line cannot be reserved now; empty when all can.
    fn shortages(&self, wanted: &BTreeMap<ProductId, i64>) -> Result<Vec<ShortLine>, DbErr> {
        let mut short = Vec::new();
        for (&product_id, &quantity) in wanted {
            let (available, problem) = match self.products.get(product_id) {
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
        Ok(short)
    }
}

/// An order's reservation and its lines (by product id), for the admin API.
///
/// # Errors
/// [`InventoryError::ReservationNotFound`], or the database error.
pub async fn reservation_of(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<(reservation::Model, Vec<reservation_line::Model>), InventoryError> {
    let reservation = reservations::find(conn, order_id)
        .await?
        .ok_or(InventoryError::ReservationNotFound(order_id))?;
    let lines = reservations::lines(conn, order_id).await?;
    Ok((reservation, lines))
}

/// A page of the reservations that hold (made at or before `made_before`
/// when given; every hold otherwise), oldest first, each with its lines;
/// `limit` rows after the reservation of the order `cursor`.
///
/// # Errors
/// The database error.
pub async fn held_reservations(
    conn: &impl ConnectionTrait,
    made_before: Option<DateTime<Utc>>,
    cursor: Option<OrderId>,
    limit: u64,
) -> Result<Vec<HeldReservation>, InventoryError> {
    let after = match cursor {
        Some(order_id) => reservations::find(conn, order_id)
            .await?
            .map(|r| (r.created_at, r.order_id)),
        None => None,
    };
    let rows = reservations::held_since(conn, made_before, after, limit).await?;
    let ids: Vec<OrderId> = rows.iter().map(|r| r.order_id).collect();
    let mut lines: BTreeMap<OrderId, Vec<reservation_line::Model>> = BTreeMap::new();
    for line in reservations::lines_of(conn, &ids).await? {
        lines.entry(line.order_id).or_default().push(line);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut held = lines.remove(&row.order_id).unwrap_or_default();
            held.sort_by_key(|l| l.product_id);
            (row, held)
        })
        .collect())
}

/// A reservation with its lines.
pub type HeldReservation = (reservation::Model, Vec<reservation_line::Model>);

/// Releases an order's reservation on an operator's word: StockReleased
/// with the reason `RELEASED_BY_OPERATOR`, in one transaction with the
/// units going back.
///
/// # Errors
/// [`InventoryError::ReservationNotFound`], [`InventoryError::ReservationNotHeld`],
/// or the database error.
pub async fn release_by_hand(
    db: &DatabaseConnection,
    outbox: &Outbox,
    clock: &Clock,
    order_id: OrderId,
) -> Result<HeldReservation, InventoryError> {
    let stock = Stock::new(clock.clone());
    match participant::release_by_hand(&stock, db, outbox, order_id).await? {
        ManualRelease::Released(_) => reservation_of(db, order_id).await,
        ManualRelease::NotFound => Err(InventoryError::ReservationNotFound(order_id)),
        ManualRelease::NotHeld(state) => {
            Err(InventoryError::ReservationNotHeld { order_id, state })
        }
    }
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

fn stock_lines(lines: &[(ProductId, i64)]) -> Result<Vec<StockLine>, DbErr> {
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
