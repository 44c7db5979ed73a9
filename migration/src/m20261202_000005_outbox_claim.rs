//! `outbox.claimed_until`: a relay that publishes rows it did not write (orphans of a
//! crashed instance, or the whole table after Redis failed) claims them for a while with one
//! short `UPDATE`, instead of holding their row locks in a transaction across the Redis
//! round trip. A lock held that long would make the writer's own `DELETE` of a row it had
//! published wait for another instance's Redis, and keep a connection idle in transaction
//! for as long as Redis takes to answer or time out.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    ClaimedUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(ColumnDef::new(Outbox::ClaimedUntil).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Outbox::Table).drop_column(Outbox::ClaimedUntil).to_owned()).await
    }
}
