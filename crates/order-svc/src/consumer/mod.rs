//! order-svc's event handlers.
//!
//! | consumer | consumes | does |
//! |---|---|---|
//! | `saga` | StockReserved, StockRejected (`inventory`); CreditReserved, CustomerRejected (`customers`) | records the reply in the order's timeline and applies it to the saga, emitting OrderConfirmed or OrderRejected when it decides |
//! | `saga` | StockReleased, StockCommitted, CreditReleased, CreditSettled | records them in the timeline |
//! | `catalog` (projection) | ProductUpserted (`catalog`) | keeps the local catalog copy that prices new orders |
//! | `timeline` (projection) | every event of `orders`, `inventory`, `customers` | records it in its order's timeline if missing |
//!
//! The projections keep no inbox: their writes are idempotent by themselves
//! (a catalog row never goes back in time, a timeline entry is unique by
//! event id), so an operator's replay of their topics rebuilds them.
//!
//! A reply for an order order-svc does not know is dead-lettered: it
//! cannot be applied, and an operator should see it. Duplicates and late
//! replies change nothing (see [`crate::domain::saga`]).

use events::plumbing::{EventHandler, HandlerContext, HandlerError};
use events::{Envelope, Event, Participant};

use crate::domain::SagaInput;
use crate::persistence::entities::catalog_product;
use crate::persistence::{catalog, orders};
use crate::saga::{self, Details, Outcome};

/// Applies the participants' replies to the saga.
#[derive(Debug, Clone, Copy, Default)]
pub struct SagaReplies;

impl EventHandler for SagaReplies {
    fn wants(&self, event: &Event) -> bool {
        matches!(
            event,
            Event::StockReserved(_)
                | Event::StockRejected(_)
                | Event::StockReleased(_)
                | Event::StockCommitted(_)
                | Event::CreditReserved(_)
                | Event::CustomerRejected(_)
                | Event::CreditReleased(_)
                | Event::CreditSettled(_)
        )
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        envelope: &Envelope,
    ) -> Result<(), HandlerError> {
        let order_id = envelope.key();
        let input = match &envelope.event {
            Event::StockReserved(_) => Some(SagaInput::Reserved(Participant::Inventory)),
            Event::CreditReserved(_) => Some(SagaInput::Reserved(Participant::Customer)),
            Event::StockRejected(e) => {
                Some(SagaInput::Refused(Participant::Inventory, e.reason.clone()))
            }
            Event::CustomerRejected(e) => {
                Some(SagaInput::Refused(Participant::Customer, e.detail.clone()))
            }
            _ => None,
        };
        if orders::find(ctx.txn(), order_id).await?.is_none() {
            return Err(HandlerError::permanent(format!(
                "{} for order {order_id}, which order-svc does not know",
                envelope.event.event_type()
            )));
        }
        orders::record_event(
            ctx.txn(),
            order_id,
            envelope,
            saga::reason_of(&envelope.event),
        )
        .await?;
        let Some(input) = input else { return Ok(()) };
        match saga::apply(ctx.txn(), order_id, &input, &Details::default()).await? {
            Outcome::Moved {
                event: Some(event),
                order,
            } => {
                let emitted = ctx.emit(event).await?;
                orders::record_event(
                    ctx.txn(),
                    order.id,
                    &emitted,
                    saga::reason_of(&emitted.event),
                )
                .await?;
            }
            Outcome::Ignored(order) => {
                tracing::info!(%order_id, status = order.status, reply = envelope.event.event_type(), "reply changes nothing");
            }
            _ => {}
        }
        Ok(())
    }
}

/// Keeps the catalog copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogSync;

impl EventHandler for CatalogSync {
    fn wants(&self, event: &Event) -> bool {
        matches!(event, Event::ProductUpserted(_))
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        envelope: &Envelope,
    ) -> Result<(), HandlerError> {
        if let Event::ProductUpserted(product) = &envelope.event {
            catalog::upsert(
                ctx.txn(),
                catalog_product::Model {
                    product_id: product.product_id,
                    sku: product.sku.clone(),
                    name: product.name.clone(),
                    unit_price_minor: product.unit_price.amount_minor,
                    currency: product.unit_price.currency.as_str().to_owned(),
                    active: product.active,
                    version_at: envelope.occurred_at,
                },
            )
            .await?;
        }
        Ok(())
    }
}

/// Rebuilds order timelines from the topics. The saga records events in the
/// timeline as it goes; this projection fills in whatever is missing, for
/// example after an operator replays the topics into an emptied timeline.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimelineProjection;

impl EventHandler for TimelineProjection {
    fn wants(&self, event: &Event) -> bool {
        !matches!(event, Event::ProductUpserted(_))
    }

    async fn handle(
        &self,
        ctx: &mut HandlerContext<'_>,
        envelope: &Envelope,
    ) -> Result<(), HandlerError> {
        let order_id = envelope.key();
        if orders::find(ctx.txn(), order_id).await?.is_some() {
            orders::record_event(
                ctx.txn(),
                order_id,
                envelope,
                saga::reason_of(&envelope.event),
            )
            .await?;
        }
        Ok(())
    }
}
