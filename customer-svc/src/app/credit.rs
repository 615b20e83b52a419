//! Credit reservations: customer-svc's part of the order saga, set-based.
//!
//! A batch of order events is applied in three steps, inside the
//! consumer's transaction:
//! 1. [`CreditBatch::load`] reads, with one statement each, the credit
//!    reservations of the batch's orders (locked, by order id) and every
//!    customer they name (locked, by customer id): one global lock order.
//! 2. [`CreditBatch::reserve`], [`CreditBatch::release`] and
//!    [`CreditBatch::settle`] apply each event in partition order, in
//!    memory, by the rules of [`crate::domain::credit`], and return the reply.
//! 3. [`CreditBatch::save`] writes the reservations and the customers with
//!    one statement per table and kind.
//!
//! **Never over the limit.** Every customer a batch changes is locked from
//! step 1 to the commit (SQLite: the writer holds the whole database), and
//! an order's total is held only if the customer is active, in the order's
//! currency, and the total fits what the limit leaves, so concurrent orders
//! in any number of consumers cannot hold more than the limit together (a
//! `CHECK` constraint refuses it besides). A reservation another instance
//! decided meanwhile makes the batch fail and retry.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Utc;
use events::{
    CreditReleased, CreditReserved, CreditSettled, CustomerRejected, CustomerRejectionReason,
    Money, OrderPlaced,
};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::domain::CreditState;
use crate::domain::credit::{ReleaseDecision, on_release, settles};
use crate::persistence::entities::{credit_reservation, customer};
use crate::persistence::{credit, customers};

/// What handling an OrderPlaced produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// The total is held.
    Reserved(CreditReserved),
    /// The order is refused; nothing is held.
    Rejected(CustomerRejected),
    /// The order was decided before.
    AlreadyDecided(CreditState),
}

/// What handling an OrderDelivered produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleOutcome {
    /// The amount is settled.
    Settled(CreditSettled),
    /// It was before.
    AlreadySettled,
    /// The order holds no credit: a saga error, with the reason.
    Refused(String),
}

/// One order's credit reservation as the batch sees it.
#[derive(Debug, Clone)]
struct Held {
    row: credit_reservation::Model,
    state: CreditState,
    /// Not in the database yet: inserted by [`CreditBatch::save`].
    new: bool,
}

/// The rows a batch of order events touches, and what it changed.
#[derive(Debug, Default)]
pub struct CreditBatch {
    reservations: HashMap<Uuid, Held>,
    changed_reservations: BTreeSet<Uuid>,
    customers: BTreeMap<Uuid, customer::Model>,
    changed_customers: BTreeSet<Uuid>,
}

impl CreditBatch {
    /// Reads and locks what the events of `orders` touch; `ordering` are
    /// the customers their OrderPlaced events name.
    ///
    /// # Errors
    /// Database errors.
    pub async fn load(
        conn: &impl ConnectionTrait,
        orders: &BTreeSet<Uuid>,
        ordering: &BTreeSet<Uuid>,
    ) -> Result<Self, DbErr> {
        let ids: Vec<Uuid> = orders.iter().copied().collect();
        let found = credit::find_many_for_update(conn, &ids).await?;
        let mut customer_ids = ordering.clone();
        customer_ids.extend(found.iter().map(|r| r.customer_id));
        let customer_ids: Vec<Uuid> = customer_ids.into_iter().collect();
        let customers = customers::find_many_for_update(conn, &customer_ids)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let mut reservations = HashMap::with_capacity(found.len());
        for row in found {
            reservations.insert(
                row.order_id,
                Held {
                    state: parse_state(&row.state)?,
                    row,
                    new: false,
                },
            );
        }
        Ok(Self {
            reservations,
            customers,
            ..Self::default()
        })
    }

    /// Validates the ordering customer and holds the order's total.
    pub fn reserve(&mut self, placed: &OrderPlaced) -> ReserveOutcome {
        if let Some(existing) = self.reservations.get(&placed.order_id) {
            return ReserveOutcome::AlreadyDecided(existing.state);
        }
        let amount = placed.total.amount_minor;
        let currency = placed.total.currency.as_str();
        let refusal = match self.customers.get(&placed.customer_id) {
            None => Some((
                CustomerRejectionReason::UnknownCustomer,
                format!("customer {} does not exist", placed.customer_id),
            )),
            Some(customer) if customer.status != "ACTIVE" => Some((
                CustomerRejectionReason::CustomerSuspended,
                format!("customer {} is suspended", placed.customer_id),
            )),
            Some(customer) if customer.currency != currency => Some((
                CustomerRejectionReason::CreditLimitExceeded,
                format!(
                    "the order is in {currency}; the customer's credit line is in {}",
                    customer.currency
                ),
            )),
            Some(customer)
                if customer
                    .credit_reserved_minor
                    .checked_add(amount)
                    .is_none_or(|held| held > customer.credit_limit_minor) =>
            {
                Some((
                    CustomerRejectionReason::CreditLimitExceeded,
                    format!(
                        "order total {} exceeds the available credit of {} {currency}",
                        placed.total,
                        customer.credit_limit_minor - customer.credit_reserved_minor
                    ),
                ))
            }
            Some(_) => None,
        };
        if let Some((reason, detail)) = refusal {
            self.record(
                placed.order_id,
                placed.customer_id,
                0,
                currency,
                CreditState::Rejected,
                Some(detail.clone()),
            );
            return ReserveOutcome::Rejected(CustomerRejected {
                order_id: placed.order_id,
                customer_id: placed.customer_id,
                reason,
                detail,
            });
        }
        if let Some(customer) = self.customers.get_mut(&placed.customer_id) {
            customer.credit_reserved_minor += amount;
            self.changed_customers.insert(placed.customer_id);
        }
        self.record(
            placed.order_id,
            placed.customer_id,
            amount,
            currency,
            CreditState::Reserved,
            None,
        );
        ReserveOutcome::Reserved(CreditReserved {
            order_id: placed.order_id,
            customer_id: placed.customer_id,
            amount: placed.total.clone(),
        })
    }

