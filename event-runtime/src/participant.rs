//! The participant side of the order saga, written once: inventory-svc
//! holds stock for an order and customer-svc holds credit, and both follow
//! this protocol. A service supplies its resource ([`Participant`] and its
//! [`Holdings`]); [`ParticipantHandler`] turns it into the
//! [`EventHandler`] that consumes the `orders` topic.
//!
//! ```text
//!                 OrderPlaced, the resource suffices
//!   (none) ────────────────────────────────────────▶ HELD ──finishing event──▶ FINISHED
//!     │  │                                             │
//!     │  │ OrderPlaced, refused                        │ OrderRejected / OrderCancelled
//!     │  └──────────────────────────▶ REFUSED          ▼
//!     │                                             RELEASED
//!     └── OrderRejected / OrderCancelled before OrderPlaced ──▶ RELEASED (a tombstone, nothing held)
//! ```
//!
//! **Every decision is taken once.** A participant keeps one record per
//! order from the first event that concerns it, so every later event finds
//! the decision already taken: a second OrderPlaced (replayed, or
//! re-published under a new id) changes nothing; releasing twice, or an
//! order that never held anything, changes nothing; an OrderPlaced that
//! arrives after its cancellation finds the tombstone and holds nothing, so
//! nothing leaks. The finishing event (OrderShipped for stock,
//! OrderDelivered for credit) of an order that holds nothing is a saga
//! error: it is dead-lettered with the reason.
//!
//! **No hold outlives its order.** An OrderPlaced carries the order's
//! deadline (version 1 records, which carry none, get their `occurred_at`
//! plus the default saga deadline). A hold stays *undecided* until
//! OrderConfirmed, which order-svc publishes once both participants hold;
//! from then on only the order's own events end it. A hold still undecided
//! a grace period after its deadline (`OMS_HOLD_GRACE_SECS`) is given back
//! by [`expire_holds`] with the participant's normal release event and the
//! reason [`ReleaseReason::HoldExpired`], so a forged OrderPlaced, an order
//! order-svc lost, or a cancellation that never arrived cannot hold stock
//! or credit for ever. Expiry is a release like any other: a later
//! OrderRejected/OrderCancelled changes nothing, and order-svc, hearing of
//! it, cancels the order if it is still pending. An operator can release
//! one hold by hand ([`release_by_hand`]) the same way.
//!
//! The service's [`Holdings`] applies each step in memory; the rules of
//! which step to take are here: an OrderPlaced holds only for an order
//! without a record, and [`on_release`] and [`on_finish`] decide the rest.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};

use super::database::begin_write;
use super::handler::{Emitter, EventHandler, HandlerError};
use super::hold_records::{HoldRecords, Phase, PhaseNames};
use super::outbox::{Outbox, PendingEvent};
use events::envelope::{Envelope, Event, EventPayload};
use events::ids::OrderId;
use events::payloads::{
    OrderCancelled, OrderConfirmed, OrderDelivered, OrderPlaced, OrderRejected, OrderShipped,
    ReleaseReason,
};

/// The reason a tombstone records.
pub const TOMBSTONE_REASON: &str = "released before reserved";

/// The order event that finishes a hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishedBy {
    /// OrderShipped: the units leave stock.
    Shipment,
    /// OrderDelivered: the credit is settled.
    Delivery,
}

impl FinishedBy {
    fn event_type(self) -> &'static str {
        match self {
            Self::Shipment => OrderShipped::EVENT_TYPE,
            Self::Delivery => OrderDelivered::EVENT_TYPE,
        }
    }

    fn order_of(self, event: &Event) -> Option<OrderId> {
        match (self, event) {
            (Self::Shipment, Event::OrderShipped(shipped)) => Some(shipped.order_id),
            (Self::Delivery, Event::OrderDelivered(delivered)) => Some(delivered.order_id),
            _ => None,
        }
    }
}

