//! Repository functions for products, their stock figures and the ledger.
//!
//! Stock changes by hand are single conditional `UPDATE`s: the condition
//! (no stock below zero) is checked by the database under the row lock
//! the update takes, so concurrent reservations, in one process or many,
//! can never take `available` below zero.

use chrono::Utc;
use event_runtime::{find_many_for_update as find_many_locked, save_columns};
use events::ProductId;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use super::entities::{product, product_price, stock_movement};
use crate::domain::{ProductFilter, StockMovementKind};

/// Inserts a product.
///
/// # Errors
/// The database error (a duplicate SKU is a unique violation).
pub async fn insert(conn: &impl ConnectionTrait, model: product::Model) -> Result<(), DbErr> {
    product::Entity::insert(product::ActiveModel::from(model))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// One product.
///
/// # Errors
/// The database error.
pub async fn find(
    conn: &impl ConnectionTrait,
    id: ProductId,
) -> Result<Option<product::Model>, DbErr> {
    product::Entity::find_by_id(id).one(conn).await
}

/// The products among `ids` that exist, by id, locked until the
/// transaction ends.
///
/// # Errors
/// The database error.
pub async fn find_many_for_update(
    conn: &impl ConnectionTrait,
    ids: &[ProductId],
) -> Result<Vec<product::Model>, DbErr> {
    find_many_locked::<product::Entity, _>(conn, product::Column::Id, ids).await
}

/// Saves the stock figures of existing (locked) products, one statement
/// for all.
///
/// # Errors
/// The database error (a figure below zero breaks a `CHECK` constraint).
pub async fn save_stock(
    conn: &impl ConnectionTrait,
    rows: Vec<product::Model>,
) -> Result<(), DbErr> {
    use product::Column as C;
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
) -> Result<Vec<product::Model>, DbErr> {
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
}

/// Applies the set fields of `changes` to the catalog data of product
/// `id`, adds one to its catalog version, and returns the row as it is now.
///
/// # Errors
/// The database error; `RecordNotUpdated` when the product does not exist.
pub async fn update_catalog(
    conn: &impl ConnectionTrait,
    id: ProductId,
    changes: product::ActiveModel,
) -> Result<product::Model, DbErr> {
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
        .ok_or(DbErr::RecordNotUpdated)
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
                WHERE l.product_id = p.id AND r.state = 'RESERVED'), 0) AS BIGINT) AS reserved_by_orders,
            CAST(COALESCE((SELECT SUM(l.quantity) FROM reservation_lines l
                JOIN reservations r ON r.order_id = l.order_id
                WHERE l.product_id = p.id AND r.state = 'COMMITTED'), 0) AS BIGINT) AS committed_by_orders
         FROM products p {filter} ORDER BY p.id"
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
pub async fn record_price(
    conn: &impl ConnectionTrait,
    product: &product::Model,
) -> Result<(), DbErr> {
    let newest = product_price::Entity::find()
        .filter(product_price::Column::ProductId.eq(product.id))
        .order_by_desc(product_price::Column::Id)
        .one(conn)
        .await?;
    if newest.is_some_and(|p| {
        p.unit_price_minor == product.unit_price_minor && p.currency == product.currency
    }) {
        return Ok(());
    }
    product_price::Entity::insert(product_price::ActiveModel {
        product_id: Set(product.id),
        unit_price_minor: Set(product.unit_price_minor),
        currency: Set(product.currency.clone()),
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
) -> Result<Vec<product_price::Model>, DbErr> {
    let mut query =
        product_price::Entity::find().filter(product_price::Column::ProductId.eq(product_id));
    if let Some(before) = before {
        query = query.filter(product_price::Column::Id.lt(before));
    }
    query
        .order_by_desc(product_price::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}
