//! inventory-svc's event handlers.
//!
//! | consumes (topic `orders`) | does | emits (topic `inventory`) |
//! |---|---|---|
//! | OrderPlaced | reserves every line or none | StockReserved or StockRejected |
//! | OrderRejected, OrderCancelled | releases what the order holds | StockReleased (only if something was held) |
//! | OrderShipped | commits the reservation | StockCommitted; dead letter if the order holds nothing |
//!
//! Delivery is at-least-once; the inbox and the reservation's recorded
//! state make every effect happen once (see [`crate::stock`]).

use events::plumbing::{EventHandler, HandlerContext, HandlerError};
use events::{Envelope, Event};

use crate::stock::{self, CommitOutcome, ReserveOutcome};

/// Handles the order lifecycle events.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderEvents;

impl EventHandler for OrderEvents {
    fn wants(&self, event: &Event) -> bool {
        matches!(
            event,
            Event::OrderPlaced(_)
                | Event::OrderRejected(_)
                | Event::OrderCancelled(_)
                | Event::OrderShipped(_)
        )
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        envelope: &Envelope,
    ) -> Result<(), HandlerError> {
        match &envelope.event {
            Event::OrderPlaced(placed) => match stock::reserve_order(ctx.txn(), placed).await? {
                ReserveOutcome::Reserved(reply) => {
                    ctx.emit(reply).await?;
                }
                ReserveOutcome::Rejected(reply) => {
                    ctx.emit(reply).await?;
                }
                ReserveOutcome::AlreadyDecided(state) => {
                    tracing::info!(order_id = %placed.order_id, %state, "order already decided; nothing to reserve");
                }
            },
            Event::OrderRejected(rejected) => release(ctx, rejected.order_id).await?,
            Event::OrderCancelled(cancelled) => release(ctx, cancelled.order_id).await?,
            Event::OrderShipped(shipped) => {
                match stock::commit_order(ctx.txn(), shipped.order_id).await? {
                    CommitOutcome::Committed(reply) => {
                        ctx.emit(reply).await?;
                    }
                    CommitOutcome::AlreadyCommitted => {}
                    CommitOutcome::Refused(reason) => return Err(HandlerError::permanent(reason)),
                }
            }
            _ => {}
        }
        Ok(())
    }
}

async fn release(ctx: &mut HandlerContext<'_>, order_id: uuid::Uuid) -> Result<(), HandlerError> {
    if let Some(reply) = stock::release_order(ctx.txn(), order_id).await? {
        ctx.emit(reply).await?;
    }
    Ok(())
}
