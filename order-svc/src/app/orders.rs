//! Order commands and queries behind the HTTP API.

use events::{
    Actor, ActorKind, CustomerId, Money, OrderId, OrderLine, OrderPlaced, OrderStatus, ProductId,
    ShippingAddress, ShippingUpdated,
};
use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use events::plumbing::{
    GroupCommit, GroupCommitSettings, GroupWriter, Outbox, PendingEvent, begin_write,
};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use service_kit::{Caller, Clock};

use crate::app::saga::{self, Decision, Details, Outcome};
use crate::domain::OrderFilter;
use crate::domain::saga::is_terminal;
use crate::domain::{IdempotencyKey, NewOrder, SagaInput};
use crate::error::OrderError;
use crate::persistence::entities::{idempotency_key, order, order_event, order_line};
use crate::persistence::{catalog_copy, idempotency, orders};

/// How orders are placed.
#[derive(Debug, Clone)]
pub struct OrderPolicy {
    /// How long the saga waits for both participants.
    pub saga_deadline: Duration,
    /// How long an Idempotency-Key is remembered.
    pub idempotency_ttl: Duration,
}

/// An order with its lines.
#[derive(Debug, Clone)]
pub struct OrderWithLines {
    /// The order.
    pub order: order::Model,
    /// Its lines.
    pub lines: Vec<order_line::Model>,
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
    order: order::Model,
    lines: Vec<order_line::Model>,
    placed: PendingEvent,
}

/// Writes placements: the orders, their lines, the OrderPlaced events and
/// their timeline entries, one statement per table for a whole group.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlacementWriter;

impl GroupWriter for PlacementWriter {
    type Item = Placement;

    async fn write(&self, txn: &DatabaseTransaction, items: &[Placement]) -> Result<(), DbErr> {
        orders::insert_many(
            txn,
            items.iter().map(|p| p.order.clone()).collect(),
            items.iter().flat_map(|p| p.lines.iter().cloned()).collect(),
        )
        .await?;
        Outbox::enqueue_many(txn, items.iter().map(|p| p.placed.clone()).collect()).await?;
        orders::record_events(
            txn,
            items
                .iter()
                .map(|p| saga::timeline_entry(&p.placed.envelope))
                .collect(),
        )
        .await
    }
}

