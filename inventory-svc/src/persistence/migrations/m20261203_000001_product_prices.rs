//! `product_prices`: the price history. Existing products get their current
//! price as its first row, effective since their last change.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ProductPrices {
    Table,
    Id,
    ProductId,
    UnitPriceMinor,
    Currency,
    EffectiveAt,
    CatalogVersion,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProductPrices::Table)
                    .col(
                        ColumnDef::new(ProductPrices::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ProductPrices::ProductId).uuid().not_null())
                    .col(
                        ColumnDef::new(ProductPrices::UnitPriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductPrices::Currency)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductPrices::EffectiveAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProductPrices::CatalogVersion)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_product_prices_product")
                    .table(ProductPrices::Table)
                    .col(ProductPrices::ProductId)
                    .col(ProductPrices::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO product_prices (product_id, unit_price_minor, currency, effective_at, catalog_version) \
                 SELECT id, unit_price_minor, currency, updated_at, catalog_version FROM products",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ProductPrices::Table).to_owned())
            .await
    }
}
