//! Reservations: inventory's part of the order saga, set-based.
//!
//! A batch of order events is applied in three steps, inside the
//! consumer's transaction (which also records the events in the inbox and
//! the replies in the outbox):
//! 1. [`StockBatch::load`] reads, with one statement each, the reservations
//!    of the batch's orders, their lines, and every product they touch,
//!    locking the reservations (by order id) and then the products (by
//!    product id): one global lock order, so instances never deadlock.
//! 2. [`StockBatch::reserve`], [`StockBatch::release`] and
//!    [`StockBatch::commit`] apply each event in partition order, in memory,
//!    by the rules of [`crate::domain::reservation`], and return the reply.
//! 3. [`StockBatch::save`] writes the reservations, their lines and the
//!    products with one statement per table.
//!
//! **Never oversell.** Every product a batch changes is locked from step 1
//! to the commit (SQLite: the writer holds the whole database), and a
//! reservation takes its lines only if each is active and has the units,
//! so `available` cannot go below zero; the database's `CHECK` constraint
//! would refuse it besides. A reservation that another instance decided
//! while this batch ran (the order's row did not exist to be locked) makes
//! the batch fail and retry, and the retry finds the other decision.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use events::{
    OrderPlaced, Quantity, ShortLine, ShortageKind, StockCommitted, StockLine, StockRejected,
    StockReleased, StockReserved,
};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::domain::ReservationState;
use crate::domain::reservation::{CommitDecision, ReleaseDecision, on_commit, on_release};
use crate::persistence::entities::{product, reservation};
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

/// One order's reservation as the batch sees it.
#[derive(Debug, Clone)]
struct Held {
    state: ReservationState,
    reason: Option<String>,
    lines: Vec<(Uuid, i64)>,
    created_at: DateTime<Utc>,
    /// Not in the database yet: inserted by [`StockBatch::save`].
    new: bool,
}

/// The rows a batch of order events touches, and what it changed.
#[derive(Debug, Default)]
pub struct StockBatch {
    reservations: HashMap<Uuid, Held>,
    changed_reservations: BTreeSet<Uuid>,
    products: BTreeMap<Uuid, product::Model>,
    changed_products: BTreeSet<Uuid>,
}

impl StockBatch {
    /// Reads and locks what the events of `orders` (ids, with the products
    /// their OrderPlaced lines name) touch.
    ///
    /// # Errors
    /// Database errors.
    pub async fn load(
        conn: &impl ConnectionTrait,
        orders: &BTreeSet<Uuid>,
        placed_products: &BTreeSet<Uuid>,
    ) -> Result<Self, DbErr> {
        let ids: Vec<Uuid> = orders.iter().copied().collect();
        let found = reservations::find_many_for_update(conn, &ids).await?;
        let known: Vec<Uuid> = found.iter().map(|r| r.order_id).collect();
        let mut lines: HashMap<Uuid, Vec<(Uuid, i64)>> = HashMap::new();
        for line in reservations::lines_of(conn, &known).await? {
            lines
                .entry(line.order_id)
                .or_default()
                .push((line.product_id, line.quantity));
        }
        let mut product_ids = placed_products.clone();
        product_ids.extend(lines.values().flatten().map(|&(product, _)| product));
        let product_ids: Vec<Uuid> = product_ids.into_iter().collect();
        let products = products::find_many_for_update(conn, &product_ids)
            .await?
            .into_iter()
            .map(|p| (p.id, p))
            .collect();
        let mut reservations = HashMap::with_capacity(found.len());
        for row in found {
            let mut held_lines = lines.remove(&row.order_id).unwrap_or_default();
            held_lines.sort_unstable();
            reservations.insert(
                row.order_id,
                Held {
                    state: parse_state(&row.state)?,
                    reason: row.reason,
                    lines: held_lines,
                    created_at: row.created_at,
                    new: false,
                },
            );
        }
        Ok(Self {
            reservations,
            products,
            ..Self::default()
        })
    }

