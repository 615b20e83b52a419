//! Order commands and queries behind the HTTP API.

use events::{Actor, ActorKind, CustomerId, OrderId, OrderStatus, ProductId};
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use event_runtime::{
    GroupCommit, GroupCommitSettings, GroupWriter, Outbox, PendingEvent, begin_write,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use service_kit::{Caller, Clock};

use crate::app::admission::{Admission, Ticket};
use crate::app::saga;
use crate::domain::saga::fulfilment_moves;
use crate::domain::{
    Applied, Carrier, IdempotencyKey, NewOrder, NotAllowed, Order, OrderFilter, OrderWithLines,
    Reason, SagaInput, ShippingChange, TimelineEntry, TrackingNumber,
};
use crate::error::OrderError;
use crate::persistence::{catalog_copy, idempotency, orders};

/// How orders are placed.
#[derive(Debug, Clone)]
pub struct OrderPolicy {
    /// How long the saga waits for both participants.
    pub saga_deadline: Duration,
    /// How long an Idempotency-Key is remembered.
    pub idempotency_ttl: Duration,
}

/// A retry-safe request: the caller's key and the request, canonical.
#[derive(Debug, Clone)]
pub struct IdempotentRequest {
    /// The `Idempotency-Key` header.
    pub key: IdempotencyKey,
    /// The body as canonical JSON.
    pub request: String,
}

/// What placing an order answered.
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one value per request, moved once"
)]
pub enum Placed {
    /// A new order.
    New(OrderWithLines),
    /// A retry of an earlier request: the answer it got, as JSON.
    Replayed(String),
}

/// A priced order ready to be written: the order, its lines and its
/// OrderPlaced.
#[derive(Debug, Clone)]
pub struct Placement {
    order: OrderWithLines,
    placed: PendingEvent,
}

/// Writes placements: the orders, their lines, the OrderPlaced events and
/// their timeline entries, one statement per table for a whole group.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlacementWriter;

impl GroupWriter for PlacementWriter {
    type Item = Placement;

    async fn write(&self, txn: &DatabaseTransaction, items: &[Placement]) -> Result<(), DbErr> {
        orders::insert_many(txn, &items.iter().map(|p| &p.order).collect::<Vec<_>>()).await?;
        Outbox::enqueue_many(txn, items.iter().map(|p| p.placed.clone()).collect()).await?;
        orders::record_events(
            txn,
            items
                .iter()
                .map(|p| TimelineEntry::of(&p.placed.envelope))
                .collect(),
        )
        .await
    }
}

/// Places orders. Orders without an idempotency key are group-committed:
/// concurrent requests share one transaction (see
/// [`event_runtime::group_commit`]), and each still gets its own answer.
#[derive(Debug, Clone)]
pub struct OrderDesk {
    db: DatabaseConnection,
    outbox: Outbox,
    policy: OrderPolicy,
    clock: Clock,
    placements: GroupCommit<Placement>,
    admission: Admission,
}

impl OrderDesk {
    /// A desk writing through `db`, reading the time from `clock`; starts
    /// its group-commit writer.
    pub fn start(
        db: DatabaseConnection,
        outbox: Outbox,
        policy: OrderPolicy,
        clock: Clock,
        settings: GroupCommitSettings,
        admission: Admission,
    ) -> Self {
        let placements = GroupCommit::start(db.clone(), outbox.clone(), PlacementWriter, settings);
        Self {
            db,
            outbox,
            policy,
            clock,
            placements,
            admission,
        }
    }

    /// Takes a place in the saga's backlog for an order about to be placed.
    ///
    /// # Errors
    /// [`OrderError::Overloaded`] when the backlog is at its bound
    /// ([`crate::app::admission`]).
    pub fn admit(&self) -> Result<Ticket, OrderError> {
        self.admission.admit()
    }

