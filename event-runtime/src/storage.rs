//! The tables behind the outbox and the inbox, and the migration that
//! creates them. Every service lists [`PlumbingMigration`] in its migrator,
//! so that the tables live in the service's own database beside its state
//! and can be written in the same transaction.

use sea_orm_migration::async_trait::async_trait;
use sea_orm_migration::prelude::*;

/// One row per event waiting to be (or already) published.
pub mod outbox_message {
    use sea_orm::entity::prelude::*;

    /// An outbox row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox_messages")]
    pub struct Model {
        /// Allocation order; the relay publishes in this order.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The event's id.
        #[sea_orm(unique)]
        pub event_id: events::ids::EventId,
        /// Logical topic (`orders`, …); the relay adds the prefix.
        pub topic: String,
        /// The Kafka key (the aggregate id).
        pub message_key: String,
        /// `event_type` header.
        pub event_type: String,
        /// `schema_version` header.
        pub schema_version: i32,
        /// The envelope, serialized exactly as it is published.
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        /// Trace context of the transaction that wrote the row.
        pub traceparent: Option<String>,
        /// Vendor trace state.
        pub tracestate: Option<String>,
        /// When the row was written.
        pub created_at: DateTimeUtc,
        /// When the broker acknowledged it; `None` while pending.
        pub published_at: Option<DateTimeUtc>,
        /// Failed attempts that were this row's own fault.
        pub attempts: i32,
        /// The last failure, in words.
        pub last_error: Option<String>,
        /// When the relay set it aside after too many failures; `None`
        /// while it is in line. Later rows of its key wait behind it.
        pub parked_at: Option<DateTimeUtc>,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One row per event a consumer has applied: the de-duplication record.
pub mod inbox_message {
    use sea_orm::entity::prelude::*;