    /// Reserves every line of `placed`, or none.
    ///
    /// # Errors
    /// A stored quantity out of range (the books are wrong).
    pub fn reserve(&mut self, placed: &OrderPlaced) -> Result<ReserveOutcome, DbErr> {
        if let Some(existing) = self.reservations.get(&placed.order_id) {
            return Ok(ReserveOutcome::AlreadyDecided(existing.state));
        }
        let mut wanted: BTreeMap<Uuid, i64> = BTreeMap::new();
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
            );
            return Ok(ReserveOutcome::Rejected(StockRejected {
                order_id: placed.order_id,
                reason,
                short_lines,
            }));
        }
        for (&product_id, &quantity) in &wanted {
            let product = self.product_mut(product_id)?;
            product.available -= quantity;
            product.reserved += quantity;
        }
        let lines: Vec<(Uuid, i64)> = wanted.into_iter().collect();
        let reply = StockReserved {
            order_id: placed.order_id,
            lines: stock_lines(&lines)?,
        };
        self.record(placed.order_id, ReservationState::Reserved, None, lines);
        Ok(ReserveOutcome::Reserved(reply))
    }

    /// Releases what `order_id` holds (OrderRejected, OrderCancelled).
    /// Returns the reply when units were released; releasing twice, or an
    /// order that never reserved, returns `None`. An order released before
    /// it was placed gets a RELEASED record, so its late OrderPlaced
    /// reserves nothing.
    ///
    /// # Errors
    /// When the products hold fewer reserved units than the reservation:
    /// the books would be wrong, and the batch must not commit.
    pub fn release(&mut self, order_id: Uuid) -> Result<Option<StockReleased>, DbErr> {
        let current = self.reservations.get(&order_id).map(|held| held.state);
        match on_release(current) {
            ReleaseDecision::Nothing => Ok(None),
            ReleaseDecision::Tombstone => {
                self.record(
                    order_id,
                    ReservationState::Released,
                    Some("released before reserved".to_owned()),
                    Vec::new(),
                );
                Ok(None)
            }
            ReleaseDecision::Release => {
                let lines = self.move_reserved(order_id, ReservationState::Released)?;
                Ok(Some(StockReleased {
                    order_id,
                    lines: stock_lines(&lines)?,
                }))
            }
        }
    }

    /// Commits an order's reservation (OrderShipped).
    ///
    /// # Errors
    /// As [`release`](Self::release).
    pub fn commit(&mut self, order_id: Uuid) -> Result<CommitOutcome, DbErr> {
        let current = self.reservations.get(&order_id).map(|held| held.state);
        match on_commit(current) {
            CommitDecision::Nothing => Ok(CommitOutcome::AlreadyCommitted),
            CommitDecision::Refuse(reason) => Ok(CommitOutcome::Refused(reason)),
            CommitDecision::Commit => {
                let lines = self.move_reserved(order_id, ReservationState::Committed)?;
                Ok(CommitOutcome::Committed(StockCommitted {
                    order_id,
                    lines: stock_lines(&lines)?,
                }))
            }
        }
    }

    /// Writes what the batch changed: new reservations and their lines,
    /// changed reservations, changed products; one statement each.
    ///
    /// # Errors
    /// Database errors, or a conflict when another instance decided one of
    /// the new reservations meanwhile (the batch is then retried).
    pub async fn save(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let now = Utc::now();
        let mut inserts = Vec::new();
        let mut updates = Vec::new();
        let mut lines = Vec::new();
        for order_id in &self.changed_reservations {
            let held = &self.reservations[order_id];
            let row = reservation::Model {
                order_id: *order_id,
                state: held.state.as_str().to_owned(),
                reason: held.reason.clone(),
                created_at: held.created_at,
                updated_at: now,
            };
            if held.new {
                lines.extend(
                    held.lines
                        .iter()
                        .map(|&(product, quantity)| (*order_id, product, quantity)),
                );
                inserts.push(row);
            } else {
                updates.push(row);
            }
        }
        reservations::insert_new(conn, inserts).await?;
        reservations::insert_lines(conn, lines).await?;
        reservations::update_states(conn, updates).await?;
        let changed: Vec<product::Model> = self
            .changed_products
            .iter()
            .map(|id| {
                let mut product = self.products[id].clone();
                product.updated_at = now;
                product
            })
            .collect();
        products::save_stock(conn, changed).await
    }

    fn record(
        &mut self,
        order_id: Uuid,
        state: ReservationState,
        reason: Option<String>,
        lines: Vec<(Uuid, i64)>,
    ) {
        self.reservations.insert(
            order_id,
            Held {
                state,
                reason,
                lines,
                created_at: Utc::now(),
                new: true,
            },
        );
        self.changed_reservations.insert(order_id);
    }

    /// Moves a RESERVED order's units out of `reserved`: back to
    /// `available` (a release) or to `committed` (a shipment).
    fn move_reserved(
        &mut self,
        order_id: Uuid,
        to: ReservationState,
    ) -> Result<Vec<(Uuid, i64)>, DbErr> {
        let lines = self
            .reservations
            .get(&order_id)
            .map(|held| held.lines.clone())
            .unwrap_or_default();
        for &(product_id, quantity) in &lines {
            if self
                .products
                .get(&product_id)
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
        if let Some(held) = self.reservations.get_mut(&order_id) {
            held.state = to;
        }
        self.changed_reservations.insert(order_id);
        Ok(lines)
    }

    fn product_mut(&mut self, id: Uuid) -> Result<&mut product::Model, DbErr> {
        self.changed_products.insert(id);
        self.products
            .get_mut(&id)
            .ok_or_else(|| DbErr::RecordNotFound(format!("product {id}")))
    }

    /// Why each wanted line cannot be reserved now; empty when all can.
    fn shortages(&self, wanted: &BTreeMap<Uuid, i64>) -> Result<Vec<ShortLine>, DbErr> {
        let mut short = Vec::new();
        for (&product_id, &quantity) in wanted {
            let (available, problem) = match self.products.get(&product_id) {
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