    /// Places an order: prices from the catalog copy, PENDING with its saga
    /// deadline, and OrderPlaced in the outbox, all in one transaction. With
    /// an idempotency key, a retry gets the first answer and creates nothing.
    ///
    /// The caller must be allowed to order for `new.customer_id`
    /// ([`may_act_for`]); the handler checks that first.
    ///
    /// # Errors
    /// [`OrderError::UnknownProduct`], [`OrderError::InactiveProduct`],
    /// [`OrderError::MixedCurrencies`], [`OrderError::IdempotencyKeyReused`],
    /// invalid totals, or a database error. The HTTP edge asks
    /// [`OrderDesk::admit`] for the `ticket` first.
    pub async fn place(
        &self,
        caller: &Caller,
        new: NewOrder,
        idempotent: Option<IdempotentRequest>,
        render: impl FnOnce(&OrderWithLines) -> Result<String, OrderError>,
        ticket: Ticket,
    ) -> Result<Placed, OrderError> {
        let now = self.clock.now().trunc_subsecs(6);
        let order_id = OrderId::generate();
        let Some(request) = idempotent else {
            let placement = self.price(&self.db, new, order_id, now).await?;
            let created = placement.order.clone();
            self.placements.submit(placement).await?;
            ticket.placed();
            return Ok(Placed::New(created));
        };
        let txn = begin_write(&self.db).await?;
        let key = request.key.as_str();
        idempotency::delete_if_expired(&txn, caller.id, key, now).await?;
        let expires_at = now
            + chrono::Duration::from_std(self.policy.idempotency_ttl)
                .unwrap_or(chrono::Duration::days(1));
        if !idempotency::claim(&txn, caller.id, key, &request.request, order_id, expires_at).await?
        {
            let first = idempotency::find(&txn, caller.id, key)
                .await?
                .ok_or_else(|| {
                    DbErr::RecordNotFound(
                        "an idempotency key that blocked ours has vanished".into(),
                    )
                })?;
            txn.rollback().await?;
            return if first.request == request.request {
                Ok(Placed::Replayed(first.response))
            } else {
                Err(OrderError::IdempotencyKeyReused)
            };
        }
        let placement = self.price(&*txn, new, order_id, now).await?;
        PlacementWriter
            .write(&txn, std::slice::from_ref(&placement))
            .await?;
        let created = placement.order;
        idempotency::answer(&txn, caller.id, key, render(&created)?).await?;
        self.outbox.commit(txn).await?;
        ticket.placed();
        Ok(Placed::New(created))
    }

    /// Cancels an order (its owner or an admin) while PENDING or CONFIRMED.
    ///
    /// # Errors
    /// [`OrderError::OrderNotFound`], [`OrderError::InvalidTransition`] (409), or a database error.
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: OrderId,
        reason: Option<Reason>,
    ) -> Result<OrderWithLines, OrderError> {
        visible_order(&self.db, caller, id).await?;
        let by = Actor {
            kind: if caller.is_admin() {
                ActorKind::Admin
            } else {
                ActorKind::Customer
            },
            id: Some(caller.id),
        };
        self.transition(id, SagaInput::Cancel { by, reason }, OrderStatus::Cancelled)
            .await
    }

    /// Moves a CONFIRMED order to SHIPPED, or a SHIPPED one to DELIVERED (admin).
    ///
    /// # Errors
    /// [`OrderError::InvalidTransition`] with the allowed transitions, or a database error.
    pub async fn fulfil(
        &self,
        id: OrderId,
        step: FulfilmentStep,
    ) -> Result<OrderWithLines, OrderError> {
        let (input, target) = match step {
            FulfilmentStep::Ship {
                carrier,
                tracking_number,
            } => (
                SagaInput::Ship {
                    carrier,
                    tracking_number,
                },
                OrderStatus::Shipped,
            ),
            FulfilmentStep::Deliver => (SagaInput::Deliver, OrderStatus::Delivered),
            FulfilmentStep::Other(target) => {
                let current = orders::find(&self.db, id)
                    .await?
                    .ok_or(OrderError::OrderNotFound(id))?;
                return Err(OrderError::InvalidTransition {
                    from: current.status,
                    to: target,
                    allowed: fulfilment_moves(current.status),
                });
            }
        };
        self.transition(id, input, target).await
    }

    /// Applies `input` to the order under its row lock, and writes the order
    /// and the event it causes in one transaction.
    async fn transition(
        &self,
        id: OrderId,
        input: SagaInput,
        target: OrderStatus,
    ) -> Result<OrderWithLines, OrderError> {
        let txn = begin_write(&self.db).await?;
        let mut order = orders::find_for_update(&txn, id)
            .await?
            .ok_or(OrderError::OrderNotFound(id))?;
        let decision = match order.apply(input, self.clock.now()) {
            Err(NotAllowed { from, allowed }) => {
                return Err(OrderError::InvalidTransition {
                    from,
                    to: target,
                    allowed,
                });
            }
            Ok(Applied::Unchanged) => None,
            Ok(Applied::Moved { event, decision }) => {
                orders::save_all(&txn, [&order]).await?;
                let events = event.map(|event| self.outbox.envelope(event));
                saga::emit(&txn, events.into_iter().collect()).await?;
                decision
            }
        };
        let order = orders::with_lines(&txn, order).await?;
        self.outbox.commit(txn).await?;
        decision.into_iter().for_each(saga::record);
        Ok(order)
    }

    /// Changes shipping details before delivery (owner or admin) and publishes
    /// ShippingUpdated.
    ///
    /// # Errors
    /// [`OrderError::ShippingLocked`] once delivered, rejected or cancelled;
    /// [`OrderError::OrderNotFound`]; or a database error.
    pub async fn update_shipping(
        &self,
        caller: &Caller,
        id: OrderId,
        change: ShippingChange,
    ) -> Result<OrderWithLines, OrderError> {
        visible_order(&self.db, caller, id).await?;
        let txn = begin_write(&self.db).await?;
        let mut order = orders::find_for_update(&txn, id)
            .await?
            .ok_or(OrderError::OrderNotFound(id))?;
        let event = order.change_shipping(change, self.clock.now())?;
        orders::save_all(&txn, [&order]).await?;
        saga::emit(&txn, vec![self.outbox.envelope(event)]).await?;
        let order = orders::with_lines(&txn, order).await?;
        self.outbox.commit(txn).await?;
        Ok(order)
    }

    /// Counts by status and decision latencies, as of now.
    ///
    /// # Errors
    /// A database error.
    pub async fn metrics(&self) -> Result<OrderMetrics, OrderError> {
        metrics_at(&self.db, self.clock.now()).await
    }

    /// Counts by status and decisions of the last minute, as of now: the
    /// cheap part of [`metrics`](Self::metrics).
    ///
    /// # Errors
    /// A database error.
    pub async fn counts(&self) -> Result<OrderCounts, OrderError> {
        counts_at(&self.db, self.clock.now()).await
    }

    /// Prices `new` from the catalog copy read through `conn`.
    async fn price(
        &self,
        conn: &impl ConnectionTrait,
        new: NewOrder,
        order_id: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Placement, OrderError> {
        let catalog: HashMap<ProductId, _> = catalog_copy::find_many(conn, &new.product_ids())
            .await?
            .into_iter()
            .map(|p| (p.product_id, p))
            .collect();
        let (order, placed) = new.place(order_id, &catalog, self.policy.saga_deadline, now)?;
        Ok(Placement {
            order,
            placed: PendingEvent::traced(self.outbox.envelope(placed)),
        })
    }
}

