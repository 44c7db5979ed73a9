//! `outbox.traceparent`: the W3C trace context of the request that wrote the row, so that
//! the relay, and the factory that takes the order from the Redis stream, continue that
//! request's trace even when the row is published from the table, by another instance or
//! after a restart. Null when traces are off or the writer had no trace (the redelivery
//! sweep).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Traceparent,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(ColumnDef::new(Outbox::Traceparent).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Outbox::Table).drop_column(Outbox::Traceparent).to_owned()).await
    }
}
