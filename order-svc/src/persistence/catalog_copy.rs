//! Repository functions for the catalog copy.

use event_runtime::{key_chunks, statement_chunks};
use events::ProductId;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::catalog_product;
use crate::domain::{CatalogProduct, CatalogVersion};

/// The product a row holds.
///
/// # Errors
/// [`DbErr::Type`] when its price breaks the contract's rule.
fn product_of(row: catalog_product::Model) -> Result<CatalogProduct, DbErr> {
    Ok(CatalogProduct {
        unit_price: events::Money::parse(row.unit_price_minor, &row.currency).map_err(|e| {
            DbErr::Type(format!(
                "product {}: the stored price is invalid: {e}",
                row.product_id
            ))
        })?,
        product_id: row.product_id,
        sku: row.sku,
        name: row.name,
        active: row.active,
        version: CatalogVersion {
            at: row.version_at,
            number: row.version,
        },
    })
}

/// The row that holds `product`.
fn row_of(product: CatalogProduct) -> catalog_product::Model {
    catalog_product::Model {
        product_id: product.product_id,
        sku: product.sku,
        name: product.name,
        unit_price_minor: product.unit_price.amount_minor(),
        currency: product.unit_price.currency().as_str().to_owned(),
        active: product.active,
        version_at: product.version.at,
        version: product.version.number,
    }
}

/// Stores each product's state unless a newer one is stored already
/// (by catalog version, see [`crate::domain::CatalogVersion::supersedes`]), so
/// that a replayed or reordered catalog never goes back in time; one
/// statement for all (each product at most once).
///
/// # Errors
/// The database error.
pub async fn upsert_many(
    conn: &impl ConnectionTrait,
    products: Vec<CatalogProduct>,
) -> Result<(), DbErr> {
    use catalog_product::Column as C;
    if products.is_empty() {
        return Ok(());
    }
    // The same rule as `CatalogVersion::supersedes`.
    let stored = |column: C| Expr::col((catalog_product::Entity, column));
    let incoming = |column: C| Expr::col((Alias::new("excluded"), column));
    let newer = incoming(C::Version)
        .is_not_null()
        .and(
            stored(C::Version)
                .is_null()
                .or(stored(C::Version).lte(incoming(C::Version))),
        )
        .or(incoming(C::Version)
            .is_null()
            .and(stored(C::Version).is_null())
            .and(stored(C::VersionAt).lte(incoming(C::VersionAt))));
    let upsert = OnConflict::column(C::ProductId)
        .update_columns([
            C::Sku,
            C::Name,
            C::UnitPriceMinor,
            C::Currency,
            C::Active,
            C::VersionAt,
            C::Version,
        ])
        .action_and_where(newer)
        .to_owned();
    let rows: Vec<catalog_product::Model> = products.into_iter().map(row_of).collect();
    for chunk in statement_chunks::<catalog_product::Entity, _>(rows) {
        catalog_product::Entity::insert_many(
            chunk.into_iter().map(catalog_product::ActiveModel::from),
        )
        .on_conflict(upsert.clone())
        .exec_without_returning(conn)
        .await?;
    }
    Ok(())
}

/// The products among `ids` that are known.
///
/// # Errors
/// The database error.
pub async fn find_many(
    conn: &impl ConnectionTrait,
    ids: &[ProductId],
) -> Result<Vec<CatalogProduct>, DbErr> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in key_chunks(ids) {
        found.extend(
            catalog_product::Entity::find()
                .filter(catalog_product::Column::ProductId.is_in(chunk.iter().copied()))
                .all(conn)
                .await?,
        );
    }
    found.into_iter().map(product_of).collect()
}

/// Up to `limit` products after `after`, by id.
///
/// # Errors
/// The database error.
pub async fn list(
    conn: &impl ConnectionTrait,
    after: Option<ProductId>,
    limit: u64,
) -> Result<Vec<CatalogProduct>, DbErr> {
    let mut query = catalog_product::Entity::find();
    if let Some(after) = after {
        query = query.filter(catalog_product::Column::ProductId.gt(after));
    }
    query
        .order_by_asc(catalog_product::Column::ProductId)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(product_of)
        .collect()
}