/// What a release (OrderRejected, OrderCancelled) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseDecision {
    /// Give the hold back and mark it released.
    Release,
    /// Record a release without a hold, so a late OrderPlaced holds nothing.
    Tombstone,
    /// Nothing to do.
    Nothing,
}

/// The release rule.
pub fn on_release(current: Option<Phase>) -> ReleaseDecision {
    match current {
        None => ReleaseDecision::Tombstone,
        Some(Phase::Held) => ReleaseDecision::Release,
        Some(Phase::Refused | Phase::Released | Phase::Finished) => ReleaseDecision::Nothing,
    }
}

/// What the finishing event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishDecision {
    /// Take the held resource for good.
    Finish,
    /// Finished before.
    Nothing,
    /// The order holds nothing: a saga error.
    Refuse,
}

/// The finishing rule.
pub fn on_finish(current: Option<Phase>) -> FinishDecision {
    match current {
        Some(Phase::Held) => FinishDecision::Finish,
        Some(Phase::Finished) => FinishDecision::Nothing,
        Some(Phase::Refused | Phase::Released) | None => FinishDecision::Refuse,
    }
}

/// The per-order records of one batch, as a participant keeps them: it
/// applies each step of the protocol in memory; [`Participant::save`]
/// writes the result.
pub trait Holdings: Send {
    /// What one record holds; its default is what a tombstone holds.
    type Held: Default + Send;

    /// The batch's records.
    fn records(&self) -> &HoldRecords<Self::Held>;

    /// The batch's records, to change.
    fn records_mut(&mut self) -> &mut HoldRecords<Self::Held>;

    /// The phase of `order_id`'s record; `None` when there is none yet.
    fn phase(&self, order_id: OrderId) -> Option<Phase> {
        self.records().get(order_id).map(|record| record.phase)
    }

    /// Holds what `placed` needs, or refuses it; records the decision and
    /// returns the reply (the participant's "reserved" or "rejected"
    /// event). Called only for an order without a record.
    ///
    /// # Errors
    /// Stored values out of range (the books are wrong; the batch must not
    /// commit).
    fn hold(&mut self, placed: &OrderPlaced) -> Result<Event, DbErr>;

    /// Records a release of an order without a record (a tombstone with
    /// [`TOMBSTONE_REASON`], holding nothing).
    fn tombstone(&mut self, order_id: OrderId) {
        self.records_mut().decide(
            order_id,
            Phase::Released,
            Some(TOMBSTONE_REASON.to_owned()),
            Self::Held::default(),
            None,
        );
    }

    /// The deadline of a held order that nobody decided yet; `None` once
    /// the order is decided (confirmed), for records that hold nothing, and
    /// for holds made before deadlines were recorded.
    fn deadline(&self, order_id: OrderId) -> Option<DateTime<Utc>> {
        self.records()
            .get(order_id)
            .and_then(|record| record.deadline_at)
    }

    /// Records that the order was decided (OrderConfirmed): its hold no
    /// longer expires.
    fn confirm(&mut self, order_id: OrderId) {
        if self.deadline(order_id).is_some()
            && let Some(record) = self.records_mut().get_mut(order_id)
        {
            record.deadline_at = None;
        }
    }

    /// Gives a held order's resource back, marks it released, and returns
    /// the reply, carrying `reason` when the participant releases on its
    /// own (not because the order was rejected or cancelled).
    ///
    /// # Errors
    /// When the resource holds less than the order (the books would be
    /// wrong; the batch must not commit).
    fn release(&mut self, order_id: OrderId, reason: Option<ReleaseReason>)
    -> Result<Event, DbErr>;

    /// Takes a held order's resource for good, marks it finished, and
    /// returns the reply.
    ///
    /// # Errors
    /// As [`release`](Self::release).
    fn finish(&mut self, order_id: OrderId) -> Result<Event, DbErr>;
}