/// Places orders. Orders without an idempotency key are group-committed:
/// concurrent requests share one transaction (see
/// [`events::plumbing::group_commit`]), and each still gets its own answer.
#[derive(Debug, Clone)]
pub struct OrderDesk {
    db: DatabaseConnection,
    outbox: Outbox,
    policy: OrderPolicy,
    clock: Clock,
    placements: GroupCommit<Placement>,
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
    ) -> Self {
        let placements = GroupCommit::start(db.clone(), outbox.clone(), PlacementWriter, settings);
        Self {
            db,
            outbox,
            policy,
            clock,
            placements,
        }
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
    /// invalid totals, or a database error.
    pub async fn place(
        &self,
        caller: &Caller,
        new: NewOrder,
        idempotent: Option<IdempotentRequest>,
        render: impl FnOnce(&OrderWithLines) -> Result<String, OrderError>,
    ) -> Result<Placed, OrderError> {
        let now = self.clock.now().trunc_subsecs(6);
        let order_id = OrderId::generate();
        let Some(request) = idempotent else {
            let placement = self.price(&self.db, &new, order_id, now).await?;
            let created = OrderWithLines {
                order: placement.order.clone(),
                lines: placement.lines.clone(),
            };
            self.placements.submit(placement).await?;
            return Ok(Placed::New(created));
        };
        let txn = begin_write(&self.db).await?;
        idempotency::delete_if_expired(&txn, caller.id, request.key.as_str(), now).await?;
        let claimed = idempotency::claim(
            &txn,
            idempotency_key::Model {
                customer_id: caller.id,
                key: request.key.as_str().to_owned(),
                request: request.request.clone(),
                order_id,
                response: String::new(),
                expires_at: now
                    + chrono::Duration::from_std(self.policy.idempotency_ttl)
                        .unwrap_or(chrono::Duration::days(1)),
            },
        )
        .await?;
        if !claimed {
            let first = idempotency::find(&txn, caller.id, request.key.as_str())
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
        let placement = self.price(&*txn, &new, order_id, now).await?;
        PlacementWriter
            .write(&txn, std::slice::from_ref(&placement))
            .await?;
        let created = OrderWithLines {
            order: placement.order,
            lines: placement.lines,
        };
        let mut entry = idempotency_key::ActiveModel {
            customer_id: sea_orm::ActiveValue::Unchanged(caller.id),
            key: sea_orm::ActiveValue::Unchanged(request.key.as_str().to_owned()),
            ..Default::default()
        };
        entry.response = Set(render(&created)?);
        sea_orm::ActiveModelTrait::update(entry, &*txn).await?;
        self.outbox.commit(txn).await?;
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
        reason: Option<String>,
    ) -> Result<OrderWithLines, OrderError> {
        visible_order(&self.db, caller, id).await?;
        let actor = Actor {
            kind: if caller.is_admin() {
                ActorKind::Admin
            } else {
                ActorKind::Customer
            },
            id: Some(caller.id),
        };
        let details = Details {
            actor: Some(actor),
            reason,
            ..Default::default()
        };
        self.transition(id, &SagaInput::Cancel, OrderStatus::Cancelled, &details)
            .await
    }

    /// Moves a CONFIRMED order to SHIPPED, or a SHIPPED one to DELIVERED (admin).
    ///
    /// # Errors
    /// [`OrderError::InvalidTransition`] with the allowed transitions, or a database error.
    pub async fn set_fulfilment_status(
        &self,
        id: OrderId,
        target: OrderStatus,
        details: Details,
    ) -> Result<OrderWithLines, OrderError> {
        let input = match target {
            OrderStatus::Shipped => SagaInput::Ship,
            OrderStatus::Delivered => SagaInput::Deliver,
            other => {
                let current = orders::find(&self.db, id)
                    .await?
                    .ok_or(OrderError::OrderNotFound(id))?;
                let from: OrderStatus = current.status;
                return Err(OrderError::InvalidTransition {
                    from,
                    to: other,
                    allowed: fulfilment_moves(from),
                });
            }
        };
        self.transition(id, &input, target, &details).await
    }

    async fn transition(
        &self,
        id: OrderId,
        input: &SagaInput,
        target: OrderStatus,
        details: &Details,
    ) -> Result<OrderWithLines, OrderError> {
        let txn = begin_write(&self.db).await?;
        let now = self.clock.now().trunc_subsecs(6);
        let mut decided = None;
        let order = match saga::apply(&txn, id, input, details, now).await? {
            Outcome::NotFound => return Err(OrderError::OrderNotFound(id)),
            Outcome::NotAllowed { order, allowed } => {
                let from = order.status;
                let allowed = if matches!(input, SagaInput::Cancel) {
                    allowed
                } else {
                    fulfilment_moves(from)
                };
                return Err(OrderError::InvalidTransition {
                    from,
                    to: target,
                    allowed,
                });
            }
            Outcome::Ignored(order) => order,
            Outcome::Moved {
                order,
                event,
                decision,
            } => {
                if let Some(event) = event {
                    saga::emit(&txn, &self.outbox, &self.outbox.envelope(event)).await?;
                }
                decided = decision;
                order
            }
        };
        let lines = orders::lines(&txn, id).await?;
        self.outbox.commit(txn).await?;
        decided.into_iter().for_each(Decision::record);
        Ok(OrderWithLines { order, lines })
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
        let current = orders::find_for_update(&txn, id)
            .await?
            .ok_or(OrderError::OrderNotFound(id))?;
        let status: OrderStatus = current.status;
        if is_terminal(status) {
            return Err(OrderError::ShippingLocked(status));
        }
        let mut changes = order::ActiveModel {
            id: sea_orm::ActiveValue::Unchanged(id),
            ..Default::default()
        };
        if let Some(carrier) = &change.carrier {
            changes.carrier = Set(Some(carrier.clone()));
        }
        if let Some(tracking) = &change.tracking_number {
            changes.tracking_number = Set(Some(tracking.clone()));
        }
        if let Some(address) = &change.shipping_address {
            changes.shipping_address = Set(Some(
                serde_json::to_string(address).expect("an address serializes"),
            ));
        }
        changes.updated_at = Set(self.clock.now().trunc_subsecs(6));
        let order = orders::save(&txn, changes).await?;
        let event = ShippingUpdated {
            order_id: id,
            carrier: change.carrier,
            tracking_number: change.tracking_number,
            shipping_address: change.shipping_address,
        };
        saga::emit(&txn, &self.outbox, &self.outbox.envelope(event)).await?;
        let lines = orders::lines(&txn, id).await?;
        self.outbox.commit(txn).await?;
        Ok(OrderWithLines { order, lines })
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
        new: &NewOrder,
        order_id: OrderId,
        now: DateTime<Utc>,
    ) -> Result<Placement, OrderError> {
        let ids: Vec<ProductId> = new.lines.iter().map(|l| l.product_id).collect();
        let products: HashMap<ProductId, _> = catalog_copy::find_many(conn, &ids)
            .await?
            .into_iter()
            .map(|p| (p.product_id, p))
            .collect();
        let mut currency: Option<String> = None;
        let mut total: i64 = 0;
        let mut lines = Vec::with_capacity(new.lines.len());
        for (line_no, line) in new.lines.iter().enumerate() {
            let product = products
                .get(&line.product_id)
                .ok_or(OrderError::UnknownProduct(line.product_id))?;
            if !product.active {
                return Err(OrderError::InactiveProduct(line.product_id));
            }
            match &currency {
                Some(existing) if *existing != product.currency => {
                    return Err(OrderError::MixedCurrencies(
                        existing.clone(),
                        product.currency.clone(),
                    ));
                }
                _ => currency = Some(product.currency.clone()),
            }
            let quantity = i64::from(line.quantity.get());
            total = quantity
                .checked_mul(product.unit_price_minor)
                .and_then(|line_total| total.checked_add(line_total))
                .filter(|&sum| sum <= events::Money::MAX_MINOR)
                .ok_or_else(|| OrderError::invalid("lines", "the order total is too large"))?;
            lines.push(order_line::Model {
                order_id,
                line_no: i32::try_from(line_no).unwrap_or(i32::MAX),
                product_id: line.product_id,
                quantity,
                unit_price_minor: product.unit_price_minor,
            });
        }
        let currency = currency
            .ok_or_else(|| OrderError::invalid("lines", "at least one line is required"))?;
        let money = |minor: i64| stored_money(minor, &currency);

        // The participants learn the deadline too: a hold nobody decides
        // expires a grace period after it.
        let deadline_at = now
            + chrono::Duration::from_std(self.policy.saga_deadline)
                .unwrap_or(chrono::Duration::seconds(30));
        let placed = OrderPlaced {
            order_id,
            customer_id: new.customer_id,
            lines: new
                .lines
                .iter()
                .zip(&lines)
                .map(|(requested, stored)| {
                    Ok(OrderLine {
                        product_id: requested.product_id,
                        quantity: requested.quantity,
                        unit_price: money(stored.unit_price_minor)?,
                    })
                })
                .collect::<Result<_, OrderError>>()?,
            total: money(total)?,
            shipping_address: new.shipping_address.clone(),
            deadline_at,
        };
        let order = order::Model {
            id: order_id,
            customer_id: new.customer_id,
            status: OrderStatus::Pending,
            total_minor: total,
            currency: currency.clone(),
            shipping_address: new
                .shipping_address
                .as_ref()
                .map(|a| serde_json::to_string(a).expect("an address serializes")),
            carrier: new.carrier.clone(),
            tracking_number: new.tracking_number.clone(),
            stock_reserved: false,
            credit_reserved: false,
            deadline_at,
            reason: None,
            decided_at: None,
            created_at: now,
            updated_at: now,
        };
        Ok(Placement {
            order,
            lines,
            placed: PendingEvent::traced(self.outbox.envelope(placed)),
        })
    }
}

/// The moves PATCH /orders/{id}/status may make from `status`.
pub fn fulfilment_moves(status: OrderStatus) -> Vec<OrderStatus> {
    match status {
        OrderStatus::Confirmed => vec![OrderStatus::Shipped],
        OrderStatus::Shipped => vec![OrderStatus::Delivered],
        _ => vec![],
    }
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
    let lines = orders::lines(db, id).await?;
    Ok(OrderWithLines { order, lines })
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
) -> Result<order::Model, OrderError> {
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
    let mut result = Vec::with_capacity(page.len());
    for order in page {
        let lines = orders::lines(db, order.id).await?;
        result.push(OrderWithLines { order, lines });
    }
    Ok((result, next))
}

/// The order's timeline.
///
/// # Errors
/// [`OrderError::OrderNotFound`], or a database error.
pub async fn timeline(
    db: &DatabaseConnection,
    caller: &Caller,
    id: OrderId,
) -> Result<Vec<order_event::Model>, OrderError> {
    visible_order(db, caller, id).await?;
    Ok(orders::timeline(db, id).await?)
}

/// New shipping details; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct ShippingChange {
    /// Carrier.
    pub carrier: Option<String>,
    /// Tracking number.
    pub tracking_number: Option<String>,
    /// Address.
    pub shipping_address: Option<ShippingAddress>,
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
/// made, in the histogram `oms_order_decision_seconds` ([`saga::Decision`]),
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

/// Money in an order's currency.
///
/// # Errors
/// When stored figures are corrupt.
pub fn stored_money(amount_minor: i64, currency: &str) -> Result<Money, OrderError> {
    Money::parse(amount_minor, currency).map_err(|e| OrderError::Internal(e.into()))
}
