//! The transactional outbox and its relay.
//!
//! [`write`] adds a message in the caller's transaction, so a message exists exactly when
//! the change it announces was committed. The [`Relay`] publishes committed messages and
//! deletes them: at once when this instance wrote them ([`OutboxSignal`]), within
//! [`POLL_INTERVAL`] otherwise (another instance crashed before relaying), with backoff
//! while Redis is down. On PostgreSQL several relays share the table through
//! `FOR UPDATE SKIP LOCKED`, so no message is published by two instances. A crash between
//! publishing and deleting publishes a message again; every consumer tolerates repeats
//! (factories: same-status no-ops; subscribers: versions).

use std::sync::Arc;
use std::time::Duration;

use entity::outbox;
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Bus, StatusEvent};
use crate::db;

/// How often the relay looks for messages nobody signalled.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Messages published per transaction.
const BATCH: u64 = 100;
const MAX_BACKOFF: Duration = Duration::from_secs(5);

const TOPIC_ORDERS: &str = "orders";
const TOPIC_STATUS: &str = "order-status";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxMessage {
    /// Hand this order to a factory.
    Order(Uuid),
    /// Tell subscribers about a status change.
    Status(StatusEvent),
}

#[derive(Serialize, Deserialize)]
struct OrderPayload {
    order_id: Uuid,
}

/// Adds `message` to the outbox inside the caller's transaction.
pub async fn write(txn: &impl ConnectionTrait, message: &OutboxMessage) -> Result<(), DbErr> {
    let (topic, payload) = match message {
        OutboxMessage::Order(order_id) => (TOPIC_ORDERS, serde_json::to_string(&OrderPayload { order_id: *order_id })),
        OutboxMessage::Status(event) => (TOPIC_STATUS, serde_json::to_string(event)),
    };
    let payload = payload.map_err(|err| DbErr::Custom(format!("outbox payload: {err}")))?;
    outbox::ActiveModel {
        topic: Set(topic.to_owned()),
        payload: Set(payload),
        created_at: Set(db::now()),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    Ok(())
}

fn parse(row: &outbox::Model) -> Option<OutboxMessage> {
    match row.topic.as_str() {
        TOPIC_ORDERS => {
            serde_json::from_str::<OrderPayload>(&row.payload).ok().map(|p| OutboxMessage::Order(p.order_id))
        }
        TOPIC_STATUS => serde_json::from_str::<StatusEvent>(&row.payload).ok().map(OutboxMessage::Status),
        _ => None,
    }
}

/// Wakes this instance's relay after a commit that wrote outbox rows.
#[derive(Clone, Default)]
pub struct OutboxSignal(Arc<Notify>);

impl OutboxSignal {
    pub fn committed(&self) {
        self.0.notify_one();
    }
}

pub struct Relay {
    db: DatabaseConnection,
    bus: Arc<dyn Bus>,
    signal: OutboxSignal,
}

impl Relay {
    pub fn new(db: DatabaseConnection, bus: Arc<dyn Bus>, signal: OutboxSignal) -> Self {
        Relay { db, bus, signal }
    }

    /// Relays until the process ends.
    pub async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        let mut failing = false;
        loop {
            match self.drain().await {
                Ok(()) => {
                    if failing {
                        tracing::info!("outbox relay recovered");
                        failing = false;
                    }
                    backoff = Duration::from_millis(100);
                    let _ = tokio::time::timeout(POLL_INTERVAL, self.signal.0.notified()).await;
                }
                Err(err) => {
                    if !failing {
                        tracing::warn!(
                            error = format!("{err:#}"),
                            "outbox relay cannot publish; retrying with backoff"
                        );
                        failing = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Publishes every committed message, oldest first, a batch at a time.
    pub async fn drain(&self) -> anyhow::Result<()> {
        let postgres = self.db.get_database_backend() == DatabaseBackend::Postgres;
        loop {
            let more = if postgres { self.relay_locked_batch().await? } else { self.relay_batch().await? };
            if !more {
                return Ok(());
            }
        }
    }

    /// PostgreSQL: the batch stays locked (and skipped by other instances' relays) until it
    /// is published and deleted.
    async fn relay_locked_batch(&self) -> anyhow::Result<bool> {
        let txn = self.db.begin().await?;
        let rows = oldest().lock_with_behavior(LockType::Update, LockBehavior::SkipLocked).all(&txn).await?;
        if !rows.is_empty() {
            self.publish(&rows).await?;
            delete(&txn, &rows).await?;
        }
        txn.commit().await?;
        Ok(!rows.is_empty())
    }

    /// SQLite: one instance, one connection; no transaction is held while publishing, so a
    /// slow or absent Redis never blocks the requests waiting for that connection.
    async fn relay_batch(&self) -> anyhow::Result<bool> {
        let rows = oldest().all(&self.db).await?;
        if !rows.is_empty() {
            self.publish(&rows).await?;
            delete(&self.db, &rows).await?;
        }
        Ok(!rows.is_empty())
    }

    async fn publish(&self, rows: &[outbox::Model]) -> anyhow::Result<()> {
        for row in rows {
            match parse(row) {
                Some(OutboxMessage::Order(order_id)) => self.bus.enqueue_order(order_id).await?,
                Some(OutboxMessage::Status(event)) => self.bus.publish_status(&event).await?,
                None => tracing::error!(id = row.id, topic = row.topic, "dropping an unreadable outbox message"),
            }
        }
        Ok(())
    }
}

fn oldest() -> sea_orm::Select<outbox::Entity> {
    outbox::Entity::find().order_by_asc(outbox::Column::Id).limit(BATCH)
}

async fn delete(db: &impl ConnectionTrait, rows: &[outbox::Model]) -> Result<(), DbErr> {
    outbox::Entity::delete_many().filter(outbox::Column::Id.is_in(rows.iter().map(|r| r.id))).exec(db).await?;
    Ok(())
}
