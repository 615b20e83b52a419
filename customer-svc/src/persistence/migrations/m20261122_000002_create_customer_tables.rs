//! Customers, credit reservations and signing keys.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Customers {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    Role,
    Status,
    CreditLimitMinor,
    Currency,
    CreditReservedMinor,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CreditReservations {
    Table,
    OrderId,
    CustomerId,
    AmountMinor,
    Currency,
    State,
    Reason,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    PrivateKeyPem,
    CreatedAt,
    SupersededAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .col(
                        ColumnDef::new(Customers::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Customers::Email)
                            .string_len(254)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Customers::Name).string_len(200).not_null())
                    .col(
                        ColumnDef::new(Customers::PasswordHash)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Customers::Role).string_len(16).not_null())
                    .col(ColumnDef::new(Customers::Status).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Customers::CreditLimitMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Customers::CreditLimitMinor).gte(0)),
                    )
                    .col(ColumnDef::new(Customers::Currency).string_len(3).not_null())
                    .col(
                        ColumnDef::new(Customers::CreditReservedMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(Customers::CreditReservedMinor).gte(0)),
                    )
                    .col(
                        ColumnDef::new(Customers::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Customers::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    // Credit never exceeds the limit, whatever the code does.
                    .check(
                        Expr::col(Customers::CreditReservedMinor)
                            .lte(Expr::col(Customers::CreditLimitMinor)),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(CreditReservations::Table)
                    .col(
                        ColumnDef::new(CreditReservations::OrderId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CreditReservations::CustomerId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditReservations::AmountMinor)
                            .big_integer()
                            .not_null()
                            .check(Expr::col(CreditReservations::AmountMinor).gte(0)),
                    )
                    .col(
                        ColumnDef::new(CreditReservations::Currency)
                            .string_len(3)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditReservations::State)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditReservations::Reason)
                            .string_len(1000)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(CreditReservations::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditReservations::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_credit_reservations_customer")
                    .table(CreditReservations::Table)
                    .col(CreditReservations::CustomerId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(
                        ColumnDef::new(SigningKeys::Kid)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SigningKeys::PrivateKeyPem).text().not_null())
                    .col(
                        ColumnDef::new(SigningKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SigningKeys::SupersededAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SigningKeys::Table.into_iden(),
            CreditReservations::Table.into_iden(),
            Customers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