/// A fulfilment step an admin asks for by the status it leads to.
#[derive(Debug, Clone)]
pub enum FulfilmentStep {
    /// To SHIPPED, with the carrier and tracking number.
    Ship {
        /// The carrier.
        carrier: Carrier,
        /// Its tracking number.
        tracking_number: TrackingNumber,
    },
    /// To DELIVERED.
    Deliver,
    /// Any other status: never a fulfilment step.
    Other(OrderStatus),
}

/// One order, if the caller may see it. Other customers' orders are "not
/// found", so that their existence does not leak.
///
/// # Errors
/// [`OrderError::OrderNotFound`], or a database error.
pub async fn get_order(
    db: &DatabaseConnection,
    caller: &Caller,
    id: OrderId,
) -> Result<OrderWithLines, OrderError> {
    let order = visible_order(db, caller, id).await?;
    Ok(orders::with_lines(db, order).await?)
}

/// The one authorization rule of orders: an admin acts on anyone's, a
/// customer on their own only.
pub fn may_act_for(caller: &Caller, customer: CustomerId) -> bool {
    caller.is_admin() || caller.id == customer
}

async fn visible_order(
    db: &DatabaseConnection,
    caller: &Caller,
    id: OrderId,
) -> Result<Order, OrderError> {
    match orders::find(db, id).await? {
        Some(order) if may_act_for(caller, order.customer_id) => Ok(order),
        _ => Err(OrderError::OrderNotFound(id)),
    }
}

/// A page of orders the caller may see, and the next cursor.
///
/// # Errors
/// [`OrderError::Forbidden`] when a customer filters by another customer,
/// or a database error.
pub async fn list_orders(
    db: &DatabaseConnection,
    caller: &Caller,
    mut filter: OrderFilter,
    after: Option<OrderId>,
    limit: u64,
) -> Result<(Vec<OrderWithLines>, Option<OrderId>), OrderError> {
    if let Some(customer) = filter.customer_id
        && !may_act_for(caller, customer)
    {
        return Err(OrderError::Forbidden("customers see only their own orders"));
    }
    if !caller.is_admin() {
        filter.customer_id = Some(caller.id);
    }
    let (page, next) = service_kit::pagination::split_page(
        orders::list(db, &filter, after, limit + 1).await?,
        limit,
        |o| o.id,
    );
    Ok((orders::all_with_lines(db, page).await?, next))
}

