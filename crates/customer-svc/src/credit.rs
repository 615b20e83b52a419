//! Credit reservations: customer-svc's part of the order saga.
//!
//! Each function runs inside the consumer's transaction and returns the
//! reply to emit, if any; the rules are in [`crate::domain::credit`].
//!
//! **Never over the limit.** The amount is held with one conditional
//! `UPDATE … SET credit_reserved = credit_reserved + a WHERE status = 'ACTIVE'
//! AND currency = c AND credit_reserved + a <= credit_limit`, evaluated under
//! the row lock: concurrent orders in any number of consumers cannot hold
//! more than the limit together (a `CHECK` constraint refuses it besides).

use events::{
    CreditReleased, CreditReserved, CreditSettled, CustomerRejected, CustomerRejectionReason,
    Money, OrderPlaced,
};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::domain::CreditState;
use crate::domain::credit::{ReleaseDecision, on_release, settles};
use crate::persistence::credit::{self, Decision};
use crate::persistence::customers;
use crate::persistence::entities::credit_reservation;

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

/// Validates the ordering customer and holds the order's total.
///
/// # Errors
/// Database errors (the caller retries the batch).
pub async fn reserve_credit(
    txn: &DatabaseTransaction,
    placed: &OrderPlaced,
) -> Result<ReserveOutcome, DbErr> {
    let amount = placed.total.amount_minor;
    let currency = placed.total.currency.as_str();
    let decision = Decision {
        order_id: placed.order_id,
        customer_id: placed.customer_id,
        amount_minor: amount,
        currency,
        state: CreditState::Reserved,
        reason: None,
    };
    // The decision row first: a concurrent duplicate waits on it, then finds it.
    if !credit::insert(txn, decision).await? {
        return already_decided(txn, placed.order_id).await;
    }
    if customers::reserve_credit(txn, placed.customer_id, amount, currency).await? {
        return Ok(ReserveOutcome::Reserved(CreditReserved {
            order_id: placed.order_id,
            customer_id: placed.customer_id,
            amount: placed.total.clone(),
        }));
    }
    let (reason, detail) = match customers::find(txn, placed.customer_id).await? {
        None => (
            CustomerRejectionReason::UnknownCustomer,
            format!("customer {} does not exist", placed.customer_id),
        ),
        Some(customer) if customer.status != "ACTIVE" => (
            CustomerRejectionReason::CustomerSuspended,
            format!("customer {} is suspended", placed.customer_id),
        ),
        Some(customer) if customer.currency != currency => (
            CustomerRejectionReason::CreditLimitExceeded,
            format!(
                "the order is in {currency}; the customer's credit line is in {}",
                customer.currency
            ),
        ),
        Some(customer) => (
            CustomerRejectionReason::CreditLimitExceeded,
            format!(
                "order total {} exceeds the available credit of {} {currency}",
                placed.total,
                customer.credit_limit_minor - customer.credit_reserved_minor
            ),
        ),
    };
    credit_reservation::Entity::update_many()
        .col_expr(
            credit_reservation::Column::State,
            Expr::value(CreditState::Rejected.as_str()),
        )
        .col_expr(credit_reservation::Column::AmountMinor, Expr::value(0i64))
        .col_expr(
            credit_reservation::Column::Reason,
            Expr::value(detail.clone()),
        )
        .filter(credit_reservation::Column::OrderId.eq(placed.order_id))
        .exec(txn)
        .await?;
    Ok(ReserveOutcome::Rejected(CustomerRejected {
        order_id: placed.order_id,
        customer_id: placed.customer_id,
        reason,
        detail,
    }))
}

async fn already_decided(
    txn: &DatabaseTransaction,
    order_id: Uuid,
) -> Result<ReserveOutcome, DbErr> {
    let existing = credit::find(txn, order_id).await?.ok_or_else(|| {
        DbErr::RecordNotFound("a credit decision that blocked ours has vanished".into())
    })?;
    Ok(ReserveOutcome::AlreadyDecided(parse_state(
        &existing.state,
    )?))
}

/// Releases what `order_id` holds (OrderRejected, OrderCancelled). Twice,
/// or for an order that never reserved, it returns `None`; released before
/// it was placed, the order gets a RELEASED record so that its late
/// OrderPlaced holds nothing.
///
/// # Errors
/// Database errors.
pub async fn release_credit(
    txn: &DatabaseTransaction,
    order_id: Uuid,
) -> Result<Option<CreditReleased>, DbErr> {
    let existing = credit::find(txn, order_id).await?;
    let state = existing
        .as_ref()
        .map(|r| parse_state(&r.state))
        .transpose()?;
    match on_release(state) {
        ReleaseDecision::Nothing => Ok(None),
        ReleaseDecision::Tombstone => {
            let tombstone = Decision {
                order_id,
                customer_id: Uuid::nil(),
                amount_minor: 0,
                currency: "XXX",
                state: CreditState::Released,
                reason: Some("released before reserved"),
            };
            if credit::insert(txn, tombstone).await? {
                Ok(None)
            } else {
                Box::pin(release_credit(txn, order_id)).await
            }
        }
        ReleaseDecision::Release => {
            let reservation = existing.ok_or(DbErr::RecordNotFound("reservation".into()))?;
            if !credit::transition(txn, order_id, CreditState::Reserved, CreditState::Released)
                .await?
            {
                return Ok(None);
            }
            customers::unhold_credit(txn, reservation.customer_id, reservation.amount_minor)
                .await?;
            Ok(Some(CreditReleased {
                order_id,
                customer_id: reservation.customer_id,
                amount: stored_money(reservation.amount_minor, &reservation.currency)?,
            }))
        }
    }
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

/// Settles an order's credit (OrderDelivered).
///
/// # Errors
/// Database errors.
pub async fn settle_credit(
    txn: &DatabaseTransaction,
    order_id: Uuid,
) -> Result<SettleOutcome, DbErr> {
    let existing = credit::find(txn, order_id).await?;
    let state = existing
        .as_ref()
        .map(|r| parse_state(&r.state))
        .transpose()?;
    if state == Some(CreditState::Settled) {
        return Ok(SettleOutcome::AlreadySettled);
    }
    let Some(reservation) = existing.filter(|_| settles(state)) else {
        let why = state.map_or("has no credit reservation".to_owned(), |s| {
            format!("has a {s} credit reservation")
        });
        return Ok(SettleOutcome::Refused(format!(
            "order {order_id} {why}; nothing to settle"
        )));
    };
    if !credit::transition(txn, order_id, CreditState::Reserved, CreditState::Settled).await? {
        return Ok(SettleOutcome::AlreadySettled);
    }
    customers::unhold_credit(txn, reservation.customer_id, reservation.amount_minor).await?;
    Ok(SettleOutcome::Settled(CreditSettled {
        order_id,
        customer_id: reservation.customer_id,
        amount: stored_money(reservation.amount_minor, &reservation.currency)?,
    }))
}

fn stored_money(amount_minor: i64, currency: &str) -> Result<Money, DbErr> {
    Money::parse(amount_minor, currency).map_err(|e| DbErr::Custom(e.to_string()))
}

fn parse_state(raw: &str) -> Result<CreditState, DbErr> {
    raw.parse().map_err(DbErr::Custom)
}