/// A service's resource in the saga: how it reads and writes its
/// [`Holdings`], and its words for them.
pub trait Participant: Send + Sync + 'static {
    /// What one batch reads, changes and writes.
    type Holdings: Holdings;
    /// The table of its records.
    type Table: crate::hold_table::HoldTable;

    /// The event that finishes a hold.
    const FINISHED_BY: FinishedBy;
    /// What the record of an order is called, for messages ("reservation").
    const RECORD: &'static str;
    /// What finishing is called, for messages ("ship").
    const FINISH: &'static str;
    /// The resource, as the `resource` label of metrics ("stock").
    const RESOURCE: &'static str;
    /// How the participant spells the phases of its records.
    const PHASES: PhaseNames;

    /// Up to `limit` orders whose records still hold and are undecided,
    /// with a deadline at or before `cutoff`, earliest deadline first; read
    /// without locks (over an index), so that a sweep that finds nothing
    /// costs one query and no write lock.
    ///
    /// # Errors
    /// Database errors.
    fn expired<C: ConnectionTrait>(
        &self,
        conn: &C,
        cutoff: DateTime<Utc>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<OrderId>, DbErr>> + Send {
        crate::hold_table::expired::<Self::Table>(conn, cutoff, limit)
    }

    /// Reads and locks, in one global order, the records of `orders` and
    /// the resources that they and the OrderPlaced events of `placed` touch.
    ///
    /// # Errors
    /// Database errors (the batch is retried).
    fn load(
        &self,
        txn: &DatabaseTransaction,
        orders: &BTreeSet<OrderId>,
        placed: &[&OrderPlaced],
    ) -> impl Future<Output = Result<Self::Holdings, DbErr>> + Send;

    /// Writes what the batch changed, one statement per table and kind.
    ///
    /// # Errors
    /// Database errors, or a conflict when another instance decided one of
    /// the new records meanwhile (the batch is then retried).
    fn save(
        &self,
        txn: &DatabaseTransaction,
        holdings: Self::Holdings,
    ) -> impl Future<Output = Result<(), DbErr>> + Send;
}

/// The default saga deadline: what `OMS_SAGA_DEADLINE_SECS` defaults to.
pub const DEFAULT_SAGA_DEADLINE: Duration = Duration::from_secs(30);

/// The [`EventHandler`] of a participant: OrderPlaced holds, OrderConfirmed
/// decides the hold, OrderRejected and OrderCancelled release, the
/// finishing event finishes.
#[derive(Debug, Clone, Copy)]
pub struct ParticipantHandler<P> {
    participant: P,
    default_deadline: chrono::Duration,
}

impl<P: Participant + Default> Default for ParticipantHandler<P> {
    fn default() -> Self {
        Self::new(P::default(), DEFAULT_SAGA_DEADLINE)
    }
}

/// The order an OrderPlaced of either version places, with its deadline:
/// a version 1 record's is its `occurred_at` plus `default_deadline`.
pub fn placed_order(
    envelope: &Envelope,
    default_deadline: chrono::Duration,
) -> Option<OrderPlaced> {
    match &envelope.event {
        Event::OrderPlaced(placed) => Some(placed.clone()),
        Event::OrderPlacedV1(placed) => Some(
            placed
                .clone()
                .with_deadline(envelope.occurred_at + default_deadline),
        ),
        _ => None,
    }
}

impl<P: Participant> ParticipantHandler<P> {
    /// The handler of `participant`; `default_deadline` is the deadline,
    /// after placement, of orders whose OrderPlaced (version 1) names none.
    pub fn new(participant: P, default_deadline: Duration) -> Self {
        Self {
            participant,
            default_deadline: chrono::Duration::from_std(default_deadline)
                .unwrap_or(chrono::Duration::MAX),
        }
    }

