//! customer-svc's event handlers.
//!
//! | consumes (topic `orders`) | does | emits (topic `customers`) |
//! |---|---|---|
//! | OrderPlaced | checks the customer exists and is active, holds the total if it fits the available credit | CreditReserved or CustomerRejected (UNKNOWN_CUSTOMER, CUSTOMER_SUSPENDED, CREDIT_LIMIT_EXCEEDED) |
//! | OrderRejected, OrderCancelled | releases what the order holds | CreditReleased (only if something was held) |
//! | OrderDelivered | settles the held amount | CreditSettled; dead letter if the order holds nothing |
//!
//! Delivery is at-least-once; the inbox and the reservation's recorded
//! state make every effect happen once (see [`crate::app::credit`]).

use std::collections::BTreeSet;

use events::plumbing::{Emitter, EventHandler, HandlerError};
use events::{
    Envelope, Event, EventPayload, OrderCancelled, OrderDelivered, OrderPlaced, OrderRejected,
};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::app::credit::{CreditBatch, ReserveOutcome, SettleOutcome};

/// Handles the order lifecycle events.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderEvents;

impl EventHandler for OrderEvents {
    type Batch = CreditBatch;

    fn wants(&self, event_type: &str) -> bool {
        matches!(
            event_type,
            OrderPlaced::EVENT_TYPE
                | OrderRejected::EVENT_TYPE
                | OrderCancelled::EVENT_TYPE
                | OrderDelivered::EVENT_TYPE
        )
    }

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<CreditBatch, DbErr> {
        let orders: BTreeSet<_> = events.iter().map(|e| e.key()).collect();
        let ordering: BTreeSet<_> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::OrderPlaced(placed) => Some(placed.customer_id),
                _ => None,
            })
            .collect();
        CreditBatch::load(txn, &orders, &ordering).await
    }

    fn apply(
        &self,
        batch: &mut CreditBatch,
        envelope: &Envelope,
        emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError> {
        match &envelope.event {
            Event::OrderPlaced(placed) => match batch.reserve(placed) {
                ReserveOutcome::Reserved(reply) => {
                    emitter.emit(reply);
                }
                ReserveOutcome::Rejected(reply) => {
                    emitter.emit(reply);
                }
                ReserveOutcome::AlreadyDecided(state) => {
                    tracing::info!(order_id = %placed.order_id, %state, "order already decided; nothing to hold");
                }
            },
            Event::OrderRejected(rejected) => release(batch, emitter, rejected.order_id)?,
            Event::OrderCancelled(cancelled) => release(batch, emitter, cancelled.order_id)?,
            Event::OrderDelivered(delivered) => match batch.settle(delivered.order_id)? {
                SettleOutcome::Settled(reply) => {
                    emitter.emit(reply);
                }
                SettleOutcome::AlreadySettled => {}
                SettleOutcome::Refused(reason) => return Err(HandlerError::permanent(reason)),
            },
            _ => {}
        }
        Ok(())
    }

    async fn save(&self, txn: &DatabaseTransaction, batch: CreditBatch) -> Result<(), DbErr> {
        batch.save(txn).await
    }
}

fn release(
    batch: &mut CreditBatch,
    emitter: &mut Emitter<'_>,
    order_id: uuid::Uuid,
) -> Result<(), HandlerError> {
    if let Some(reply) = batch.release(order_id)? {
        emitter.emit(reply);
    }
    Ok(())
}