    /// An inbox row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "inbox_messages")]
    pub struct Model {
        /// The consumer (handler) name, so that two consumers in one
        /// database de-duplicate independently.
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        /// The applied event.
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: events::ids::EventId,
        /// Where it was read from, for operators.
        pub topic: String,
        /// Partition it was read from.
        pub partition: i32,
        /// Offset it was read from.
        pub offset: i64,
        /// Its type.
        pub event_type: String,
        /// When its effect committed.
        pub processed_at: DateTimeUtc,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Creates `outbox_messages` and `inbox_messages`. Works on PostgreSQL and SQLite.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlumbingMigration;

impl MigrationName for PlumbingMigration {
    fn name(&self) -> &str {
        "m20261122_000001_create_outbox_and_inbox"
    }
}

#[derive(DeriveIden)]
enum OutboxMessages {
    Table,
    Id,
    EventId,
    Topic,
    MessageKey,
    EventType,
    SchemaVersion,
    Payload,
    Traceparent,
    Tracestate,
    CreatedAt,
    PublishedAt,
}

#[derive(DeriveIden)]
enum InboxMessages {
    Table,
    Consumer,
    EventId,
    Topic,
    Partition,
    Offset,
    EventType,
    ProcessedAt,
}

#[async_trait]
impl MigrationTrait for PlumbingMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OutboxMessages::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(OutboxMessages::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OutboxMessages::EventId)
                            .uuid()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(OutboxMessages::Topic).string().not_null())
                    .col(
                        ColumnDef::new(OutboxMessages::MessageKey)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OutboxMessages::EventType)
                            .string()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OutboxMessages::SchemaVersion)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OutboxMessages::Payload).text().not_null())
                    .col(ColumnDef::new(OutboxMessages::Traceparent).string().null())
                    .col(ColumnDef::new(OutboxMessages::Tracestate).string().null())
                    .col(
                        ColumnDef::new(OutboxMessages::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OutboxMessages::PublishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The relay's query: unpublished rows in id order.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_messages_pending")
                    .table(OutboxMessages::Table)
                    .col(OutboxMessages::PublishedAt)
                    .col(OutboxMessages::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InboxMessages::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(InboxMessages::Consumer).string().not_null())
                    .col(ColumnDef::new(InboxMessages::EventId).uuid().not_null())
                    .col(ColumnDef::new(InboxMessages::Topic).string().not_null())
                    .col(
                        ColumnDef::new(InboxMessages::Partition)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(InboxMessages::Offset)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(InboxMessages::EventType).string().not_null())
                    .col(
                        ColumnDef::new(InboxMessages::ProcessedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(InboxMessages::Consumer)
                            .col(InboxMessages::EventId),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(InboxMessages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(OutboxMessages::Table).to_owned())
            .await
    }
}

/// Replaces the relay's index with a partial one over unpublished rows
/// only. Published rows are kept for [`RetentionSettings::outbox`](super::RetentionSettings),
/// and every one left a dead entry for `published_at IS NULL` in the old
/// `(published_at, id)` index: at 1,500 events/s the relay's query walked
/// tens of thousands of them and took 20 ms (`EXPLAIN ANALYZE`: 13-24 ms
/// before, 0.06-0.17 ms after, on 40,000 rows). List it after the
/// service's own migrations.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxPendingIndexMigration;

impl MigrationName for OutboxPendingIndexMigration {
    fn name(&self) -> &str {
        "m20261201_000001_outbox_partial_pending_index"
    }
}

#[async_trait]
impl MigrationTrait for OutboxPendingIndexMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_outbox_messages_unpublished \
                 ON outbox_messages (id) WHERE published_at IS NULL",
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_outbox_messages_pending")
                    .table(OutboxMessages::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_messages_pending")
                    .table(OutboxMessages::Table)
                    .col(OutboxMessages::PublishedAt)
                    .col(OutboxMessages::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_outbox_messages_unpublished")
            .await?;
        Ok(())
    }
}

/// Lets the relay set aside a row that keeps failing: `attempts`,
/// `last_error` and `parked_at` on `outbox_messages`, and a partial index
/// over the rows set aside (few, and looked up by key at every round).
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxParkingMigration;

impl MigrationName for OutboxParkingMigration {
    fn name(&self) -> &str {
        "m20261202_000001_outbox_parking"
    }
}

#[derive(DeriveIden)]
enum OutboxParking {
    Attempts,
    LastError,
    ParkedAt,
}

#[async_trait]
impl MigrationTrait for OutboxParkingMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for column in [
            ColumnDef::new(OutboxParking::Attempts)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            ColumnDef::new(OutboxParking::LastError)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(OutboxParking::ParkedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OutboxMessages::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_outbox_messages_parked \
                 ON outbox_messages (message_key, id) WHERE parked_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_outbox_messages_parked")
            .await?;
        for column in [
            OutboxParking::Attempts,
            OutboxParking::LastError,
            OutboxParking::ParkedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(OutboxMessages::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Indexes for retention ([`Retention`](super::Retention)): inbox rows by
/// `processed_at`, published outbox rows by `published_at`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlumbingRetentionIndexMigration;

impl MigrationName for PlumbingRetentionIndexMigration {
    fn name(&self) -> &str {
        "m20261202_000002_plumbing_retention_indexes"
    }
}

#[async_trait]
impl MigrationTrait for PlumbingRetentionIndexMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        conn.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_inbox_messages_processed_at \
             ON inbox_messages (processed_at)",
        )
        .await?;
        conn.execute_unprepared(
            "CREATE INDEX IF NOT EXISTS idx_outbox_messages_published_at \
             ON outbox_messages (published_at) WHERE published_at IS NOT NULL",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let conn = manager.get_connection();
        conn.execute_unprepared("DROP INDEX IF EXISTS idx_inbox_messages_processed_at")
            .await?;
        conn.execute_unprepared("DROP INDEX IF EXISTS idx_outbox_messages_published_at")
            .await?;
        Ok(())
    }
}

/// The plumbing's migrations that come after a service's own, in order:
/// list them last in every migrator (`PlumbingMigration` comes first).
pub fn later_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(OutboxPendingIndexMigration),
        Box::new(OutboxParkingMigration),
        Box::new(PlumbingRetentionIndexMigration),
    ]
}
