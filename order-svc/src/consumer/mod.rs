//! order-svc's event handlers.
//!
//! | consumer | consumes | does |
//! |---|---|---|
//! | `saga` | StockReserved, StockRejected (`inventory`); CreditReserved, CustomerRejected (`customers`) | records the reply in the order's timeline and applies it to the saga, emitting OrderConfirmed or OrderRejected when it decides |
//! | `saga` | StockReleased, StockCommitted, CreditReleased, CreditSettled | records them in the timeline |
//! | `catalog` (projection) | ProductUpserted (`catalog`) | keeps the local catalog copy that prices new orders |
//! | `timeline` (rebuild only) | events of `orders`, `inventory`, `customers` that an operator re-drove (`oms replay --copy-to`) | records them in their orders' timelines if missing |
//!
//! Each handler is set-based (see [`EventHandler`]): a batch reads the
//! orders it touches with one locking statement, applies the saga's pure
//! rules in memory, and writes the orders and the timeline entries with one
//! statement each.
//!
//! The timeline is written once, on the hot path, by the code that handles
//! each event (the saga here, the HTTP commands for order-svc's own
//! events). The `timeline` consumer only rebuilds: it skips live records
//! before decoding them. The projections keep no inbox: their writes are
//! idempotent by themselves (a catalog row never goes back in time, a
//! timeline entry is unique by event id), so an operator's replay of their
//! topics rebuilds them.
//!
//! A reply for an order order-svc does not know is dead-lettered: it
//! cannot be applied, and an operator should see it. Duplicates and late
//! replies change nothing (see [`crate::domain::saga`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use events::plumbing::{Emitter, EventHandler, HandlerError};
use events::{
    CreditReleased, CreditReserved, CreditSettled, CustomerRejected, Envelope, Event, EventPayload,
    Participant, ProductUpserted, StockCommitted, StockRejected, StockReleased, StockReserved,
};
use sea_orm::{DatabaseTransaction, DbErr};
use service_kit::Clock;
use uuid::Uuid;

use crate::app::saga::{self, Details, Outcome};
use crate::domain::SagaInput;
use crate::persistence::entities::{catalog_product, order, order_event};
use crate::persistence::{catalog, orders};

/// Applies the participants' replies to the saga.
#[derive(Debug, Clone, Default)]
pub struct SagaReplies {
    /// When the saga decides.
    pub clock: Clock,
}

/// The orders a batch of replies touches, and what it changes.
#[derive(Debug, Default)]
pub struct SagaBatch {
    orders: BTreeMap<Uuid, order::Model>,
    changed: BTreeSet<Uuid>,
    timeline: Vec<order_event::ActiveModel>,
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
        let ids: Vec<Uuid> = events
            .iter()
            .map(|e| e.key())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let orders = orders::find_many_for_update(txn, &ids)
            .await?
            .into_iter()
            .map(|order| (order.id, order))
            .collect();
        Ok(SagaBatch {
            orders,
            ..SagaBatch::default()
        })
    }

    fn apply(
        &self,
        batch: &mut SagaBatch,
        envelope: &Envelope,
        emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError> {
        let order_id = envelope.key();
        let Some(current) = batch.orders.get(&order_id) else {
            return Err(HandlerError::permanent(format!(
                "{} for order {order_id}, which order-svc does not know",
                envelope.event.event_type()
            )));
        };
        if let Event::CreditReserved(reply) = &envelope.event
            && (reply.customer_id != current.customer_id
                || reply.amount.amount_minor != current.total_minor
                || reply.amount.currency.as_str() != current.currency)
        {
            return Err(HandlerError::permanent(format!(
                "CreditReserved for order {order_id} holds {} of customer {}; the order is {} {} \
                 of customer {}",
                reply.amount,
                reply.customer_id,
                current.total_minor,
                current.currency,
                current.customer_id
            )));
        }
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
        let outcome = input
            .map(|input| {
                saga::decide(
                    current.clone(),
                    &input,
                    &Details::default(),
                    self.clock.now(),
                )
            })
            .transpose()
            .map_err(|error| HandlerError::Transient(error.into()))?;
        batch.timeline.push(saga::timeline_entry(envelope));
        match outcome {
            Some(Outcome::Moved { order, event }) => {
                batch.changed.insert(order.id);
                batch.orders.insert(order.id, order);
                if let Some(event) = event {
                    let emitted = emitter.emit(event);
                    batch.timeline.push(saga::timeline_entry(&emitted));
                }
            }
            Some(Outcome::Ignored(order)) => {
                tracing::info!(%order_id, status = order.status, reply = envelope.event.event_type(), "reply changes nothing");
            }
            _ => {}
        }
        Ok(())
    }

    async fn save(&self, txn: &DatabaseTransaction, mut batch: SagaBatch) -> Result<(), DbErr> {
        let changed: Vec<order::Model> = batch
            .changed
            .iter()
            .filter_map(|id| batch.orders.remove(id))
            .collect();
        orders::save_all(txn, changed).await?;
        orders::record_events(txn, batch.timeline).await
    }
}

