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
use events::{Money, ProductId, ProductUpserted};
use sea_orm::{ActiveValue::Set, DatabaseConnection, DbErr};

use crate::domain::ProductFilter;
use crate::domain::{NewProduct, ProductPatch, StockAdjustment, StockMovementKind};
use crate::error::InventoryError;
use crate::persistence::entities::{product, product_price};
use crate::persistence::products::{self, StockBooks};

/// Creates a product with its initial stock.
///
/// # Errors
/// [`InventoryError::SkuTaken`], or a database error.
pub async fn create_product(
    db: &DatabaseConnection,
    outbox: &Outbox,
    new: NewProduct,
) -> Result<product::Model, InventoryError> {
    // Microseconds: what the database keeps, so the answer equals later reads.
    let now = Utc::now().trunc_subsecs(6);
    let model = product::Model {
        id: ProductId::generate(),
        sku: new.sku.as_str().to_owned(),
        name: new.name.as_str().to_owned(),
        unit_price_minor: new.unit_price.amount_minor(),
        currency: new.unit_price.currency().as_str().to_owned(),
        active: new.active,
        available: new.initial_stock,
        reserved: 0,
        committed: 0,
        created_at: now,
        updated_at: now,
        catalog_version: 1,
    };
    let txn = begin_write(db).await?;
    if let Err(error) = products::insert(&txn, model.clone()).await {
        return Err(if InventoryError::is_unique_violation(&error) {
            InventoryError::SkuTaken(model.sku)
        } else {
            error.into()
        });
    }
    products::record_movement(
        &txn,
        model.id,
        StockMovementKind::Initial,
        new.initial_stock,
        "initial stock",
    )
    .await?;
    products::record_price(&txn, &model).await?;
    outbox
        .enqueue(&txn, &outbox.envelope(catalog_event(&model)?))
        .await?;
    outbox.commit(txn).await?;
    Ok(model)
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
) -> Result<(product::Model, bool), InventoryError> {
    let product = get_product(db, id).await?;
    let reservable = product.active && product.available >= i64::from(quantity);
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
) -> Result<(Vec<product_price::Model>, Option<i64>), InventoryError> {
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
) -> Result<product::Model, InventoryError> {
    let txn = begin_write(db).await?;
    let price_changes = patch.unit_price.is_some();
    let mut changes = product::ActiveModel::default();
    if let Some(name) = patch.name {
        changes.name = Set(name.as_str().to_owned());
    }
    if let Some(price) = patch.unit_price {
        changes.unit_price_minor = Set(price.amount_minor());
        changes.currency = Set(price.currency().as_str().to_owned());
    }
    if let Some(active) = patch.active {
        changes.active = Set(active);
    }
    changes.updated_at = Set(Utc::now());
    // The update returns the row as committed transactions left it, so the
    // event carries the product's whole current state, not just this patch.
    let updated = match products::update_catalog(&txn, id, changes).await {
        Ok(model) => model,
        Err(DbErr::RecordNotUpdated) => return Err(InventoryError::ProductNotFound(id)),
        Err(error) => return Err(error.into()),
    };
    if price_changes {
        products::record_price(&txn, &updated).await?;
    }
    outbox
        .enqueue(&txn, &outbox.envelope(catalog_event(&updated)?))
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
) -> Result<product::Model, InventoryError> {
    let txn = begin_write(db).await?;
    if !products::adjust_available(&txn, id, adjustment.delta).await? {
        let product = products::find(&txn, id)
            .await?
            .ok_or(InventoryError::ProductNotFound(id))?;
        return Err(InventoryError::InsufficientStock {
            product_id: id,
            available: product.available,
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
) -> Result<product::Model, InventoryError> {
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
) -> Result<(Vec<product::Model>, Option<ProductId>), InventoryError> {
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

/// The unit price of a stored product.
pub fn unit_price(product: &product::Model) -> Result<Money, InventoryError> {
    stored_price(product.unit_price_minor, &product.currency)
}

/// A price as stored: minor units and currency.
///
/// # Errors
/// When the stored figures are corrupt.
pub fn stored_price(amount_minor: i64, currency: &str) -> Result<Money, InventoryError> {
    Money::parse(amount_minor, currency)
        .map_err(|e| InventoryError::Database(DbErr::Custom(format!("stored price: {e}"))))
}

fn catalog_event(product: &product::Model) -> Result<ProductUpserted, InventoryError> {
    Ok(ProductUpserted {
        product_id: product.id,
        sku: product.sku.clone(),
        name: product.name.clone(),
        unit_price: unit_price(product)?,
        active: product.active,
        version: u64::try_from(product.catalog_version.max(1)).unwrap_or(1),
    })
}