/// The order's timeline.
///
/// # Errors
/// [`OrderError::OrderNotFound`], or a database error.
pub async fn timeline(
    db: &DatabaseConnection,
    caller: &Caller,
    id: OrderId,
) -> Result<Vec<TimelineEntry>, OrderError> {
    visible_order(db, caller, id).await?;
    Ok(orders::timeline(db, id).await?)
}

/// Counts by status and decision latencies.
#[derive(Debug, Clone)]
pub struct OrderMetrics {
    /// Orders per status.
    pub counts: Vec<(OrderStatus, u64)>,
    /// Milliseconds from placement to CONFIRMED, most recent first.
    pub to_confirmed_ms: Vec<i64>,
    /// Milliseconds from placement to REJECTED.
    pub to_rejected_ms: Vec<i64>,
    /// Milliseconds from placement to any decision (cancellations too).
    pub to_decision_ms: Vec<i64>,
    /// Orders decided in the last minute.
    pub decided_last_minute: u64,
}

/// Orders per status, and how many were decided in the last minute.
#[derive(Debug, Clone)]
pub struct OrderCounts {
    /// Orders per status.
    pub counts: Vec<(OrderStatus, u64)>,
    /// Orders decided in the last minute.
    pub decided_last_minute: u64,
}

/// Orders per status, and those decided in the minute before `now`.
async fn counts_at(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<OrderCounts, OrderError> {
    use OrderStatus::*;
    let mut counts = Vec::new();
    for status in [Pending, Confirmed, Rejected, Cancelled, Shipped, Delivered] {
        counts.push((status, orders::count_in(db, status).await?));
    }
    let decided_last_minute =
        orders::count_decided_since(db, now - chrono::Duration::minutes(1)).await?;
    Ok(OrderCounts {
        counts,
        decided_last_minute,
    })
}

/// Counts by status, and placement→decision latencies of the last 10,000
/// decided orders, as of `now`.
async fn metrics_at(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<OrderMetrics, OrderError> {
    use OrderStatus::*;
    let OrderCounts {
        counts,
        decided_last_minute,
    } = counts_at(db, now).await?;
    let mut to_confirmed_ms = Vec::new();
    let mut to_rejected_ms = Vec::new();
    let mut to_decision_ms = Vec::new();
    for decided in orders::recent_decisions(db, 10_000).await? {
        let millis = (decided.decided_at - decided.created_at).num_milliseconds();
        to_decision_ms.push(millis);
        match decided.status {
            // A confirmed order may have moved on since; it was confirmed first.
            Confirmed | Shipped | Delivered => to_confirmed_ms.push(millis),
            Rejected => to_rejected_ms.push(millis),
            Pending | Cancelled => {}
        }
    }
    Ok(OrderMetrics {
        counts,
        to_confirmed_ms,
        to_rejected_ms,
        to_decision_ms,
        decided_last_minute,
    })
}

/// The `q` quantile (0-1) of sorted `millis`, nearest rank; `None` when empty.
pub fn quantile(sorted_millis: &[i64], q: f64) -> Option<i64> {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((sorted_millis.len() as f64 - 1.0) * q).round() as usize;
    sorted_millis.get(rank).copied()
}

/// Exports [`OrderDesk::counts`] as Prometheus gauges every
/// `interval` until `shutdown`: `oms_orders{status}` and
/// `oms_orders_decided_last_minute`. They are read from the database, so
/// every instance reports the same figures; dashboards take their `max`.
/// Decision latency is not among them: each decision is counted where it is
/// made, in the histogram `oms_order_decision_seconds` ([`saga::record`]),
/// which sums across instances.
pub async fn export_metrics(
    desk: OrderDesk,
    interval: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        match desk.counts().await {
            Ok(figures) => {
                for (status, count) in &figures.counts {
                    #[allow(clippy::cast_precision_loss)]
                    metrics::gauge!("oms_orders", "status" => status.as_str()).set(*count as f64);
                }
                #[allow(clippy::cast_precision_loss)]
                metrics::gauge!("oms_orders_decided_last_minute")
                    .set(figures.decided_last_minute as f64);
            }
            Err(error) => tracing::warn!(error = %error, "could not read the order figures"),
        }
    }
}
