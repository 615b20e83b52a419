//! order-svc's copy of inventory-svc's catalog: kept from the `catalog`
//! topic, read to price new orders and by `GET /catalog/products`.
//!
//! The copy is a projection: a product's row is replaced only by a newer
//! catalog version ([`catalog_product::Model::supersedes`]), so a replayed
//! or reordered topic never takes it back in time and needs no inbox.

use events::{Envelope, Event, EventPayload, ProductId, ProductUpserted};
use std::collections::HashMap;

use events::plumbing::{Emitter, EventHandler, HandlerError};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

use crate::error::OrderError;
use crate::persistence::catalog_copy;
use crate::persistence::entities::catalog_product;

/// Keeps the catalog copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogSync;

impl EventHandler for CatalogSync {
    /// The newest state of each product in the batch.
    type Batch = HashMap<ProductId, catalog_product::Model>;

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
        catalog_copy::upsert_many(txn, batch.into_values().collect()).await
    }
}

/// A page of the copy by product id, and the cursor of the next page.
///
/// # Errors
/// A database error.
pub async fn list(
    db: &DatabaseConnection,
    after: Option<ProductId>,
    limit: u64,
) -> Result<(Vec<catalog_product::Model>, Option<ProductId>), OrderError> {
    let rows = catalog_copy::list(db, after, limit + 1).await?;
    Ok(service_kit::pagination::split_page(rows, limit, |p| {
        p.product_id
    }))
}
