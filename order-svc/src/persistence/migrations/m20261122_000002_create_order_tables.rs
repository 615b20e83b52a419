//! Orders, their lines and timelines, the catalog copy, idempotency keys.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Orders {
    Table,
    Id,
    CustomerId,
    Status,
    TotalMinor,
    Currency,
    ShippingAddress,
    Carrier,
    TrackingNumber,
    StockReserved,
    CreditReserved,
    DeadlineAt,
    Reason,
    DecidedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OrderLines {
    Table,
    OrderId,
    LineNo,
    ProductId,
    Quantity,
    UnitPriceMinor,
}

#[derive(DeriveIden)]
enum OrderEvents {
    Table,
    Id,
    OrderId,
    EventId,
    EventType,
    Producer,
    OccurredAt,
    Reason,
}

#[derive(DeriveIden)]
enum CatalogProducts {
    Table,
    ProductId,
    Sku,
    Name,
    UnitPriceMinor,
    Currency,
    Active,
    VersionAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    CustomerId,
    Key,
    Request,
    OrderId,
    Response,
    ExpiresAt,
}

fn timestamp(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Orders::Table)
                    .col(ColumnDef::new(Orders::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Orders::CustomerId).uuid().not_null())
                    .col(ColumnDef::new(Orders::Status).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Orders::TotalMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Orders::TotalMinor).gte(0)),
                    )
                    .col(ColumnDef::new(Orders::Currency).string_len(3).not_null())
                    .col(ColumnDef::new(Orders::ShippingAddress).text().null())
                    .col(ColumnDef::new(Orders::Carrier).string_len(100).null())
                    .col(
                        ColumnDef::new(Orders::TrackingNumber)
                            .string_len(100)
                            .null(),
                    )
                    .col(ColumnDef::new(Orders::StockReserved).boolean().not_null())
                    .col(ColumnDef::new(Orders::CreditReserved).boolean().not_null())
                    .col(timestamp(Orders::DeadlineAt))
                    .col(ColumnDef::new(Orders::Reason).string_len(1000).null())
                    .col(
                        ColumnDef::new(Orders::DecidedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(timestamp(Orders::CreatedAt))
                    .col(timestamp(Orders::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            (
                "idx_orders_status_deadline",
                vec![Orders::Status, Orders::DeadlineAt],
            ),
            ("idx_orders_customer", vec![Orders::CustomerId, Orders::Id]),
        ] {
            let mut index = Index::create().name(name).table(Orders::Table).to_owned();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(OrderLines::Table)
                    .col(ColumnDef::new(OrderLines::OrderId).uuid().not_null())
                    .col(ColumnDef::new(OrderLines::LineNo).integer().not_null())
                    .col(ColumnDef::new(OrderLines::ProductId).uuid().not_null())
                    .col(
                        ColumnDef::new(OrderLines::Quantity)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(OrderLines::Quantity).gt(0)),
                    )
                    .col(
                        ColumnDef::new(OrderLines::UnitPriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(OrderLines::OrderId)
                            .col(OrderLines::LineNo),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(OrderLines::Table, OrderLines::OrderId)
                            .to(Orders::Table, Orders::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OrderEvents::Table)
                    .col(
                        ColumnDef::new(OrderEvents::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(OrderEvents::OrderId).uuid().not_null())
                    .col(
                        ColumnDef::new(OrderEvents::EventId)
                            .uuid()
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(OrderEvents::EventType)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OrderEvents::Producer)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(timestamp(OrderEvents::OccurredAt))
                    .col(ColumnDef::new(OrderEvents::Reason).string_len(1000).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_order_events_order")
                    .table(OrderEvents::Table)
                    .col(OrderEvents::OrderId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CatalogProducts::Table)
                    .col(
                        ColumnDef::new(CatalogProducts::ProductId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CatalogProducts::Sku)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CatalogProducts::Name)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CatalogProducts::UnitPriceMinor)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CatalogProducts::Currency)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(ColumnDef::new(CatalogProducts::Active).boolean().not_null())
                    .col(timestamp(CatalogProducts::VersionAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(
                        ColumnDef::new(IdempotencyKeys::CustomerId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::Key)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::Request).text().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::OrderId).uuid().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Response).text().not_null())
                    .col(timestamp(IdempotencyKeys::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::CustomerId)
                            .col(IdempotencyKeys::Key),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            IdempotencyKeys::Table.into_iden(),
            CatalogProducts::Table.into_iden(),
            OrderEvents::Table.into_iden(),
            OrderLines::Table.into_iden(),
            Orders::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
