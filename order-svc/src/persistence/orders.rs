//! Repository functions for orders, their lines and timelines.

use chrono::{DateTime, Utc};
use events::plumbing::{
    find_many_for_update as find_many_locked, for_update, key_chunks, save_columns,
    statement_chunks,
};
use events::{Envelope, OrderId, OrderStatus};
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr,
    EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::{order, order_event, order_line};
use crate::domain::OrderFilter;

/// Inserts orders with their lines, one statement per table (per
/// [`statement_chunks`] of rows).
///
/// # Errors
/// The database error.
pub async fn insert_many(
    conn: &impl ConnectionTrait,
    models: Vec<order::Model>,
    lines: Vec<order_line::Model>,
) -> Result<(), DbErr> {
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
pub async fn find(conn: &impl ConnectionTrait, id: OrderId) -> Result<Option<order::Model>, DbErr> {
    order::Entity::find_by_id(id).one(conn).await
}

/// One order, locked until the transaction ends (PostgreSQL; SQLite
/// serializes writers anyway), so that its transitions are serial.
///
/// # Errors
/// The database error.
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    id: OrderId,
) -> Result<Option<order::Model>, DbErr> {
    for_update(order::Entity::find_by_id(id), conn)
        .one(conn)
        .await
}

/// An order's lines, in order.
///
/// # Errors
/// The database error.
pub async fn lines(
    conn: &impl ConnectionTrait,
    id: OrderId,
) -> Result<Vec<order_line::Model>, DbErr> {
    order_line::Entity::find()
        .filter(order_line::Column::OrderId.eq(id))
        .order_by_asc(order_line::Column::LineNo)
        .all(conn)
        .await
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
) -> Result<Vec<order::Model>, DbErr> {
    let mut condition = Condition::all();
    if let Some(customer) = filter.customer_id {
        condition = condition.add(order::Column::CustomerId.eq(customer));
    }
    if let Some(status) = filter.status {
        condition = condition.add(order::Column::Status.eq(status));
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
) -> Result<Vec<order::Model>, DbErr> {
    find_many_locked::<order::Entity, _>(conn, order::Column::Id, ids).await
}

/// Saves the changed fields of an order.
///
/// # Errors
/// The database error.
pub async fn save(
    conn: &impl ConnectionTrait,
    changes: order::ActiveModel,
) -> Result<order::Model, DbErr> {
    changes.update(conn).await
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

/// Saves the saga fields of existing orders, one statement for all.
///
/// # Errors
/// The database error.
pub async fn save_all(conn: &impl ConnectionTrait, models: Vec<order::Model>) -> Result<(), DbErr> {
    use order::Column as C;
    let columns = [
        C::Status,
        C::StockReserved,
        C::CreditReserved,
        C::Reason,
        C::Carrier,
        C::TrackingNumber,
        C::DecidedAt,
        C::UpdatedAt,
    ];
    save_columns::<order::ActiveModel>(conn, models, C::Id, columns).await
}

/// A timeline entry for `envelope`, keyed by the event's aggregate (its order).
pub fn timeline_entry(envelope: &Envelope, reason: Option<String>) -> order_event::ActiveModel {
    order_event::ActiveModel {
        order_id: Set(envelope.order_id()),
        event_id: Set(envelope.event_id),
        event_type: Set(envelope.event.event_type().to_owned()),
        producer: Set(envelope.producer.clone()),
        occurred_at: Set(envelope.occurred_at),
        reason: Set(reason),
        ..Default::default()
    }
}

/// Appends entries to their orders' timelines, in order, with one
/// statement; a redelivered event is recorded once.
///
/// # Errors
/// The database error.
pub async fn record_events(
    conn: &impl ConnectionTrait,
    entries: Vec<order_event::ActiveModel>,
) -> Result<(), DbErr> {
    for chunk in statement_chunks::<order_event::Entity, _>(entries) {
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
) -> Result<Vec<order_event::Model>, DbErr> {
    order_event::Entity::find()
        .filter(order_event::Column::OrderId.eq(id))
        .order_by_asc(order_event::Column::Id)
        .all(conn)
        .await
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
        .filter(order::Column::Status.eq(OrderStatus::Pending.as_str()))
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
        .filter(order::Column::Status.eq(OrderStatus::Pending.as_str()))
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
        .filter(order::Column::Status.eq(status))
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

/// Placement and decision times of the most recently decided orders.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Decided {
    /// The status it left PENDING for.
    pub status: OrderStatus,
    /// When it was placed.
    pub created_at: DateTime<Utc>,
    /// When it was decided.
    pub decided_at: DateTime<Utc>,
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
        .into_model::<Decided>()
        .all(conn)
        .await
}
