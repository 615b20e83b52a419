//! Repository functions for orders, their lines and timelines. The rows
//! stay here: each function takes and returns the domain's [`Order`],
//! [`OrderLine`] and [`TimelineEntry`], converted in one place
//! (`order_of`, `row_of`, `line_of`, `line_row`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use event_runtime::{
    find_many_for_update as find_many_locked, for_update, key_chunks, save_columns,
    statement_chunks,
};
use events::{Money, OrderId, OrderStatus, Quantity};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::order::StoredStatus;
use super::entities::{order, order_event, order_line};
use crate::domain::{
    Carrier, Order, OrderFilter, OrderLine, OrderWithLines, Reason, TimelineEntry, TrackingNumber,
};

/// A stored value that breaks its type's rule: the row was written by
/// something other than this service, or by hand.
fn corrupt(what: &str, id: OrderId, error: impl std::fmt::Display) -> DbErr {
    DbErr::Type(format!("order {id}: the stored {what} is invalid: {error}"))
}

/// The order a row holds.
///
/// # Errors
/// [`DbErr::Type`] when a stored value breaks its type's rule.
fn order_of(row: order::Model) -> Result<Order, DbErr> {
    let id = row.id;
    let text = |what: &'static str, value: Option<String>| {
        value.filter(|v| !v.is_empty()).map(|v| (what, v))
    };
    Ok(Order {
        id,
        customer_id: row.customer_id,
        status: row.status.into(),
        total: Money::parse(row.total_minor, &row.currency).map_err(|e| corrupt("total", id, e))?,
        shipping_address: row
            .shipping_address
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt("shipping address", id, e))?,
        carrier: text("carrier", row.carrier)
            .map(|(what, v)| Carrier::parse(what, &v).map_err(|e| corrupt(what, id, e)))
            .transpose()?,
        tracking_number: text("tracking number", row.tracking_number)
            .map(|(what, v)| TrackingNumber::parse(what, &v).map_err(|e| corrupt(what, id, e)))
            .transpose()?,
        stock_reserved: row.stock_reserved,
        credit_reserved: row.credit_reserved,
        deadline_at: row.deadline_at,
        reason: row.reason.as_deref().map(Reason::lenient),
        decided_at: row.decided_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The row that holds `order`.
fn row_of(order: &Order) -> order::Model {
    order::Model {
        id: order.id,
        customer_id: order.customer_id,
        status: order.status.into(),
        total_minor: order.total.amount_minor(),
        currency: order.total.currency().as_str().to_owned(),
        shipping_address: order
            .shipping_address
            .as_ref()
            .map(|a| serde_json::to_string(a).expect("an address serializes")),
        carrier: order.carrier.as_ref().map(|c| c.as_str().to_owned()),
        tracking_number: order
            .tracking_number
            .as_ref()
            .map(|t| t.as_str().to_owned()),
        stock_reserved: order.stock_reserved,
        credit_reserved: order.credit_reserved,
        deadline_at: order.deadline_at,
        reason: order.reason.as_ref().map(|r| r.as_str().to_owned()),
        decided_at: order.decided_at,
        created_at: order.created_at,
        updated_at: order.updated_at,
    }
}

/// The line a row holds, in `order`'s currency.
///
/// # Errors
/// [`DbErr::Type`] when a stored value breaks its type's rule.
fn line_of(row: order_line::Model, order: &Order) -> Result<OrderLine, DbErr> {
    let id = row.order_id;
    let quantity = u32::try_from(row.quantity)
        .ok()
        .and_then(|units| Quantity::new(units).ok())
        .ok_or_else(|| corrupt("quantity", id, row.quantity))?;
    let unit_price = Money::new(row.unit_price_minor, order.total.currency().clone())
        .map_err(|e| corrupt("unit price", id, e))?;
    OrderLine::priced(row.product_id, quantity, unit_price).map_err(|e| corrupt("line", id, e))
}

/// The row that holds line `line_no` of order `order_id`.
fn line_row(order_id: OrderId, line_no: usize, line: &OrderLine) -> order_line::Model {
    order_line::Model {
        order_id,
        line_no: i32::try_from(line_no).unwrap_or(i32::MAX),
        product_id: line.product_id,
        quantity: i64::from(line.quantity.get()),
        unit_price_minor: line.unit_price.amount_minor(),
    }
}

/// The rows of `orders`.
fn orders_of(rows: Vec<order::Model>) -> Result<Vec<Order>, DbErr> {
    rows.into_iter().map(order_of).collect()
}

/// Inserts orders with their lines, one statement per table (per
/// [`statement_chunks`] of rows).
///
/// # Errors
/// The database error.
pub async fn insert_many(
    conn: &impl ConnectionTrait,
    placed: &[&OrderWithLines],
) -> Result<(), DbErr> {
    let models: Vec<order::Model> = placed.iter().map(|p| row_of(&p.order)).collect();
    let lines: Vec<order_line::Model> = placed
        .iter()
        .flat_map(|p| {
            p.lines
                .iter()
                .enumerate()
                .map(|(line_no, line)| line_row(p.order.id, line_no, line))
        })
        .collect();
    for chunk in statement_chunks::<order::Entity, _>(models) {
        order::Entity::insert_many(chunk.into_iter().map(order::ActiveModel::from))
            .exec_without_returning(conn)
            .await?;
    }
    for chunk in statement_chunks::<order_line::Entity, _>(lines) {
        order_line::Entity::insert_many(chunk.into_iter().map(order_line::ActiveModel::from))
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// One order.
///
/// # Errors
/// The database error.
pub async fn find(conn: &impl ConnectionTrait, id: OrderId) -> Result<Option<Order>, DbErr> {
    order::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(order_of)
        .transpose()
}

/// One order, locked until the transaction ends (PostgreSQL; SQLite
/// serializes writers anyway), so that its transitions are serial.
///
/// # Errors
/// The database error.
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    id: OrderId,
) -> Result<Option<Order>, DbErr> {
    for_update(order::Entity::find_by_id(id), conn)
        .one(conn)
        .await?
        .map(order_of)
        .transpose()
}

/// An order with its lines, in order.
///
/// # Errors
/// The database error.
pub async fn with_lines(
    conn: &impl ConnectionTrait,
    order: Order,
) -> Result<OrderWithLines, DbErr> {
    let mut found = all_with_lines(conn, vec![order]).await?;
    found
        .pop()
        .ok_or_else(|| DbErr::RecordNotFound("an order read a moment ago".into()))
}

/// Orders with their lines, in the given order: one statement for the
/// lines of all of them (per [`key_chunks`] of orders).
///
/// # Errors
/// The database error.
pub async fn all_with_lines(
    conn: &impl ConnectionTrait,
    orders: Vec<Order>,
) -> Result<Vec<OrderWithLines>, DbErr> {
    let ids: Vec<OrderId> = orders.iter().map(|o| o.id).collect();
    let mut rows: HashMap<OrderId, Vec<order_line::Model>> = HashMap::new();
    for chunk in key_chunks(&ids) {
        let found = order_line::Entity::find()
            .filter(order_line::Column::OrderId.is_in(chunk.iter().copied()))
            .order_by_asc(order_line::Column::OrderId)
            .order_by_asc(order_line::Column::LineNo)
            .all(conn)
            .await?;
        for row in found {
            rows.entry(row.order_id).or_default().push(row);
        }
    }
    orders
        .into_iter()
        .map(|order| {
            let lines = rows
                .remove(&order.id)
                .unwrap_or_default()
                .into_iter()
                .map(|row| line_of(row, &order))
                .collect::<Result<_, _>>()?;
            Ok(OrderWithLines { order, lines })
        })
        .collect()
}

/// Up to `limit` orders after `after`, by id (that is, by placement time).
///
/// # Errors
/// The database error.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &OrderFilter,
    after: Option<OrderId>,
    limit: u64,
) -> Result<Vec<Order>, DbErr> {
    let mut condition = Condition::all();
    if let Some(customer) = filter.customer_id {
        condition = condition.add(order::Column::CustomerId.eq(customer));
    }
    if let Some(status) = filter.status {
        condition = condition.add(order::Column::Status.eq(StoredStatus::from(status)));
    }
    if let Some(after) = after {
        condition = condition.add(order::Column::Id.gt(after));
    }
    order::Entity::find()
        .filter(condition)
        .order_by_asc(order::Column::Id)
        .limit(limit)
        .all(conn)
        .await
        .and_then(orders_of)
}

/// Orders among `ids`, by id, locked until the transaction ends
/// (PostgreSQL; SQLite serializes writers anyway): one statement, in the
/// global lock order.
///
/// # Errors
/// The database error.
pub async fn find_many_for_update(
    conn: &impl ConnectionTrait,
    ids: &[OrderId],
) -> Result<Vec<Order>, DbErr> {
    find_many_locked::<order::Entity, _>(conn, order::Column::Id, ids)
        .await
        .and_then(orders_of)
}

/// Which of `ids` are known orders.
///
/// # Errors
/// The database error.
pub async fn existing(
    conn: &impl ConnectionTrait,
    ids: &[OrderId],
) -> Result<std::collections::BTreeSet<OrderId>, DbErr> {
    let mut found = std::collections::BTreeSet::new();
    for chunk in key_chunks(ids) {
        let known: Vec<OrderId> = order::Entity::find()
            .select_only()
            .column(order::Column::Id)
            .filter(order::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(conn)
            .await?;
        found.extend(known);
    }
    Ok(found)
}

/// Saves what may change of existing orders (their saga state, reason
/// and shipping details), one statement for all.
///
/// # Errors
/// The database error.
pub async fn save_all<'a>(
    conn: &impl ConnectionTrait,
    orders: impl IntoIterator<Item = &'a Order>,
) -> Result<(), DbErr> {
    use order::Column as C;
    let models: Vec<order::Model> = orders.into_iter().map(row_of).collect();
    let columns = [
        C::Status,
        C::StockReserved,
        C::CreditReserved,
        C::Reason,
        C::Carrier,
        C::TrackingNumber,
        C::ShippingAddress,
        C::DecidedAt,
        C::UpdatedAt,
    ];
    save_columns::<order::ActiveModel>(conn, models, C::Id, columns).await
}

/// Appends entries to their orders' timelines, in order, with one
/// statement; a redelivered event is recorded once.
///
/// # Errors
/// The database error.
pub async fn record_events(
    conn: &impl ConnectionTrait,
    entries: Vec<TimelineEntry>,
) -> Result<(), DbErr> {
    let rows = entries.into_iter().map(|entry| order_event::ActiveModel {
        order_id: Set(entry.order_id),
        event_id: Set(entry.event_id),
        event_type: Set(entry.event_type),
        producer: Set(entry.producer),
        occurred_at: Set(entry.occurred_at),
        reason: Set(entry.reason),
        ..Default::default()
    });
    for chunk in statement_chunks::<order_event::Entity, _>(rows.collect()) {
        order_event::Entity::insert_many(chunk)
            .on_conflict_do_nothing_on([order_event::Column::EventId])
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// An order's timeline, in recording order.
///
/// # Errors
/// The database error.
pub async fn timeline(
    conn: &impl ConnectionTrait,
    id: OrderId,
) -> Result<Vec<TimelineEntry>, DbErr> {
    let rows = order_event::Entity::find()
        .filter(order_event::Column::OrderId.eq(id))
        .order_by_asc(order_event::Column::Id)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| TimelineEntry {
            order_id: row.order_id,
            event_id: row.event_id,
            event_type: row.event_type,
            producer: row.producer,
            occurred_at: row.occurred_at,
            reason: row.reason,
        })
        .collect())
}

/// PENDING orders whose deadline passed, oldest deadline first. On
/// PostgreSQL the rows are locked and rows locked by another instance are
/// skipped, so instances share the work without waiting on each other.
///
/// # Errors
/// The database error.
pub async fn overdue(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<OrderId>, DbErr> {
    let mut query = order::Entity::find()
        .select_only()
        .column(order::Column::Id)
        .filter(order::Column::Status.eq(StoredStatus::Pending))
        .filter(order::Column::DeadlineAt.lte(now))
        .order_by_asc(order::Column::DeadlineAt)
        .limit(limit);
    if conn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    query.into_tuple().all(conn).await
}

/// The earliest deadline of a PENDING order.
///
/// # Errors
/// The database error.
pub async fn next_deadline(conn: &impl ConnectionTrait) -> Result<Option<DateTime<Utc>>, DbErr> {
    order::Entity::find()
        .select_only()
        .column(order::Column::DeadlineAt)
        .filter(order::Column::Status.eq(StoredStatus::Pending))
        .order_by_asc(order::Column::DeadlineAt)
        .into_tuple()
        .one(conn)
        .await
}

/// How many orders are in `status`.
///
/// # Errors
/// The database error.
pub async fn count_in(conn: &impl ConnectionTrait, status: OrderStatus) -> Result<u64, DbErr> {
    order::Entity::find()
        .filter(order::Column::Status.eq(StoredStatus::from(status)))
        .count(conn)
        .await
}

/// How many orders were decided at or after `since`.
///
/// # Errors
/// The database error.
pub async fn count_decided_since(
    conn: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<u64, DbErr> {
    order::Entity::find()
        .filter(order::Column::DecidedAt.gte(since))
        .count(conn)
        .await
}

/// Placement and decision times of a recently decided order.
#[derive(Debug, Clone)]
pub struct Decided {
    /// Its status now.
    pub status: OrderStatus,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
}

#[derive(FromQueryResult)]
struct DecidedRow {
    status: StoredStatus,
    created_at: DateTime<Utc>,
    decided_at: DateTime<Utc>,
}

/// The `limit` most recent decisions.
///
/// # Errors
/// The database error.
pub async fn recent_decisions(
    conn: &impl ConnectionTrait,
    limit: u64,
) -> Result<Vec<Decided>, DbErr> {
    order::Entity::find()
        .select_only()
        .column(order::Column::Status)
        .column(order::Column::CreatedAt)
        .column(order::Column::DecidedAt)
        .filter(order::Column::DecidedAt.is_not_null())
        .order_by_desc(order::Column::DecidedAt)
        .limit(limit)
        .into_model::<DecidedRow>()
        .all(conn)
        .await
        .map(|rows| {
            rows.into_iter()
                .map(|row| Decided {
                    status: row.status.into(),
                    created_at: row.created_at,
                    decided_at: row.decided_at,
                })
                .collect()
        })
}
