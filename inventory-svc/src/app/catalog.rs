//! Product commands and queries behind the HTTP API. Every change to a
//! product's catalog data writes a ProductUpserted event to the outbox in
//! the same transaction, so that the catalog topic always converges to the
//! products table. Each such change adds one to the product's
//! `catalog_version` under its row lock, and the event carries it: copies
//! keep the highest version, not the latest clock.
//!
//! Every price a product has had is kept with the time it took effect
//! (`product_prices`), written in the transaction that sets it. Orders
//! keep the price they were placed at in their own lines, whatever the
//! catalog does later.

use chrono::{SubsecRound, Utc};
use event_runtime::{Outbox, begin_write};
use events::ProductId;
use sea_orm::DatabaseConnection;

use crate::domain::{
    NewProduct, PricePoint, Product, ProductFilter, ProductPatch, StockAdjustment,
    StockMovementKind,
};
use crate::error::InventoryError;
use crate::persistence::products::{self, StockBooks};

/// Creates a product with its initial stock.
///
/// # Errors
/// [`InventoryError::SkuTaken`], or a database error.
pub async fn create_product(
    db: &DatabaseConnection,
    outbox: &Outbox,
    new: NewProduct,
) -> Result<Product, InventoryError> {
    let product = Product::create(new, Utc::now());
    let txn = begin_write(db).await?;
    if let Err(error) = products::insert(&txn, &product).await {
        return Err(if event_runtime::database::is_unique_violation(&error) {
            InventoryError::SkuTaken(product.sku.as_str().to_owned())
        } else {
            error.into()
        });
    }
    products::record_movement(
        &txn,
        product.id,
        StockMovementKind::Initial,
        product.stock.available,
        "initial stock",
    )
    .await?;
    products::record_price(&txn, &product).await?;
    outbox
        .enqueue(&txn, &outbox.envelope(product.catalog_event()))
        .await?;
    outbox.commit(txn).await?;
    Ok(product)
}

/// Whether `quantity` units of a product can be reserved now: the product
/// and the answer (active, and that many units available).
///
/// # Errors
/// [`InventoryError::ProductNotFound`], or a database error.
pub async fn availability(
    db: &DatabaseConnection,
    id: ProductId,
    quantity: u32,
) -> Result<(Product, bool), InventoryError> {
    let product = get_product(db, id).await?;
    let reservable = product.can_reserve(i64::from(quantity));
    Ok((product, reservable))
}

/// A page of a product's prices, newest first, and the cursor of the next.
///
/// # Errors
/// [`InventoryError::ProductNotFound`], or a database error.
pub async fn price_history(
    db: &DatabaseConnection,
    id: ProductId,
    before: Option<i64>,
    limit: u64,
) -> Result<(Vec<PricePoint>, Option<i64>), InventoryError> {
    get_product(db, id).await?;
    let (page, next) = service_kit::pagination::split_page(
        products::prices(db, id, before, limit + 1).await?,
        limit,
        |p| p.id,
    );
    Ok((page, next))
}

/// Changes a product's name, price or active flag; a new price joins the
/// price history with the time it took effect.
///
/// # Errors
/// [`InventoryError::ProductNotFound`], or a database error.
pub async fn update_product(
    db: &DatabaseConnection,
    outbox: &Outbox,
    id: ProductId,
    patch: ProductPatch,
) -> Result<Product, InventoryError> {
    let txn = begin_write(db).await?;
    // The update returns the product as committed transactions left it, so
    // the event carries its whole current state, not just this patch.
    let updated = products::update_catalog(&txn, id, &patch, Utc::now().trunc_subsecs(6))
        .await?
        .ok_or(InventoryError::ProductNotFound(id))?;
    if patch.unit_price.is_some() {
        products::record_price(&txn, &updated).await?;
    }
    outbox
        .enqueue(&txn, &outbox.envelope(updated.catalog_event()))
        .await?;
    outbox.commit(txn).await?;
    Ok(updated)
}

/// Restocks or corrects a product's available stock, recording the reason.
///
/// # Errors
/// [`InventoryError::InsufficientStock`] when available stock would go
/// below zero, [`InventoryError::ProductNotFound`], or a database error.
pub async fn adjust_stock(
    db: &DatabaseConnection,
    id: ProductId,
    adjustment: StockAdjustment,
) -> Result<Product, InventoryError> {
    let txn = begin_write(db).await?;
    if !products::adjust_available(&txn, id, adjustment.delta).await? {
        let product = products::find(&txn, id)
            .await?
            .ok_or(InventoryError::ProductNotFound(id))?;
        return Err(InventoryError::InsufficientStock {
            product_id: id,
            available: product.stock.available,
            delta: adjustment.delta,
        });
    }
    products::record_movement(
        &txn,
        id,
        StockMovementKind::Adjustment,
        adjustment.delta,
        &adjustment.reason,
    )
    .await?;
    let product = products::find(&txn, id)
        .await?
        .ok_or(InventoryError::ProductNotFound(id))?;
    txn.commit().await?;
    Ok(product)
}

/// One product.
///
/// # Errors
/// [`InventoryError::ProductNotFound`], or a database error.
pub async fn get_product(
    db: &DatabaseConnection,
    id: ProductId,
) -> Result<Product, InventoryError> {
    products::find(db, id)
        .await?
        .ok_or(InventoryError::ProductNotFound(id))
}

/// A page of products and the cursor of the next page, if there is one.
///
/// # Errors
/// A database error.
pub async fn list_products(
    db: &DatabaseConnection,
    filter: &ProductFilter,
    after: Option<ProductId>,
    limit: u64,
) -> Result<(Vec<Product>, Option<ProductId>), InventoryError> {
    let (page, next) = service_kit::pagination::split_page(
        products::list(db, filter, after, limit + 1).await?,
        limit,
        |p| p.id,
    );
    Ok((page, next))
}

/// The conservation figures of every product.
///
/// # Errors
/// A database error.
pub async fn stock_books(db: &DatabaseConnection) -> Result<Vec<StockBooks>, InventoryError> {
    Ok(products::stock_books(db, None).await?)
}
