//! `order_events`: each order's timeline: every saga event it emitted or
//! received, in the order order-svc recorded them.

use events::{EventId, OrderId};
use sea_orm::entity::prelude::*;

/// One timeline entry.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_events")]
pub struct Model {
    /// Recording order.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The order.
    pub order_id: OrderId,
    /// The event's id; unique, so a redelivered event is recorded once.
    #[sea_orm(unique)]
    pub event_id: EventId,
    /// Its type.
    pub event_type: String,
    /// The service that produced it.
    pub producer: String,
    /// When it happened.
    pub occurred_at: DateTimeUtc,
    /// A reason or detail, when the event has one.
    pub reason: Option<String>,
}

/// No navigable relations are needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
