//! An index on `orders.decided_at`, so that counting the orders decided
//! in the last seconds (the admission's decision rate, read once a
//! second, and the metrics) reads only them, not the whole table.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    DecidedAt,
}

const NAME: &str = "idx_orders_decided_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Orders::Table)
                    .col(Orders::DecidedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).table(Orders::Table).to_owned())
            .await
    }
}
