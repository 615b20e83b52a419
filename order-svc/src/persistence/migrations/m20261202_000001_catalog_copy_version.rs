//! `catalog_products.version`: the product's catalog version as
//! inventory-svc counts it (`None` for a row from a version-1 event).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CatalogProducts {
    Table,
    Version,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CatalogProducts::Table)
                    .add_column(
                        ColumnDef::new(CatalogProducts::Version)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CatalogProducts::Table)
                    .drop_column(CatalogProducts::Version)
                    .to_owned(),
            )
            .await
    }
}
