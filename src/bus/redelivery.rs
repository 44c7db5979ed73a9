//! Handing unfinished orders to the factories again.
//!
//! Redis is a transport, not the record: it may restart empty and take the stream, the
//! consumer group and every unacknowledged entry with it, and the in-process queue dies
//! with its process. So an order that is not final, and that nothing happened to (no status
//! change, no dispatch) for `redeliver_after`, is queued again through the outbox. A
//! factory that already holds it sees a repeat, which is harmless: moving an order to the
//! status it has is a no-op.

use std::time::Duration;

use entity::order;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
};

use super::outbox::{self, Outbox, OutboxMessage};
use crate::db;
use crate::domain::OrderStatus;

/// Orders redelivered per sweep; the next sweep takes the rest.
const BATCH: u64 = 500;
/// Only one instance sweeps at a time on PostgreSQL (a transaction-scoped advisory lock).
const ADVISORY_LOCK_KEY: i64 = 0x6d69_6e69_6669_6701;

/// Queues again the orders that are not final and idle for longer than `redeliver_after`.
/// Returns how many.
pub async fn sweep(db: &DatabaseConnection, redeliver_after: Duration, outbox: &Outbox) -> anyhow::Result<usize> {
    let txn = db.begin().await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let locked = txn
            .query_one_raw(Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1) AS locked",
                [ADVISORY_LOCK_KEY.into()],
            ))
            .await?
            .and_then(|row| row.try_get::<bool>("", "locked").ok())
            .unwrap_or(false);
        if !locked {
            txn.commit().await?;
            return Ok(0);
        }
    }
    // The database's clock, not this instance's: one whose clock is ahead would hand out
    // orders a factory is still working on, one whose clock is behind would never.
    let backend = db.get_database_backend();
    let cutoff = db::ago_in(backend, redeliver_after);
    let finals = OrderStatus::ALL.into_iter().filter(|s| s.is_final());
    let stale: Vec<uuid::Uuid> = order::Entity::find()
        .select_only()
        .column(order::Column::Id)
        .filter(order::Column::Status.is_not_in(finals))
        .filter(Expr::col(order::Column::UpdatedAt).lt(cutoff.clone()))
        .filter(
            Condition::any()
                .add(order::Column::DispatchedAt.is_null())
                .add(Expr::col(order::Column::DispatchedAt).lt(cutoff)),
        )
        .order_by_asc(order::Column::UpdatedAt)
        .limit(BATCH)
        .into_tuple()
        .all(&txn)
        .await?;
    let mut written = Vec::with_capacity(stale.len());
    for id in &stale {
        written.push(outbox::write(&txn, OutboxMessage::Order { order_id: *id, traceparent: None }).await?);
    }
    if !stale.is_empty() {
        order::Entity::update_many()
            .col_expr(order::Column::DispatchedAt, db::now_in(backend))
            .filter(order::Column::Id.is_in(stale.iter().copied()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    if !stale.is_empty() {
        tracing::info!(count = stale.len(), "handed unfinished orders to the factories again");
        crate::metrics::redelivered(stale.len());
        outbox.committed(written);
    }
    Ok(stale.len())
}

/// Sweeps every `interval` until the process ends.
pub async fn run(db: DatabaseConnection, redeliver_after: Duration, outbox: Outbox) {
    let interval = (redeliver_after / 3).clamp(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        if let Err(err) = sweep(&db, redeliver_after, &outbox).await {
            tracing::warn!(error = format!("{err:#}"), "redelivery sweep failed; will retry");
        }
        tokio::time::sleep(interval).await;
    }
}
