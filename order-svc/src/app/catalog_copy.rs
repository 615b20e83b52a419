//! order-svc's copy of inventory-svc's catalog: kept from the `catalog`
//! topic, read to price new orders and by `GET /catalog/products`.
//!
//! The copy is a projection: a product's row is replaced only by a newer
//! catalog version ([`crate::domain::CatalogVersion::supersedes`]), so a replayed
//! or reordered topic never takes it back in time and needs no inbox.

use events::{Envelope, EventPayload, ProductId, ProductUpserted};
use std::collections::HashMap;

use event_runtime::{Emitter, EventHandler, HandlerError};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

use crate::domain::CatalogProduct;
use crate::error::OrderError;
use crate::persistence::catalog_copy;

/// Keeps the catalog copy.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogSync;

impl EventHandler for CatalogSync {
    /// The newest state of each product in the batch.
    type Batch = HashMap<ProductId, CatalogProduct>;

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
        let Some(product) = CatalogProduct::published_in(envelope) else {
            return Ok(());
        };
        if batch
            .get(&product.product_id)
            .is_none_or(|known| product.version.supersedes(&known.version))
        {
            batch.insert(product.product_id, product);
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
) -> Result<(Vec<CatalogProduct>, Option<ProductId>), OrderError> {
    let rows = catalog_copy::list(db, after, limit + 1).await?;
    Ok(service_kit::pagination::split_page(rows, limit, |p| {
        p.product_id
    }))
}