    /// Releases what `order_id` holds (OrderRejected, OrderCancelled). Twice,
    /// or for an order that never reserved, it returns `None`; released
    /// before it was placed, the order gets a RELEASED record so that its
    /// late OrderPlaced holds nothing.
    ///
    /// # Errors
    /// When the customer holds less than the reservation: the books would
    /// be wrong, and the batch must not commit.
    pub fn release(&mut self, order_id: Uuid) -> Result<Option<CreditReleased>, DbErr> {
        let current = self.reservations.get(&order_id).map(|held| held.state);
        match on_release(current) {
            ReleaseDecision::Nothing => Ok(None),
            ReleaseDecision::Tombstone => {
                self.record(
                    order_id,
                    Uuid::nil(),
                    0,
                    "XXX",
                    CreditState::Released,
                    Some("released before reserved".to_owned()),
                );
                Ok(None)
            }
            ReleaseDecision::Release => {
                let row = self.unhold(order_id, CreditState::Released)?;
                Ok(Some(CreditReleased {
                    order_id,
                    customer_id: row.customer_id,
                    amount: stored_money(row.amount_minor, &row.currency)?,
                }))
            }
        }
    }

    /// Settles an order's credit (OrderDelivered).
    ///
    /// # Errors
    /// As [`release`](Self::release).
    pub fn settle(&mut self, order_id: Uuid) -> Result<SettleOutcome, DbErr> {
        let state = self.reservations.get(&order_id).map(|held| held.state);
        if state == Some(CreditState::Settled) {
            return Ok(SettleOutcome::AlreadySettled);
        }
        if !settles(state) {
            let why = state.map_or("has no credit reservation".to_owned(), |s| {
                format!("has a {s} credit reservation")
            });
            return Ok(SettleOutcome::Refused(format!(
                "order {order_id} {why}; nothing to settle"
            )));
        }
        let row = self.unhold(order_id, CreditState::Settled)?;
        Ok(SettleOutcome::Settled(CreditSettled {
            order_id,
            customer_id: row.customer_id,
            amount: stored_money(row.amount_minor, &row.currency)?,
        }))
    }

    /// Writes what the batch changed: new reservations, changed
    /// reservations, changed customers; one statement each.
    ///
    /// # Errors
    /// Database errors, or a conflict when another instance decided one of
    /// the new reservations meanwhile (the batch is then retried).
    pub async fn save(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let now = Utc::now();
        let mut inserts = Vec::new();
        let mut updates = Vec::new();
        for order_id in &self.changed_reservations {
            let held = &self.reservations[order_id];
            let mut row = held.row.clone();
            row.state = held.state.as_str().to_owned();
            row.updated_at = now;
            if held.new {
                inserts.push(row);
            } else {
                updates.push(row);
            }
        }
        credit::insert_new(conn, inserts).await?;
        credit::update_states(conn, updates).await?;
        let changed: Vec<customer::Model> = self
            .changed_customers
            .iter()
            .map(|id| {
                let mut customer = self.customers[id].clone();
                customer.updated_at = now;
                customer
            })
            .collect();
        customers::save_credit(conn, changed).await
    }

    fn record(
        &mut self,
        order_id: Uuid,
        customer_id: Uuid,
        amount_minor: i64,
        currency: &str,
        state: CreditState,
        reason: Option<String>,
    ) {
        let now = Utc::now();
        let row = credit_reservation::Model {
            order_id,
            customer_id,
            amount_minor,
            currency: currency.to_owned(),
            state: state.as_str().to_owned(),
            reason,
            created_at: now,
            updated_at: now,
        };
        self.reservations.insert(
            order_id,
            Held {
                row,
                state,
                new: true,
            },
        );
        self.changed_reservations.insert(order_id);
    }

    /// Gives a RESERVED order's amount back to its customer and moves the
    /// reservation to `to`.
    fn unhold(
        &mut self,
        order_id: Uuid,
        to: CreditState,
    ) -> Result<credit_reservation::Model, DbErr> {
        let held = self
            .reservations
            .get_mut(&order_id)
            .ok_or_else(|| DbErr::RecordNotFound(format!("credit reservation of {order_id}")))?;
        let customer = self
            .customers
            .get_mut(&held.row.customer_id)
            .filter(|c| c.credit_reserved_minor >= held.row.amount_minor)
            .ok_or_else(|| {
                DbErr::Custom(format!(
                    "customer {} holds less than order {order_id}",
                    held.row.customer_id
                ))
            })?;
        customer.credit_reserved_minor -= held.row.amount_minor;
        self.changed_customers.insert(held.row.customer_id);
        held.state = to;
        self.changed_reservations.insert(order_id);
        Ok(held.row.clone())
    }
}

fn stored_money(amount_minor: i64, currency: &str) -> Result<Money, DbErr> {
    Money::parse(amount_minor, currency).map_err(|e| DbErr::Custom(e.to_string()))
}

fn parse_state(raw: &str) -> Result<CreditState, DbErr> {
    raw.parse().map_err(DbErr::Custom)
}
