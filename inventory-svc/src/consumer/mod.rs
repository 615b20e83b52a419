//! inventory-svc's event handlers.
//!
//! | consumes (topic `orders`) | does | emits (topic `inventory`) |
//! |---|---|---|
//! | OrderPlaced | reserves every line or none | StockReserved or StockRejected |
//! | OrderRejected, OrderCancelled | releases what the order holds | StockReleased (only if something was held) |
//! | OrderShipped | commits the reservation | StockCommitted; dead letter if the order holds nothing |
//!
//! Delivery is at-least-once; the inbox and the reservation's recorded
//! state make every effect happen once (see [`crate::app::stock`]).

use std::collections::BTreeSet;

use events::plumbing::{Emitter, EventHandler, HandlerError};
use events::{
    Envelope, Event, EventPayload, OrderCancelled, OrderPlaced, OrderRejected, OrderShipped,
};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::app::stock::{CommitOutcome, ReserveOutcome, StockBatch};

/// Handles the order lifecycle events.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderEvents;

impl EventHandler for OrderEvents {
    type Batch = StockBatch;

    fn wants(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            OrderPlaced::EVENT_TYPE
                | OrderRejected::EVENT_TYPE
                | OrderCancelled::EVENT_TYPE
                | OrderShipped::EVENT_TYPE
        )
    }

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<StockBatch, DbErr> {
        let orders: BTreeSet<_> = events.iter().map(|e| e.key()).collect();
        let products: BTreeSet<_> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::OrderPlaced(placed) => Some(placed.lines.iter().map(|l| l.product_id)),
                _ => None,
            })
            .flatten()
            .collect();
        StockBatch::load(txn, &orders, &products).await
    }

    fn apply(
        &self,
        batch: &mut StockBatch,
        envelope: &Envelope,
        emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError> {
        match &envelope.event {
            Event::OrderPlaced(placed) => match batch.reserve(placed)? {
                ReserveOutcome::Reserved(reply) => {
                    emitter.emit(reply);
                }
                ReserveOutcome::Rejected(reply) => {
                    emitter.emit(reply);
                }
                ReserveOutcome::AlreadyDecided(state) => {
                    tracing::info!(order_id = %placed.order_id, %state, "order already decided; nothing to reserve");
                }
            },
            Event::OrderRejected(rejected) => release(batch, emitter, rejected.order_id)?,
            Event::OrderCancelled(cancelled) => release(batch, emitter, cancelled.order_id)?,
            Event::OrderShipped(shipped) => match batch.commit(shipped.order_id)? {
                CommitOutcome::Committed(reply) => {
                    emitter.emit(reply);
                }
                CommitOutcome::AlreadyCommitted => {}
                CommitOutcome::Refused(reason) => return Err(HandlerError::permanent(reason)),
            },
            _ => {}
        }
        Ok(())
    }

    async fn save(&self, txn: &DatabaseTransaction, batch: StockBatch) -> Result<(), DbErr> {
        batch.save(txn).await
    }
}

fn release(
    batch: &mut StockBatch,
    emitter: &mut Emitter<'_>,
    order_id: uuid::Uuid,
) -> Result<(), HandlerError> {
    if let Some(reply) = batch.release(order_id)? {
        emitter.emit(reply);
    }
    Ok(())
}
