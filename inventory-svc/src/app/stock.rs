//! Reservations: inventory's resource in the order saga, set-based. The
//! protocol (which event holds, releases or commits, and when it does
//! nothing) is [`event_runtime::participant`]; this module supplies the
//! stock.
//!
//! A batch of order events is applied in three steps, inside the
//! consumer's transaction (which also writes the replies to the outbox):
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
use event_runtime::{
    FinishedBy, HoldRecords, Holdings, Outbox, Participant, Phase, PhaseNames, Tracked,
};
use events::{
    Event, OrderId, OrderPlaced, ProductId, Quantity, ReleaseReason, ShortLine, ShortageKind,
    StockCommitted, StockLine, StockRejected, StockReleased, StockReserved,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use service_kit::Clock;

use crate::domain::{Product, RESERVATION_PHASES, Reservation, ReservationLine};
use crate::error::InventoryError;
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
    type Table = reservations::Table;
    type Holdings = StockBatch;

    const FINISHED_BY: FinishedBy = FinishedBy::Shipment;
    const RECORD: &'static str = "reservation";
    const FINISH: &'static str = "ship";
    const RESOURCE: &'static str = "stock";
    const PHASES: PhaseNames = RESERVATION_PHASES;

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        orders: &BTreeSet<OrderId>,
        placed: &[&OrderPlaced],
    ) -> Result<StockBatch, DbErr> {
        let ids: Vec<OrderId> = orders.iter().copied().collect();
        let found = reservations::find_many_for_update(txn, &ids).await?;
        let mut product_ids: BTreeSet<ProductId> = placed
            .iter()
            .flat_map(|p| p.lines.iter().map(|l| l.product_id))
            .collect();
        product_ids.extend(
            found
                .iter()
                .flat_map(|r| r.held.iter().map(|l| l.product_id)),
        );
        let product_ids: Vec<ProductId> = product_ids.into_iter().collect();
        let products = products::find_many_for_update(txn, &product_ids).await?;
        Ok(StockBatch {
            reservations: HoldRecords::loaded(found, self.clock.now()),
            products: Tracked::loaded(products.into_iter().map(|p| (p.id, p))),
        })
    }

    async fn save(&self, txn: &DatabaseTransaction, batch: StockBatch) -> Result<(), DbErr> {
        batch.save(txn).await
    }
}

/// The reservations and products a batch of order events touches, and
/// what it changed.
#[derive(Debug)]
pub struct StockBatch {
    reservations: HoldRecords<Vec<ReservationLine>>,
    products: Tracked<ProductId, Product>,
}

impl Holdings for StockBatch {
    type Held = Vec<ReservationLine>;

    fn records(&self) -> &HoldRecords<Vec<ReservationLine>> {
        &self.reservations
    }

    fn records_mut(&mut self) -> &mut HoldRecords<Vec<ReservationLine>> {
        &mut self.reservations
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
            self.reservations.decide(
                placed.order_id,
                Phase::Refused,
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
        let lines: Vec<ReservationLine> = wanted
            .into_iter()
            .map(|(product_id, units)| ReservationLine { product_id, units })
            .collect();
        for line in &lines {
            if !self.product_mut(line.product_id)?.reserve(line.units) {
                return Err(DbErr::Custom(format!(
                    "product {} has fewer units than it had a moment ago",
                    line.product_id
                )));
            }
        }
        let reply = StockReserved {
            order_id: placed.order_id,
            lines: stock_lines(&lines)?,
        };
        self.reservations.decide(
            placed.order_id,
            Phase::Held,
            None,
            lines,
            Some(placed.deadline_at),
        );
        Ok(reply.into())
    }

    fn release(
        &mut self,
        order_id: OrderId,
        reason: Option<ReleaseReason>,
    ) -> Result<Event, DbErr> {
        let lines = self.move_reserved(order_id, Phase::Released)?;
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
        let lines = self.move_reserved(order_id, Phase::Finished)?;
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
        let now = self.reservations.now();
        reservations::save(conn, self.reservations.into_changes()).await?;
        let mut changed = self.products.into_changes().changed;
        for (_, product) in &mut changed {
            product.updated_at = now;
        }
        products::save_stock(conn, changed.iter().map(|(_, product)| product)).await
    }

    /// Moves a RESERVED order's units out of `reserved`: back to
    /// `available` (released) or to `committed` (finished by a shipment).
    fn move_reserved(
        &mut self,
        order_id: OrderId,
        to: Phase,
    ) -> Result<Vec<ReservationLine>, DbErr> {
        let lines = self
            .reservations
            .get(order_id)
            .map(|held| held.held.clone())
            .unwrap_or_default();
        let short = |product_id| {
            DbErr::Custom(format!(
                "product {product_id} holds fewer reserved units than order {order_id}"
            ))
        };
        for line in &lines {
            if self
                .products
                .get(line.product_id)
                .is_none_or(|p| p.stock.reserved < line.units)
            {
                return Err(short(line.product_id));
            }
        }
        for line in &lines {
            if !self
                .product_mut(line.product_id)?
                .unreserve(line.units, to == Phase::Finished)
            {
                return Err(short(line.product_id));
            }
        }
        if let Some(held) = self.reservations.get_mut(order_id) {
            held.phase = to;
            held.deadline_at = None;
        }
        Ok(lines)
    }

    fn product_mut(&mut self, id: ProductId) -> Result<&mut Product, DbErr> {
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
                    (product.stock.available, Some(ShortageKind::InactiveProduct))
                }
                Some(product) if product.stock.available < quantity => (
                    product.stock.available,
                    Some(ShortageKind::InsufficientStock),
                ),
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

/// An order's reservation with its lines (by product id), for the admin API.
///
/// # Errors
/// [`InventoryError::ReservationNotFound`], or the database error.
pub async fn reservation_of(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<Reservation, InventoryError> {
    reservations::find(conn, order_id)
        .await?
        .ok_or(InventoryError::ReservationNotFound(order_id))
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
) -> Result<Vec<Reservation>, InventoryError> {
    let after = match cursor {
        Some(order_id) => reservations::find(conn, order_id)
            .await?
            .map(|r| (r.created_at, r.order_id)),
        None => None,
    };
    Ok(reservations::held_since(conn, made_before, after, limit).await?)
}

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
) -> Result<Reservation, InventoryError> {
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

fn stock_lines(lines: &[ReservationLine]) -> Result<Vec<StockLine>, DbErr> {
    lines
        .iter()
        .map(|line| {
            Ok(StockLine {
                product_id: line.product_id,
                quantity: quantity_of(line.units)?,
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
