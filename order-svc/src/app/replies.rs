//! The participants' replies applied to the saga, set-based: a batch
//! reads the orders it touches with one locking statement, applies the
//! saga's rules ([`Order::apply`]) in memory, and writes the
//! orders and the timeline entries with one statement each. Also the
//! timeline's rebuild from records an operator re-drove.
//!
//! A reply for an order order-svc does not know (a forged OrderPlaced, a
//! restored database) is dead-lettered: it cannot be applied, and an
//! operator should see it; the participant's hold expires on its own a
//! grace period after the order's deadline. The release that expiry
//! publishes (StockReleased / CreditReleased with a `reason`) for such an
//! order is only logged: it leaves nothing held, so there is nothing to
//! see. A participant's own release of an order that is PENDING or
//! CONFIRMED (its hold expired before order-svc decided, or an operator
//! released it) cancels the order, naming the participant and its reason,
//! since it can no longer be fulfilled; the OrderCancelled makes the other
//! participant release too. Duplicates and late replies
//! change nothing. A CreditReserved is believed only if it holds the
//! order's customer and total.

use events::{
    CreditReleased, CreditReserved, CreditSettled, CustomerRejected, Envelope, Event, EventPayload,
    OrderId, Participant, ProductUpserted, StockCommitted, StockRejected, StockReleased,
    StockReserved,
};
use std::collections::BTreeSet;

use event_runtime::{Emitter, EventHandler, HandlerError, Tracked};
use sea_orm::{DatabaseTransaction, DbErr};
use service_kit::Clock;

use crate::app::saga;
use crate::domain::{Applied, Order, Reason, SagaInput, TimelineEntry};
use crate::persistence::orders;

/// Applies the participants' replies to the saga.
#[derive(Debug, Clone, Default)]
pub struct SagaReplies {
    /// When the saga decides.
    pub clock: Clock,
}

/// The orders a batch of replies touches, and what it changes.
#[derive(Debug, Default)]
pub struct SagaBatch {
    orders: Tracked<OrderId, Order>,
    timeline: Vec<TimelineEntry>,
}

impl EventHandler for SagaReplies {
    type Batch = SagaBatch;

    fn wants(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            StockReserved::EVENT_TYPE
                | StockRejected::EVENT_TYPE
                | StockReleased::EVENT_TYPE
                | StockCommitted::EVENT_TYPE
                | CreditReserved::EVENT_TYPE
                | CustomerRejected::EVENT_TYPE
                | CreditReleased::EVENT_TYPE
                | CreditSettled::EVENT_TYPE
        )
    }

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<SagaBatch, DbErr> {
        let ids: Vec<OrderId> = events
            .iter()
            .map(|e| e.order_id())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let orders = orders::find_many_for_update(txn, &ids).await?;
        Ok(SagaBatch {
            orders: Tracked::loaded(orders.into_iter().map(|order| (order.id, order))),
            ..SagaBatch::default()
        })
    }

    fn apply(
        &self,
        batch: &mut SagaBatch,
        envelope: &Envelope,
        emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError> {
        let order_id = envelope.order_id();
        let Some(current) = batch.orders.get(order_id) else {
            if participant_released(&envelope.event) {
                tracing::warn!(%order_id, reply = envelope.event.event_type(), "a participant released a hold of an order order-svc does not know; nothing to do");
                return Ok(());
            }
            return Err(HandlerError::permanent(format!(
                "{} for order {order_id}, which order-svc does not know",
                envelope.event.event_type()
            )));
        };
        if let Event::CreditReserved(reply) = &envelope.event
            && (reply.customer_id != current.customer_id || reply.amount != current.total)
        {
            return Err(HandlerError::permanent(format!(
                "CreditReserved for order {order_id} holds {} of customer {}; the order is {} \
                 of customer {}",
                reply.amount, reply.customer_id, current.total, current.customer_id
            )));
        }
        let input = match &envelope.event {
            Event::StockReserved(_) => Some(SagaInput::Reserved(Participant::Inventory)),
            Event::CreditReserved(_) => Some(SagaInput::Reserved(Participant::Customer)),
            Event::StockRejected(e) => Some(SagaInput::Refused(
                Participant::Inventory,
                Reason::lenient(&e.reason),
            )),
            Event::CustomerRejected(e) => Some(SagaInput::Refused(
                Participant::Customer,
                Reason::lenient(&e.detail),
            )),
            // A PENDING or CONFIRMED order can no longer be fulfilled.
            Event::StockReleased(StockReleased {
                reason: Some(reason),
                ..
            }) => Some(SagaInput::HoldReleased(
                Participant::Inventory,
                reason.to_string(),
            )),
            Event::CreditReleased(CreditReleased {
                reason: Some(reason),
                ..
            }) => Some(SagaInput::HoldReleased(
                Participant::Customer,
                reason.to_string(),
            )),
            _ => None,
        };
        batch.timeline.push(TimelineEntry::of(envelope));
        let Some(input) = input else {
            return Ok(());
        };
        let mut order = current.clone();
        match order.apply(input, self.clock.now()) {
            Ok(Applied::Moved { event, decision }) => {
                if let Some(stored) = batch.orders.get_mut(order_id) {
                    *stored = order;
                }
                if let Some(decision) = decision {
                    emitter.once_committed(move || saga::record(decision));
                }
                if let Some(event) = event {
                    let emitted = emitter.emit(event);
                    batch.timeline.push(TimelineEntry::of(&emitted));
                }
            }
            Ok(Applied::Unchanged) | Err(_) => {
                tracing::info!(%order_id, status = %order.status, reply = envelope.event.event_type(), "reply changes nothing");
            }
        }
        Ok(())
    }

    async fn save(&self, txn: &DatabaseTransaction, batch: SagaBatch) -> Result<(), DbErr> {
        let changed = batch.orders.into_changes().changed;
        orders::save_all(txn, changed.iter().map(|(_, order)| order)).await?;
        orders::record_events(txn, batch.timeline).await
    }
}

/// Whether `event` is a participant giving a hold back on its own (its
/// expiry, or an operator), not in answer to the order's own events.
fn participant_released(event: &Event) -> bool {
    match event {
        Event::StockReleased(released) => released.reason.is_some(),
        Event::CreditReleased(released) => released.reason.is_some(),
        _ => false,
    }
}

/// Rebuilds order timelines from replayed records. The saga records every
/// event in its order's timeline as it goes; this projection sees only what
/// an operator re-drove (`oms replay --copy-to`), and fills in what is
/// missing, for example after the timeline table was emptied.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimelineProjection;

impl EventHandler for TimelineProjection {
    /// The known orders among the batch's keys, and the entries to record.
    type Batch = (BTreeSet<OrderId>, Vec<TimelineEntry>);

    fn wants(&self, event_type: &str) -> bool {
        event_type != ProductUpserted::EVENT_TYPE
    }

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<Self::Batch, DbErr> {
        let ids: Vec<OrderId> = events.iter().map(|e| e.order_id()).collect();
        let known = orders::existing(txn, &ids).await?;
        Ok((known, Vec::new()))
    }

    fn apply(
        &self,
        (known, entries): &mut Self::Batch,
        envelope: &Envelope,
        _emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError> {
        if known.contains(&envelope.order_id()) {
            entries.push(TimelineEntry::of(envelope));
        }
        Ok(())
    }

    async fn save(
        &self,
        txn: &DatabaseTransaction,
        (_, entries): Self::Batch,
    ) -> Result<(), DbErr> {
        orders::record_events(txn, entries).await
    }
}
