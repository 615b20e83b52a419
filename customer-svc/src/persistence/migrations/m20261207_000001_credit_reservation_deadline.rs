//! `credit_reservations.deadline_at`: the deadline of an order whose credit reservation still
//! holds and is undecided (NULL once the order is confirmed, when nothing
//! is held, and for holds made before this migration, which never expire),
//! indexed so that the hold sweeper's query reads only the expired ones.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CreditReservations {
    Table,
    DeadlineAt,
}

const INDEX: &str = "credit_reservations_deadline_at_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(CreditReservations::Table)
                    .add_column(
                        ColumnDef::new(CreditReservations::DeadlineAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(CreditReservations::Table)
                    .col(CreditReservations::DeadlineAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(CreditReservations::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(CreditReservations::Table)
                    .drop_column(CreditReservations::DeadlineAt)
                    .to_owned(),
            )
            .await
    }
}
