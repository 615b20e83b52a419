//! Repository functions for products, their stock figures and the ledger.
//!
//! Stock changes by hand are single conditional `UPDATE`s: the condition
//! (no stock below zero) is checked by the database under the row lock
//! the update takes, so concurrent reservations, in one process or many,
//! can never take `available` below zero.

use chrono::{DateTime, Utc};
use event_runtime::{Phase, find_many_for_update as find_many_locked, save_columns};
use events::{Money, ProductId};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use super::entities::{product, product_price, stock_movement};
use crate::domain::{
    PricePoint, Product, ProductFilter, ProductName, ProductPatch, RESERVATION_PHASES, Sku,
    StockLevels, StockMovementKind,
};

/// A stored value that breaks its type's rule.
fn corrupt(what: &str, id: ProductId, error: impl std::fmt::Display) -> DbErr {
    DbErr::Type(format!(
        "product {id}: the stored {what} is invalid: {error}"
    ))
}

/// The product a row holds.
///
/// # Errors
/// [`DbErr::Type`] when a stored value breaks its type's rule.
fn product_of(row: product::Model) -> Result<Product, DbErr> {
    let id = row.id;
    Ok(Product {
        id,
        sku: Sku::parse(&row.sku).map_err(|e| corrupt("SKU", id, e))?,
        name: ProductName::parse(&row.name).map_err(|e| corrupt("name", id, e))?,
        unit_price: Money::parse(row.unit_price_minor, &row.currency)
            .map_err(|e| corrupt("price", id, e))?,
        active: row.active,
        stock: StockLevels {
            available: row.available,
            reserved: row.reserved,
            committed: row.committed,
        },
        catalog_version: row.catalog_version,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The row that holds `product`.
fn row_of(product: &Product) -> product::Model {
    product::Model {
        id: product.id,
        sku: product.sku.as_str().to_owned(),
        name: product.name.as_str().to_owned(),
        unit_price_minor: product.unit_price.amount_minor(),
        currency: product.unit_price.currency().as_str().to_owned(),
        active: product.active,
        available: product.stock.available,
        reserved: product.stock.reserved,
        committed: product.stock.committed,
        created_at: product.created_at,
        updated_at: product.updated_at,
        catalog_version: product.catalog_version,
    }
}

fn products_of(rows: Vec<product::Model>) -> Result<Vec<Product>, DbErr> {
    rows.into_iter().map(product_of).collect()
}

/// Inserts a product.
///
/// # Errors
/// The database error (a duplicate SKU is a unique violation).
pub async fn insert(conn: &impl ConnectionTrait, product: &Product) -> Result<(), DbErr> {
    product::Entity::insert(product::ActiveModel::from(row_of(product)))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// One product.
///
/// # Errors
/// The database error.
pub async fn find(conn: &impl ConnectionTrait, id: ProductId) -> Result<Option<Product>, DbErr> {
    product::Entity::find_by_id(id)
        .one(conn)
        .await?
        .map(product_of)
        .transpose()
}

/// The products among `ids` that exist, by id, locked until the
/// transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_many_for_update(
    conn: &impl ConnectionTrait,
    ids: &[ProductId],
) -> Result<Vec<Product>, DbErr> {
    find_many_locked::<product::Entity, _>(conn, product::Column::Id, ids)
        .await
        .and_then(products_of)
}

/// Saves the stock figures of existing (locked) products, one statement
/// for all.
///
/// # Errors
/// The database error (a figure below zero breaks a `CHECK` constraint).
pub async fn save_stock<'a>(
    conn: &impl ConnectionTrait,
    products: impl IntoIterator<Item = &'a Product>,
) -> Result<(), DbErr> {
    use product::Column as C;
    let rows = products.into_iter().map(row_of).collect();
    let columns = [C::Available, C::Reserved, C::Committed, C::UpdatedAt];
    save_columns::<product::ActiveModel>(conn, rows, C::Id, columns).await
}

/// Up to `limit` products after `after` (by id), matching `filter`.
///
/// # Errors
/// The database error.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &ProductFilter,
    after: Option<ProductId>,
    limit: u64,
) -> Result<Vec<Product>, DbErr> {
    let mut condition = Condition::all();
    if let Some(active) = filter.active {
        condition = condition.add(product::Column::Active.eq(active));
    }
    if let Some(sku) = &filter.sku {
        condition = condition.add(product::Column::Sku.eq(sku.as_str()));
    }
    if let Some(after) = after {
        condition = condition.add(product::Column::Id.gt(after));
    }
    product::Entity::find()
        .filter(condition)
        .order_by_asc(product::Column::Id)
        .limit(limit)
        .all(conn)
        .await
        .and_then(products_of)
}

/// Applies `patch` to the catalog data of product `id` at `now`, adds one
/// to its catalog version, and returns the product as it is now (as
/// committed transactions left it, not just this patch); `None` when
/// there is no such product.
///
/// # Errors
/// The database error.
pub async fn update_catalog(
    conn: &impl ConnectionTrait,
    id: ProductId,
    patch: &ProductPatch,
    now: DateTime<Utc>,
) -> Result<Option<Product>, DbErr> {
    let mut changes = product::ActiveModel::default();
    if let Some(name) = &patch.name {
        changes.name = Set(name.as_str().to_owned());
    }
    if let Some(price) = &patch.unit_price {
        changes.unit_price_minor = Set(price.amount_minor());
        changes.currency = Set(price.currency().as_str().to_owned());
    }
    if let Some(active) = patch.active {
        changes.active = Set(active);
    }
    changes.updated_at = Set(now);
    product::Entity::update_many()
        .set(changes)
        .col_expr(
            product::Column::CatalogVersion,
            Expr::col(product::Column::CatalogVersion).add(1),
        )
        .filter(product::Column::Id.eq(id))
        .exec_with_returning(conn)
        .await?
        .into_iter()
        .next()
        .map(product_of)
        .transpose()
}

/// Adds `delta` to available stock unless that would take it below zero.
/// Returns whether it did.
///
/// # Errors
/// The database error.
pub async fn adjust_available(
    conn: &impl ConnectionTrait,
    id: ProductId,
    delta: i64,
) -> Result<bool, DbErr> {
    let result = product::Entity::update_many()
        .col_expr(
            product::Column::Available,
            Expr::col(product::Column::Available).add(delta),
        )
        .col_expr(product::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(product::Column::Id.eq(id))
        .filter(Expr::col(product::Column::Available).add(delta).gte(0))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Writes a ledger entry.
///
/// # Errors
/// The database error.
pub async fn record_movement(
    conn: &impl ConnectionTrait,
    product_id: ProductId,
    kind: StockMovementKind,
    delta: i64,
    reason: &str,
) -> Result<(), DbErr> {
    stock_movement::Entity::insert(stock_movement::ActiveModel {
        product_id: Set(product_id),
        kind: Set(kind.as_str().to_owned()),
        delta: Set(delta),
        reason: Set(reason.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// One product's figures for the conservation check.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct StockBooks {
    /// The product.
    pub product_id: ProductId,
    /// Its SKU.
    pub sku: String,
    /// Sum of the ledger: initial stock plus adjustments.
    pub ledger_total: i64,
    /// Units available.
    pub available: i64,
    /// Units reserved, per the product row.
    pub reserved: i64,
    /// Units committed, per the product row.
    pub committed: i64,
    /// Units in RESERVED reservations' lines.
    pub reserved_by_orders: i64,
    /// Units in COMMITTED reservations' lines.
    pub committed_by_orders: i64,
}

impl StockBooks {
    /// Whether the books balance: ledger = available + reserved + committed,
    /// and the product's reserved/committed figures match the reservations.
    pub fn balanced(&self) -> bool {
        self.ledger_total == self.available + self.reserved + self.committed
            && self.reserved == self.reserved_by_orders
            && self.committed == self.committed_by_orders
            && self.available >= 0
    }
}

/// The conservation figures of every product (or one).
///
/// # Errors
/// The database error.
pub async fn stock_books(
    conn: &impl ConnectionTrait,
    product_id: Option<ProductId>,
) -> Result<Vec<StockBooks>, DbErr> {
    let backend = conn.get_database_backend();
    let filter = if product_id.is_some() {
        match backend {
            DbBackend::Postgres => "WHERE p.id = $1",
            _ => "WHERE p.id = ?",
        }
    } else {
        ""
    };
    let sql = format!(
        "SELECT p.id AS product_id, p.sku, p.available, p.reserved, p.committed,
            CAST(COALESCE((SELECT SUM(m.delta) FROM stock_movements m WHERE m.product_id = p.id), 0) AS BIGINT)
                AS ledger_total,
            CAST(COALESCE((SELECT SUM(l.quantity) FROM reservation_lines l
                JOIN reservations r ON r.order_id = l.order_id
                WHERE l.product_id = p.id AND r.state = '{held}'), 0) AS BIGINT) AS reserved_by_orders,
            CAST(COALESCE((SELECT SUM(l.quantity) FROM reservation_lines l
                JOIN reservations r ON r.order_id = l.order_id
                WHERE l.product_id = p.id AND r.state = '{finished}'), 0) AS BIGINT) AS committed_by_orders
         FROM products p {filter} ORDER BY p.id",
        held = RESERVATION_PHASES.name(Phase::Held),
        finished = RESERVATION_PHASES.name(Phase::Finished),
    );
    let values: Vec<sea_orm::Value> = product_id.into_iter().map(Into::into).collect();
    StockBooks::find_by_statement(Statement::from_sql_and_values(backend, sql, values))
        .all(conn)
        .await
}

/// Records `product`'s current price as its newest price row, unless the
/// newest row has that price already.
///
/// # Errors
/// The database error.
pub async fn record_price(conn: &impl ConnectionTrait, product: &Product) -> Result<(), DbErr> {
    let newest = product_price::Entity::find()
        .filter(product_price::Column::ProductId.eq(product.id))
        .order_by_desc(product_price::Column::Id)
        .one(conn)
        .await?;
    let (amount_minor, currency) = (
        product.unit_price.amount_minor(),
        product.unit_price.currency().as_str(),
    );
    if newest.is_some_and(|p| p.unit_price_minor == amount_minor && p.currency == currency) {
        return Ok(());
    }
    product_price::Entity::insert(product_price::ActiveModel {
        product_id: Set(product.id),
        unit_price_minor: Set(amount_minor),
        currency: Set(currency.to_owned()),
        effective_at: Set(product.updated_at),
        catalog_version: Set(product.catalog_version),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Up to `limit` prices of a product, newest first, older than the row
/// `before` (a row id).
///
/// # Errors
/// The database error.
pub async fn prices(
    conn: &impl ConnectionTrait,
    product_id: ProductId,
    before: Option<i64>,
    limit: u64,
) -> Result<Vec<PricePoint>, DbErr> {
    let mut query =
        product_price::Entity::find().filter(product_price::Column::ProductId.eq(product_id));
    if let Some(before) = before {
        query = query.filter(product_price::Column::Id.lt(before));
    }
    query
        .order_by_desc(product_price::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| {
            Ok(PricePoint {
                id: row.id,
                unit_price: Money::parse(row.unit_price_minor, &row.currency)
                    .map_err(|e| corrupt("price history", product_id, e))?,
                effective_at: row.effective_at,
                catalog_version: row.catalog_version,
            })
        })
        .collect()
}