    fn release(
        holdings: &mut P::Holdings,
        emitter: &mut Emitter<'_>,
        order_id: OrderId,
    ) -> Result<(), HandlerError> {
        match on_release(holdings.phase(order_id)) {
            ReleaseDecision::Nothing => {}
            ReleaseDecision::Tombstone => holdings.tombstone(order_id),
            ReleaseDecision::Release => {
                emitter.emit(holdings.release(order_id, None)?);
            }
        }
        Ok(())
    }

    fn finish(
        holdings: &mut P::Holdings,
        emitter: &mut Emitter<'_>,
        order_id: OrderId,
    ) -> Result<(), HandlerError> {
        let phase = holdings.phase(order_id);
        match on_finish(phase) {
            FinishDecision::Nothing => {}
            FinishDecision::Finish => {
                emitter.emit(holdings.finish(order_id)?);
            }
            FinishDecision::Refuse => {
                let holds = phase.map_or(format!("has no {}", P::RECORD), |phase| {
                    format!("has a {} {}", P::PHASES.name(phase), P::RECORD)
                });
                return Err(HandlerError::permanent(format!(
                    "order {order_id} {holds}; nothing to {}",
                    P::FINISH
                )));
            }
        }
        Ok(())
    }
}

impl<P: Participant> EventHandler for ParticipantHandler<P> {
    type Batch = P::Holdings;

    fn wants(&self, event_type: &str) -> bool {
        event_type == OrderPlaced::EVENT_TYPE
            || event_type == OrderConfirmed::EVENT_TYPE
            || event_type == OrderRejected::EVENT_TYPE
            || event_type == OrderCancelled::EVENT_TYPE
            || event_type == P::FINISHED_BY.event_type()
    }

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<P::Holdings, DbErr> {
        let orders: BTreeSet<OrderId> = events.iter().map(|e| e.order_id()).collect();
        let placed: Vec<OrderPlaced> = events
            .iter()
            .filter_map(|e| placed_order(e, self.default_deadline))
            .collect();
        let placed: Vec<&OrderPlaced> = placed.iter().collect();
        self.participant.load(txn, &orders, &placed).await
    }