/// Keeps the catalog copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogSync;

impl EventHandler for CatalogSync {
    /// The newest state of each product in the batch.
    type Batch = HashMap<Uuid, catalog_product::Model>;

    fn wants(&self, event_type: &str) -> bool {
        event_type == ProductUpserted::EVENT_TYPE
    }

    async fn load(
        &self,
        _txn: &DatabaseTransaction,
        _events: &[&Envelope],
    ) -> Result<Self::Batch, DbErr> {
        Ok(HashMap::new())
    }

    fn apply(
        &self,
        batch: &mut Self::Batch,
        envelope: &Envelope,
        _emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError> {
        // Version 2 carries inventory-svc's counter; version 1 rows have none.
        let (product_id, sku, name, unit_price, active, version) = match &envelope.event {
            Event::ProductUpserted(p) => (
                p.product_id,
                &p.sku,
                &p.name,
                &p.unit_price,
                p.active,
                Some(i64::try_from(p.version).unwrap_or(i64::MAX)),
            ),
            Event::ProductUpsertedV1(p) => {
                (p.product_id, &p.sku, &p.name, &p.unit_price, p.active, None)
            }
            _ => return Ok(()),
        };
        let row = catalog_product::Model {
            product_id,
            sku: sku.clone(),
            name: name.clone(),
            unit_price_minor: unit_price.amount_minor,
            currency: unit_price.currency.as_str().to_owned(),
            active,
            version_at: envelope.occurred_at,
            version,
        };
        if batch
            .get(&row.product_id)
            .is_none_or(|known| row.supersedes(known))
        {
            batch.insert(row.product_id, row);
        }
        Ok(())
    }

    async fn save(&self, txn: &DatabaseTransaction, batch: Self::Batch) -> Result<(), DbErr> {
        catalog::upsert_many(txn, batch.into_values().collect()).await
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
    type Batch = (BTreeSet<Uuid>, Vec<order_event::ActiveModel>);

    fn wants(&self, event_type: &str) -> bool {
        event_type != ProductUpserted::EVENT_TYPE
    }

    async fn load(
        &self,
        txn: &DatabaseTransaction,
        events: &[&Envelope],
    ) -> Result<Self::Batch, DbErr> {
        let ids: Vec<Uuid> = events.iter().map(|e| e.key()).collect();
        let known = orders::existing(txn, &ids).await?;
        Ok((known, Vec::new()))
    }

    fn apply(
        &self,
        (known, entries): &mut Self::Batch,
        envelope: &Envelope,
        _emitter: &mut Emitter<'_>,
    ) -> Result<(), HandlerError> {
        if known.contains(&envelope.key()) {
            entries.push(saga::timeline_entry(envelope));
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
