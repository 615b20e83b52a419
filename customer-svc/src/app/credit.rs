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
use event_runtime::{
    FinishedBy, HoldRecords, Holdings, Outbox, Participant, Phase, PhaseNames, Tracked,
};
use events::{
    CreditReleased, CreditReserved, CreditSettled, CustomerId, CustomerRejected,
    CustomerRejectionReason, Event, OrderId, OrderPlaced, ReleaseReason,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use service_kit::Clock;

use crate::domain::{CREDIT_PHASES, CreditReservation, Customer, CustomerStatus, HeldCredit};
use crate::error::CustomerError;
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
    type Table = credit::Table;
    type Holdings = CreditBatch;

    const FINISHED_BY: FinishedBy = FinishedBy::Delivery;
    const RECORD: &'static str = "credit reservation";
    const FINISH: &'static str = "settle";
    const RESOURCE: &'static str = "credit";
    const PHASES: PhaseNames = CREDIT_PHASES;

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        orders: &BTreeSet<OrderId>,
        placed: &[&OrderPlaced],
    ) -> Result<CreditBatch, DbErr> {
        let ids: Vec<OrderId> = orders.iter().copied().collect();
        let found = credit::find_many_for_update(txn, &ids).await?;
        let mut customer_ids: BTreeSet<CustomerId> = placed.iter().map(|p| p.customer_id).collect();
        customer_ids.extend(found.iter().map(|r| r.held.customer_id));
        let customer_ids: Vec<CustomerId> = customer_ids.into_iter().collect();
        let customers = customers::find_many_for_update(txn, &customer_ids).await?;
        Ok(CreditBatch {
            reservations: HoldRecords::loaded(found, self.clock.now()),
            customers: Tracked::loaded(customers.into_iter().map(|c| (c.id, c))),
        })
    }

    async fn save(&self, txn: &DatabaseTransaction, batch: CreditBatch) -> Result<(), DbErr> {
        batch.save(txn).await
    }
}

/// The credit reservations and customers a batch of order events
/// touches, and what it changed.
#[derive(Debug)]
pub struct CreditBatch {
    reservations: HoldRecords<HeldCredit>,
    customers: Tracked<CustomerId, Customer>,
}

impl Holdings for CreditBatch {
    type Held = HeldCredit;

    fn records(&self) -> &HoldRecords<HeldCredit> {
        &self.reservations
    }

    fn records_mut(&mut self) -> &mut HoldRecords<HeldCredit> {
        &mut self.reservations
    }

    /// Validates the ordering customer and holds the order's total.
    fn hold(&mut self, placed: &OrderPlaced) -> Result<Event, DbErr> {
        let total = &placed.total;
        let refusal = match self.customers.get(placed.customer_id) {
            None => Some((
                CustomerRejectionReason::UnknownCustomer,
                format!("customer {} does not exist", placed.customer_id),
            )),
            Some(customer) if customer.status != CustomerStatus::Active => Some((
                CustomerRejectionReason::CustomerSuspended,
                format!("customer {} is suspended", placed.customer_id),
            )),
            Some(customer) if customer.credit.limit.currency() != total.currency() => Some((
                CustomerRejectionReason::CreditLimitExceeded,
                format!(
                    "the order is in {}; the customer's credit line is in {}",
                    total.currency(),
                    customer.credit.limit.currency()
                ),
            )),
            Some(customer) if !customer.credit.fits(total) => Some((
                CustomerRejectionReason::CreditLimitExceeded,
                format!(
                    "order total {total} exceeds the available credit of {}",
                    customer.credit.available()
                ),
            )),
            Some(_) => None,
        };
        if let Some((reason, detail)) = refusal {
            self.reservations.decide(
                placed.order_id,
                Phase::Refused,
                Some(detail.clone()),
                HeldCredit {
                    customer_id: placed.customer_id,
                    amount: events::Money::zero(total.currency().clone()),
                },
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
            customer.credit.hold(total);
        }
        self.reservations.decide(
            placed.order_id,
            Phase::Held,
            None,
            HeldCredit {
                customer_id: placed.customer_id,
                amount: total.clone(),
            },
            Some(placed.deadline_at),
        );
        Ok(CreditReserved {
            order_id: placed.order_id,
            customer_id: placed.customer_id,
            amount: total.clone(),
        }
        .into())
    }

    fn release(
        &mut self,
        order_id: OrderId,
        reason: Option<ReleaseReason>,
    ) -> Result<Event, DbErr> {
        let held = self.unhold(order_id, Phase::Released)?;
        if let Some(reason) = reason
            && let Some(record) = self.reservations.get_mut(order_id)
        {
            record.reason = Some(reason.to_string());
        }
        Ok(CreditReleased {
            order_id,
            customer_id: held.customer_id,
            amount: held.amount,
            reason,
        }
        .into())
    }

    fn finish(&mut self, order_id: OrderId) -> Result<Event, DbErr> {
        let held = self.unhold(order_id, Phase::Finished)?;
        Ok(CreditSettled {
            order_id,
            customer_id: held.customer_id,
            amount: held.amount,
        }
        .into())
    }
}

impl CreditBatch {
    /// Writes what the batch changed: new reservations, changed
    /// reservations, changed customers; one statement each.
    async fn save(self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        let now = self.reservations.now();
        credit::save(conn, self.reservations.into_changes()).await?;
        let mut changed = self.customers.into_changes().changed;
        for (_, customer) in &mut changed {
            customer.updated_at = now;
        }
        customers::save_credit(conn, changed.iter().map(|(_, customer)| customer)).await
    }

    /// Gives a RESERVED order's amount back to its customer and moves the
    /// reservation to `to`; what it held.
    fn unhold(&mut self, order_id: OrderId, to: Phase) -> Result<HeldCredit, DbErr> {
        let record = self
            .reservations
            .get_mut(order_id)
            .ok_or_else(|| DbErr::RecordNotFound(format!("credit reservation of {order_id}")))?;
        let held = record.held.clone();
        let given_back = self
            .customers
            .get_mut(held.customer_id)
            .is_some_and(|customer| customer.credit.give_back(&held.amount));
        if !given_back {
            return Err(DbErr::Custom(format!(
                "customer {} holds less than order {order_id}",
                held.customer_id
            )));
        }
        record.phase = to;
        record.deadline_at = None;
        Ok(held)
    }
}

/// An order's credit reservation, for the admin API.
///
/// # Errors
/// The database error.
pub async fn reservation_of(
    conn: &impl ConnectionTrait,
    order_id: OrderId,
) -> Result<Option<CreditReservation>, CustomerError> {
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
) -> Result<Vec<CreditReservation>, CustomerError> {
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
