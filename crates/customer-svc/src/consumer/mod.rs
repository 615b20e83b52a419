//! customer-svc's event handlers.
//!
//! | consumes (topic `orders`) | does | emits (topic `customers`) |
//! |---|---|---|
//! | OrderPlaced | checks the customer exists and is active, holds the total if it fits the available credit | CreditReserved or CustomerRejected (UNKNOWN_CUSTOMER, CUSTOMER_SUSPENDED, CREDIT_LIMIT_EXCEEDED) |
//! | OrderRejected, OrderCancelled | releases what the order holds | CreditReleased (only if something was held) |
//! | OrderDelivered | settles the held amount | CreditSettled; dead letter if the order holds nothing |
//!
//! Delivery is at-least-once; the inbox and the reservation's recorded
//! state make every effect happen once (see [`crate::credit`]).

use events::plumbing::{EventHandler, HandlerContext, HandlerError};
use events::{Envelope, Event};

use crate::credit::{self, ReserveOutcome, SettleOutcome};

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
                | Event::OrderDelivered(_)
        )
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        envelope: &Envelope,
    ) -> Result<(), HandlerError> {
        match &envelope.event {
            Event::OrderPlaced(placed) => match credit::reserve_credit(ctx.txn(), placed).await? {
                ReserveOutcome::Reserved(reply) => {
                    ctx.emit(reply).await?;
                }
                ReserveOutcome::Rejected(reply) => {
                    ctx.emit(reply).await?;
                }
                ReserveOutcome::AlreadyDecided(state) => {
                    tracing::info!(order_id = %placed.order_id, %state, "order already decided; nothing to hold");
                }
            },
            Event::OrderRejected(rejected) => release(ctx, rejected.order_id).await?,
            Event::OrderCancelled(cancelled) => release(ctx, cancelled.order_id).await?,
            Event::OrderDelivered(delivered) => {
                match credit::settle_credit(ctx.txn(), delivered.order_id).await? {
                    SettleOutcome::Settled(reply) => {
                        ctx.emit(reply).await?;
                    }
                    SettleOutcome::AlreadySettled => {}
                    SettleOutcome::Refused(reason) => return Err(HandlerError::permanent(reason)),
                }
            }
            _ => {}
        }
        Ok(())
    }
}

async fn release(ctx: &mut HandlerContext<'_>, order_id: uuid::Uuid) -> Result<(), HandlerError> {
    if let Some(reply) = credit::release_credit(ctx.txn(), order_id).await? {
        ctx.emit(reply).await?;
    }
    Ok(())
}
