//! The transactional outbox, and when each order was last handed to a factory.
//!
//! Every message for Redis (an order for the factories, a status event for subscribers) is
//! written to `outbox` in the transaction that changes the order, then published by a relay
//! and deleted. `orders.dispatched_at` lets the redelivery sweep hand an order that is not
//! final to a factory again when nothing happened to it for a while (Redis may have lost it).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(ColumnDef::new(Outbox::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Outbox::Topic).string().not_null())
                    .col(ColumnDef::new(Outbox::Payload).text().not_null())
                    .col(ColumnDef::new(Outbox::CreatedAt).timestamp_with_time_zone().not_null())
                    .check((
                        Alias::new("outbox_topic_check"),
                        Expr::col(Outbox::Topic).is_in(["orders", "order-status"]),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Orders::Table)
                    .add_column(ColumnDef::new(Orders::DispatchedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("orders_status_updated_idx")
                    .table(Orders::Table)
                    .col(Orders::Status)
                    .col(Orders::UpdatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("orders_status_updated_idx").table(Orders::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Orders::Table).drop_column(Orders::DispatchedAt).to_owned()).await?;
        manager.drop_table(Table::drop().table(Outbox::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Topic,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    Status,
    UpdatedAt,
    DispatchedAt,
}
