//! A per-customer sequence of status events, in commit order: `users.event_seq` counts a
//! customer's events, and each `order_events` row carries its `customer_id` and `seq`.
//!
//! Why per customer and not one `BIGSERIAL`: a serial value is taken when the row is
//! inserted, not when it commits, so a reader catching up "after 41" can see 42 committed
//! while 41 is still in flight, move on, and never see 41. `myOrderEvents` resumes one
//! customer's events by cursor, so it needs an order that matches commit order for that
//! customer. Each write takes the next value by `UPDATE users SET event_seq = event_seq + 1`,
//! whose row lock is held until commit: writes of one customer's events take their numbers
//! one after the other, in the order they commit, with no gaps. Writes of different
//! customers never wait for each other.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    EventSeq,
}

#[derive(DeriveIden)]
enum OrderEvents {
    Table,
    OrderId,
    CustomerId,
    Seq,
}

const SEQ_INDEX: &str = "order_events_customer_seq_key";
const ORDER_INDEX: &str = "order_events_order_idx";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let add = |table: TableRef, column: ColumnDef| Table::alter().table(table).add_column(column).to_owned();
        manager
            .alter_table(add(
                Users::Table.into_table_ref(),
                ColumnDef::new(Users::EventSeq).big_integer().not_null().default(0).to_owned(),
            ))
            .await?;
        manager
            .alter_table(add(
                OrderEvents::Table.into_table_ref(),
                ColumnDef::new(OrderEvents::CustomerId).uuid().null().to_owned(),
            ))
            .await?;
        manager
            .alter_table(add(
                OrderEvents::Table.into_table_ref(),
                ColumnDef::new(OrderEvents::Seq).big_integer().not_null().default(0).to_owned(),
            ))
            .await?;

        // Events already stored are numbered by time, which was their only order before.
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE order_events SET customer_id = \
             (SELECT orders.customer_id FROM orders WHERE orders.id = order_events.order_id)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE order_events SET seq = (SELECT numbered.n FROM \
             (SELECT id, row_number() OVER (PARTITION BY customer_id ORDER BY at, id) AS n FROM order_events) numbered \
             WHERE numbered.id = order_events.id)",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE users SET event_seq = \
             COALESCE((SELECT max(seq) FROM order_events WHERE order_events.customer_id = users.id), 0)",
        )
        .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            // SQLite cannot change a column's constraints; there every insert sets both.
            db.execute_unprepared(
                "ALTER TABLE order_events ALTER COLUMN customer_id SET NOT NULL, ALTER COLUMN seq DROP DEFAULT",
            )
            .await?;
        }
        // `order_events_order_version_key` (order_id, version) serves every lookup by
        // order; the index on order_id alone only cost a write per event, which the new
        // index on the sequence now costs instead.
        manager.drop_index(Index::drop().name(ORDER_INDEX).table(OrderEvents::Table).to_owned()).await?;
        manager
            .create_index(
                Index::create()
                    .name(SEQ_INDEX)
                    .table(OrderEvents::Table)
                    .col(OrderEvents::CustomerId)
                    .col(OrderEvents::Seq)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(SEQ_INDEX).table(OrderEvents::Table).to_owned()).await?;
        manager
            .create_index(
                Index::create().name(ORDER_INDEX).table(OrderEvents::Table).col(OrderEvents::OrderId).to_owned(),
            )
            .await?;
        for column in [OrderEvents::Seq, OrderEvents::CustomerId] {
            manager.alter_table(Table::alter().table(OrderEvents::Table).drop_column(column).to_owned()).await?;
        }
        manager.alter_table(Table::alter().table(Users::Table).drop_column(Users::EventSeq).to_owned()).await
    }
}
