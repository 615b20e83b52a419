//! Credit reservations: customer-svc's resource in the order saga,
//! set-based. The protocol (which event holds, releases or settles, and
//! when it does nothing) is [`event_runtime::participant`], the same as
//! inventory's; this module supplies the credit.
//!
//! A batch of order events is applied in three steps, inside the
//! consumer's transaction:
//! 1. [`Credit::load`](Participant::load) reads, with one statement each,
//!    the credit reservations of the batch's orders (locked, by order id)
//!    and every customer they name (locked, by customer id): one global
//!    lock order.
//! 2. [`CreditBatch`] applies each event in partition order, in memory, and
//!    returns the reply.
//! 3. [`Credit::save`](Participant::save) writes the reservations and the
//!    customers with one statement per table and kind.
//!
//! **No credit reservation outlives its order.** A reservation records
//! its order's deadline until the order is confirmed; the participant
//! protocol's hold sweeper releases one still undecided
//! `OMS_HOLD_GRACE_SECS` after it (CreditReleased with the reason
//! `HOLD_EXPIRED`), found over an index on
//! `credit_reservations.deadline_at`.
//!
//! **Never over the limit.** Every customer a batch changes is locked from
//! step 1 to the commit (SQLite: the writer holds the whole database), and
//! an order's total is held only if the customer is active, in the order's
//! currency, and the total fits what the limit leaves, so concurrent orders
//! in any number of consumers cannot hold more than the limit together (a
//! `CHECK` constraint refuses it besides). A reservation another instance
//! decided meanwhile makes the batch fail and retry.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use event_runtime::participant::{self, ManualRelease};
use event_runtime::{FinishedBy, Holdings, Outbox, Participant, TOMBSTONE_REASON, Tracked};
use events::{
    CreditReleased, CreditReserved, CreditSettled, CustomerId, CustomerRejected,
    CustomerRejectionReason, Event, Money, OrderId, OrderPlaced, ReleaseReason,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use service_kit::Clock;

use crate::domain::{CreditState, CustomerStatus};
use crate::error::CustomerError;
use crate::persistence::entities::{credit_reservation, customer};
use crate::persistence::{credit, customers};

/// customer-svc's resource in the saga: credit, held per order.
#[derive(Debug, Clone, Default)]
pub struct Credit {
    /// The service's time: a reservation's `created_at` (its age in the
    /// hold listing) and `updated_at` are read from it, as is the expiry.
    clock: Clock,
}

impl Credit {
    /// Credit whose records are stamped by `clock`.
    pub fn new(clock: Clock) -> Self {
        Self { clock }
    }
}

impl Participant for Credit {
    type Holdings = CreditBatch;

    const FINISHED_BY: FinishedBy = FinishedBy::Delivery;
    const RECORD: &'static str = "credit reservation";
    const FINISH: &'static str = "settle";
    const RESOURCE: &'static str = "credit";

    async fn expired<C: ConnectionTrait>(
        &self,
        conn: &C,
        cutoff: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<OrderId>, DbErr> {
        credit::expired(conn, cutoff, limit).await
    }

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        orders: &BTreeSet<OrderId>,
        placed: &[&OrderPlaced],
    ) -> Result<CreditBatch, DbErr> {
        let ids: Vec<OrderId> = orders.iter().copied().collect();
        let found = credit::find_many_for_update(txn, &ids).await?;
        let mut customer_ids: BTreeSet<CustomerId> = placed.iter().map(|p| p.customer_id).collect();
        customer_ids.extend(found.iter().map(|r| r.customer_id));
        let customer_ids: Vec<CustomerId> = customer_ids.into_iter().collect();
        let customers = customers::find_many_for_update(txn, &customer_ids).await?;
        Ok(CreditBatch {
            reservations: Tracked::loaded(found.into_iter().map(|row| (row.order_id, row))),
            customers: Tracked::loaded(customers.into_iter().map(|c| (c.id, c))),
            now: self.clock.now(),
        })
    }

    async fn save(&self, txn: &DatabaseTransaction, batch: CreditBatch) -> Result<(), DbErr> {
        batch.save(txn).await
    }
}

/// The rows a batch of order events touches, and what it changed.
#[derive(Debug, Default)]
pub struct CreditBatch {
    reservations: Tracked<OrderId, credit_reservation::Model>,
    customers: Tracked<CustomerId, customer::Model>,
    /// The batch's time, on the service's clock.
    now: DateTime<Utc>,
}

impl Holdings for CreditBatch {
    type State = CreditState;

    fn state(&self, order_id: OrderId) -> Option<CreditState> {
        self.reservations.get(order_id).map(|row| row.state)
    }

    /// Validates the ordering customer and holds the order's total.
    fn hold(&mut self, placed: &OrderPlaced) -> Result<Event, DbErr> {
        let amount = placed.total.amount_minor();
        let currency = placed.total.currency().as_str();
        let refusal = match self.customers.get(placed.customer_id) {
            None => Some((
                CustomerRejectionReason::UnknownCustomer,
                format!("customer {} does not exist", placed.customer_id),
            )),
            Some(customer) if customer.status != CustomerStatus::Active => Some((
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
                None,
            );
            return Ok(CustomerRejected {
                order_id: placed.order_id,
                customer_id: placed.customer_id,
                reason,
                detail,
            }
            .into());
        }
        if let Some(customer) = self.customers.get_mut(placed.customer_id) {
            customer.credit_reserved_minor += amount;
        }
        self.record(
            placed.order_id,
            placed.customer_id,
            amount,
            currency,
            CreditState::Reserved,
            None,
            Some(placed.deadline_at),
        );
        Ok(CreditReserved {
            order_id: placed.order_id,
            customer_id: placed.customer_id,
            amount: placed.total.clone(),
        }
        .into())
    }

    fn tombstone(&mut self, order_id: OrderId) {
        self.record(
            order_id,
            CustomerId::nil(),
            0,
            "XXX",
            CreditState::Released,
            Some(TOMBSTONE_REASON.to_owned()),
            None,
        );
    }

    fn deadline(&self, order_id: OrderId) -> Option<DateTime<Utc>> {
        self.reservations
            .get(order_id)
            .and_then(|row| row.deadline_at)
    }

    fn confirm(&mut self, order_id: OrderId) {
        if let Some(row) = self.reservations.get_mut(order_id)
            && row.deadline_at.is_some()
        {
            row.deadline_at = None;
        }
    }

    fn release(
        &mut self,
        order_id: OrderId,
        reason: Option<ReleaseReason>,
    ) -> Result<Event, DbErr> {
        let mut row = self.unhold(order_id, CreditState::Released)?;
        if let Some(reason) = reason
            && let Some(held) = self.reservations.get_mut(order_id)
        {
            held.reason = Some(reason.to_string());
            row.reason = held.reason.clone();
        }
        Ok(CreditReleased {
            order_id,
            customer_id: row.customer_id,
            amount: stored_money(row.amount_minor, &row.currency)?,
            reason,
        }
        .into())
    }

    fn finish(&mut self, order_id: OrderId) -> Result<Event, DbErr> {
        let row = self.unhold(order_id, CreditState::Settled)?;
        Ok(CreditSettled {
            order_id,
            customer_id: row.customer_id,
            amount: stored_money(row.amount_minor, &row.currency)?,
        }
        .into())
    }
}

impl CreditBatch {
    /// Writes what the batch changed: new reservations, changed
    /// reservations, changed customers; one statement each.
    async fn save(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let now = self.now;
        let touched = |(_, mut row): (OrderId, credit_reservation::Model)| {
            row.updated_at = now;
            row
        };
        let reservations = self.reservations.into_changes();
        credit::insert_new(conn, reservations.added.into_iter().map(touched).collect()).await?;
        credit::update_states(
            conn,
            reservations.changed.into_iter().map(touched).collect(),
        )
        .await?;
        let changed: Vec<customer::Model> = self
            .customers
            .into_changes()
            .changed
            .into_iter()
            .map(|(_, mut customer)| {
                customer.updated_at = now;
                customer
            })
            .collect();
        customers::save_credit(conn, changed).await
    }

    #[expect(clippy::too_many_arguments, reason = "one per column of a new row")]
    fn record(
        &mut self,
        order_id: OrderId,
        customer_id: CustomerId,
        amount_minor: i64,
        currency: &str,
        state: CreditState,
        reason: Option<String>,
        deadline_at: Option<DateTime<Utc>>,
    ) {
        let now = self.now;
        let row = credit_reservation::Model {
            order_id,
            customer_id,
            amount_minor,
            currency: currency.to_owned(),
            state,
            reason,
            deadline_at,
            created_at: now,
            updated_at: now,
        };
        self.reservations.add(order_id, row);
    }

    /// Gives a RESERVED order's amount back to its customer and moves the
    /// reservation to `to`.
    fn unhold(
        &mut self,
        order_id: OrderId,
        to: CreditState,
    ) -> Result<credit_reservation::Model, DbErr> {
        let held = self
            .reservations
            .get_mut(order_id)
            .ok_or_else(|| DbErr::RecordNotFound(format!("credit reservation of {order_id}")))?;
        let customer = self
            .customers
            .get_mut(held.customer_id)
            .filter(|c| c.credit_reserved_minor >= held.amount_minor)
            .ok_or_else(|| {
                DbErr::Custom(format!(
                    "customer {} holds less than order {order_id}",
                    held.customer_id
                ))
            })?;
        customer.credit_reserved_minor -= held.amount_minor;
        held.state = to;
        held.deadline_at = None;
        Ok(held.clone())
    }
}

/// An order's credit reservation, for the admin API.
///
/// # Errors
/// The database error.
pub async fn reservation_of(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<Option<credit_reservation::Model>, CustomerError> {
    Ok(credit::find(conn, order_id).await?)
}

/// A page of the credit reservations that hold (made at or before
/// `made_before` when given; every hold otherwise), oldest first (`limit`
/// rows after the reservation of the order `cursor`).
///
/// # Errors
/// The database error.
pub async fn held_reservations(
    conn: &impl ConnectionTrait,
    made_before: Option<DateTime<Utc>>,
    cursor: Option<OrderId>,
    limit: u64,
) -> Result<Vec<credit_reservation::Model>, CustomerError> {
    let after = match cursor {
        Some(order_id) => credit::find(conn, order_id)
            .await?
            .map(|r| (r.created_at, r.order_id)),
        None => None,
    };
    Ok(credit::held_since(conn, made_before, after, limit).await?)
}

/// Releases an order's credit reservation on an operator's word:
/// CreditReleased with the reason `RELEASED_BY_OPERATOR`, in one
/// transaction with the amount going back to the customer.
///
/// # Errors
/// The database error.
pub async fn release_by_hand(
    db: &DatabaseConnection,
    outbox: &Outbox,
    clock: &Clock,
    order_id: OrderId,
) -> Result<ManualRelease, CustomerError> {
    let credit = Credit::new(clock.clone());
    Ok(participant::release_by_hand(&credit, db, outbox, order_id).await?)
}

fn stored_money(amount_minor: i64, currency: &str) -> Result<Money, DbErr> {
    Money::parse(amount_minor, currency).map_err(|e| DbErr::Custom(e.to_string()))
}