    fn apply(
        &self,
        holdings: &mut P::Holdings,
        envelope: &Envelope,
        emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError> {
        if let Some(placed) = placed_order(envelope, self.default_deadline) {
            match holdings.phase(placed.order_id) {
                None => {
                    emitter.emit(holdings.hold(&placed)?);
                }
                // Decided before: held, refused, or released first.
                Some(phase) => {
                    tracing::info!(order_id = %placed.order_id, state = P::PHASES.name(phase), "order already decided; nothing to hold");
                }
            }
            return Ok(());
        }
        match &envelope.event {
            Event::OrderConfirmed(confirmed) => holdings.confirm(confirmed.order_id),
            Event::OrderRejected(rejected) => Self::release(holdings, emitter, rejected.order_id)?,
            Event::OrderCancelled(cancelled) => {
                Self::release(holdings, emitter, cancelled.order_id)?;
            }
            other => {
                if let Some(order_id) = P::FINISHED_BY.order_of(other) {
                    Self::finish(holdings, emitter, order_id)?;
                }
            }
        }
        Ok(())
    }

    async fn save(&self, txn: &DatabaseTransaction, holdings: P::Holdings) -> Result<(), DbErr> {
        self.participant.save(txn, holdings).await
    }
}

/// Gives back up to `limit` holds still undecided `grace` after their
/// order's deadline, as of `now`: each with the participant's release event
/// and [`ReleaseReason::HoldExpired`], all in one transaction with the
/// outbox (a handful of statements however many expire: one read of the
/// expired orders, the participant's locking load and save, one outbox
/// insert). Counted in `oms_holds_expired_total{resource}`. Returns how
/// many were released.
///
/// The candidates are read without locks, then locked and checked again,
/// so a hold decided or released meanwhile is left alone.
///
/// # Errors
/// Database errors (nothing is released then).
pub async fn expire_holds<P: Participant>(
    participant: &P,
    db: &DatabaseConnection,
    outbox: &Outbox,
    now: DateTime<Utc>,
    grace: Duration,
    limit: u64,
) -> Result<usize, DbErr> {
    let cutoff = now - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
    if participant.expired(db, cutoff, limit).await?.is_empty() {
        return Ok(0);
    }
    let txn = begin_write(db).await?;
    let due: BTreeSet<OrderId> = participant
        .expired(&txn, cutoff, limit)
        .await?
        .into_iter()
        .collect();
    let mut holdings = participant.load(&txn, &due, &[]).await?;
    let mut pending = Vec::new();
    for &order_id in &due {
        let held = holdings.phase(order_id) == Some(Phase::Held);
        if held && holdings.deadline(order_id).is_some_and(|at| at <= cutoff) {
            let event = holdings.release(order_id, Some(ReleaseReason::HoldExpired))?;
            tracing::warn!(%order_id, resource = P::RESOURCE, "hold expired: nobody decided the order within its deadline and the grace period; released");
            pending.push(PendingEvent::traced(outbox.envelope(event)));
        }
    }
    let released = pending.len();
    participant.save(&txn, holdings).await?;
    Outbox::enqueue_many(&txn, pending).await?;
    outbox.commit(txn).await?;
    metrics::counter!("oms_holds_expired_total", "resource" => P::RESOURCE)
        .increment(released as u64);
    Ok(released)
}

/// What releasing a hold by hand did.
#[derive(Debug, Clone)]
pub enum ManualRelease {
    /// Released; the release event, as written to the outbox.
    Released(Box<Envelope>),
    /// The participant has no record of the order.
    NotFound,
    /// The order's record holds nothing now; its state.
    NotHeld(String),
}

/// Releases `order_id`'s hold on an operator's word, with the
/// participant's release event and [`ReleaseReason::ReleasedByOperator`],
/// in one transaction with the outbox.
///
/// # Errors
/// Database errors (nothing is released then).
pub async fn release_by_hand<P: Participant>(
    participant: &P,
    db: &DatabaseConnection,
    outbox: &Outbox,
    order_id: OrderId,
) -> Result<ManualRelease, DbErr> {
    let txn = begin_write(db).await?;
    let mut holdings = participant
        .load(&txn, &BTreeSet::from([order_id]), &[])
        .await?;
    match holdings.phase(order_id) {
        None => return Ok(ManualRelease::NotFound),
        Some(phase) if phase != Phase::Held => {
            return Ok(ManualRelease::NotHeld(P::PHASES.name(phase).to_owned()));
        }
        Some(_) => {}
    }
    let event = holdings.release(order_id, Some(ReleaseReason::ReleasedByOperator))?;
    let envelope = outbox.envelope(event);
    participant.save(&txn, holdings).await?;
    Outbox::enqueue_many(&txn, vec![PendingEvent::traced(envelope.clone())]).await?;
    outbox.commit(txn).await?;
    tracing::warn!(%order_id, resource = P::RESOURCE, "hold released by an operator");
    Ok(ManualRelease::Released(Box::new(envelope)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_rules() {
        assert_eq!(on_release(None), ReleaseDecision::Tombstone);
        assert_eq!(on_release(Some(Phase::Held)), ReleaseDecision::Release);
        for phase in [Phase::Refused, Phase::Released, Phase::Finished] {
            assert_eq!(on_release(Some(phase)), ReleaseDecision::Nothing);
        }
    }

    #[test]
    fn finish_rules() {
        assert_eq!(on_finish(Some(Phase::Held)), FinishDecision::Finish);
        assert_eq!(on_finish(Some(Phase::Finished)), FinishDecision::Nothing);
        for current in [None, Some(Phase::Refused), Some(Phase::Released)] {
            assert_eq!(on_finish(current), FinishDecision::Refuse);
        }
    }
}
