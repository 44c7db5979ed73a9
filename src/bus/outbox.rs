//! The transactional outbox and its relay.
//!
//! [`write`] adds a message in the caller's transaction, so a message exists exactly when
//! the change it announces was committed. After the commit the caller hands what it wrote
//! to [`Outbox::committed`], and the [`Relay`] publishes it at once, from memory: every
//! message that piled up while the previous batch was on the wire goes out as one
//! pipelined batch, and one `DELETE` removes the batch's rows. The table is the safety net,
//! not the road: the relay reads it only for rows nobody handed over in memory, which are
//! those of an instance that crashed between commit and publish (rows older than
//! [`ORPHAN_AGE`], looked for every [`POLL_INTERVAL`]), and all of them after this
//! instance failed to publish (Redis down: backoff, then the whole table). Each message
//! succeeds or fails on its own: one that Redis refuses (an `XADD` under `maxmemory`)
//! stays in the table for the poll, and neither the messages sent with it nor the rows
//! after it wait for it. On PostgreSQL several relays share the table: a relay reading it
//! first claims a batch for [`CLAIM_FOR`] in one `UPDATE … FOR UPDATE SKIP LOCKED`
//! statement, so no orphan is published by two instances, and no row lock is held across
//! the Redis round trip (nor a connection left idle in a transaction while Redis answers).
//! A crash between publishing and deleting publishes a message again; every consumer
//! tolerates repeats (factories: same-status no-ops; subscribers: versions).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use entity::outbox;
use minifig_common::backoff::{Backoff, Policy};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use sea_orm::{Condition, QueryTrait};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::Bus;
use crate::db;
use crate::domain::StatusEvent;

/// How often the relay looks for rows nobody handed over in memory.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A row this old was not handed over by the instance that wrote it (it crashed, or its
/// relay is failing): any relay publishes it. Younger rows are their writer's, which
/// publishes them within milliseconds, so they are not published twice.
pub const ORPHAN_AGE: Duration = Duration::from_secs(3);
/// Messages published per batch, and rows read per transaction.
const BATCH: usize = 512;
/// Committed messages waiting for the relay in memory. When it is full the message waits
/// in the table instead, and the relay reads the table.
const QUEUE_CAPACITY: usize = 64 * 1024;
/// While Redis refuses everything: waits from 0.1 s up to 5 s between attempts to drain
/// the table, jittered so that the instances of a fleet do not retry in step.
const REDIS_DOWN: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(5), None);
/// How long a relay's claim on rows it reads from the table keeps other relays off them:
/// longer than a publish can take (Redis commands time out after 5 s), so that a claim
/// does not lapse while its batch is on the wire. A relay that dies holding one only
/// delays those rows by this much.
pub const CLAIM_FOR: Duration = Duration::from_secs(15);

pub const TOPIC_ORDERS: &str = "orders";
pub const TOPIC_STATUS: &str = "order-status";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxMessage {
    /// Hand this order to a factory.
    Order(Uuid),
    /// Tell subscribers about a status change. `json` is the event as the outbox row holds
    /// it, made once when the row is written: Redis carries that text as it is, and only
    /// the in-process bus, which has no wire, uses `event`.
    Status { event: StatusEvent, json: String },
}

impl OutboxMessage {
    /// The message for `event`, encoded.
    pub fn status(event: StatusEvent) -> Result<Self, DbErr> {
        let json = serde_json::to_string(&event).map_err(|err| DbErr::Custom(format!("outbox payload: {err}")))?;
        Ok(OutboxMessage::Status { event, json })
    }

    /// The row's `topic` and `payload`.
    pub fn encode(&self) -> Result<(&'static str, String), DbErr> {
        match self {
            OutboxMessage::Order(order_id) => serde_json::to_string(&OrderPayload { order_id: *order_id })
                .map(|payload| (TOPIC_ORDERS, payload))
                .map_err(|err| DbErr::Custom(format!("outbox payload: {err}"))),
            OutboxMessage::Status { json, .. } => Ok((TOPIC_STATUS, json.clone())),
        }
    }

    fn decode(row: &outbox::Model) -> Option<Self> {
        match row.topic.as_str() {
            TOPIC_ORDERS => {
                serde_json::from_str::<OrderPayload>(&row.payload).ok().map(|p| OutboxMessage::Order(p.order_id))
            }
            TOPIC_STATUS => serde_json::from_str::<StatusEvent>(&row.payload)
                .ok()
                .map(|event| OutboxMessage::Status { event, json: row.payload.clone() }),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct OrderPayload {
    order_id: Uuid,
}

/// A message written in a transaction, with its row: what [`Outbox::committed`] takes once
/// that transaction committed.
#[derive(Debug, Clone)]
pub struct Written {
    pub id: i64,
    pub message: OutboxMessage,
}

/// Adds `message` to the outbox inside the caller's transaction.
pub async fn write(txn: &impl ConnectionTrait, message: OutboxMessage) -> Result<Written, DbErr> {
    let (topic, payload) = message.encode()?;
    let backend = txn.get_database_backend();
    let insert = Query::insert()
        .into_table(outbox::Entity)
        .columns([outbox::Column::Topic, outbox::Column::Payload, outbox::Column::CreatedAt])
        .values_panic([topic.into(), payload.into(), db::now_in(backend)])
        .returning_col(outbox::Column::Id)
        .to_owned();
    let row = txn.query_one(&insert).await?.ok_or_else(|| DbErr::Custom("the outbox insert returned no id".into()))?;
    Ok(Written { id: row.try_get("", "id")?, message })
}

/// What waits in the outbox: how many rows, and the age of the oldest (by the database's
/// clock on PostgreSQL). Rows older than a few seconds mean Redis refuses them, or no
/// relay runs.
pub struct Backlog {
    pub waiting: i64,
    pub oldest_age: Option<Duration>,
}

pub async fn backlog(db: &DatabaseConnection) -> Result<Backlog, DbErr> {
    let backend = db.get_database_backend();
    if backend == DatabaseBackend::Postgres {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                backend,
                "SELECT count(*) AS waiting, EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS oldest FROM outbox",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("an aggregate returned no row".into()))?;
        let oldest: Option<f64> = row.try_get("", "oldest")?;
        return Ok(Backlog {
            waiting: row.try_get("", "waiting")?,
            oldest_age: oldest.map(|secs| Duration::from_secs_f64(secs.max(0.0))),
        });
    }
    let waiting = PaginatorTrait::count(outbox::Entity::find(), db).await? as i64;
    let oldest = outbox::Entity::find().order_by_asc(outbox::Column::Id).one(db).await?;
    Ok(Backlog {
        waiting,
        oldest_age: oldest.map(|row| (db::now() - row.created_at).to_std().unwrap_or(Duration::ZERO)),
    })
}

/// Hands committed messages to this instance's relay.
#[derive(Clone)]
pub struct Outbox {
    queue: mpsc::Sender<Written>,
    /// Set when a message could not be queued: it waits in the table, which the relay
    /// then reads whole.
    overflowed: Arc<AtomicBool>,
}

impl Outbox {
    /// Call after the commit of the transaction that wrote `written`.
    pub fn committed(&self, written: impl IntoIterator<Item = Written>) {
        for message in written {
            if self.queue.try_send(message).is_err() {
                self.overflowed.store(true, Ordering::Release);
            }
        }
    }
}

pub struct Relay {
    db: DatabaseConnection,
    bus: Arc<dyn Bus>,
    queue: mpsc::Receiver<Written>,
    overflowed: Arc<AtomicBool>,
}

impl Relay {
    /// The relay, and the handle that feeds it.
    pub fn new(db: DatabaseConnection, bus: Arc<dyn Bus>) -> (Self, Outbox) {
        let (sender, queue) = mpsc::channel(QUEUE_CAPACITY);
        let overflowed = Arc::new(AtomicBool::new(false));
        (Relay { db, bus, queue, overflowed: overflowed.clone() }, Outbox { queue: sender, overflowed })
    }

    /// Relays until the process ends.
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Rows left by an earlier run of this instance are orphans from the start.
        let mut whole_table = true;
        let mut backoff = Backoff::new(REDIS_DOWN);
        loop {
            let drained = if whole_table || self.overflowed.swap(false, Ordering::AcqRel) {
                // Everything queued in memory is in the table too, and goes out from there.
                while self.queue.try_recv().is_ok() {}
                self.drain(None).await
            } else {
                tokio::select! {
                    // Handed-over messages first: the table is read only while none wait,
                    // so no row still queued here is taken for an orphan and sent twice.
                    biased;
                    received = self.queue.recv_many(&mut batch, BATCH) => {
                        if received == 0 {
                            return;
                        }
                        let result = self.relay_handed_over(&batch).await;
                        batch.clear();
                        result
                    }
                    _ = poll.tick() => {
                        // Rows Redis refused, or an instance died on, are retried here;
                        // their failing says nothing of the messages handed over next.
                        if let Err(err) = self.drain(Some(ORPHAN_AGE)).await {
                            tracing::warn!(error = format!("{err:#}"), "outbox rows are waiting; retrying them");
                        }
                        Ok(())
                    }
                }
            };
            match drained {
                Ok(()) => {
                    if whole_table {
                        tracing::debug!("outbox relay is publishing from memory");
                    }
                    whole_table = false;
                    backoff.reset();
                }
                Err(err) => {
                    if !whole_table {
                        tracing::warn!(
                            error = format!("{err:#}"),
                            "outbox relay cannot publish; retrying from the table with backoff"
                        );
                    }
                    whole_table = true;
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }

    /// Publishes messages handed over after their commit, then deletes the rows of those
    /// that went out. An error only when none did (Redis is down): the relay then works
    /// from the table, with backoff. Rows of messages Redis refused stay for the poll.
    async fn relay_handed_over(&self, batch: &[Written]) -> anyhow::Result<()> {
        let messages: Vec<&OutboxMessage> = batch.iter().map(|w| &w.message).collect();
        let outcomes = self.bus.publish(&messages).await;
        settle(&self.db, batch.iter().map(|w| w.id), outcomes).await.outcome
    }

    /// Publishes the rows of the table older than `age` (all of them: `None`), oldest
    /// first, a batch at a time. A row Redis refuses is passed over, not retried in a
    /// loop: the rows after it, of either topic, still go out. An error only when rows
    /// were there and none went out.
    async fn drain(&self, age: Option<Duration>) -> anyhow::Result<()> {
        let postgres = self.db.get_database_backend() == DatabaseBackend::Postgres;
        let mut after = 0;
        let mut sent_any = false;
        let mut refused = None;
        loop {
            let batch = if postgres {
                self.relay_claimed_batch(age, after).await?
            } else {
                self.relay_batch(age, after).await?
            };
            let Some(batch) = batch else { break };
            after = batch.last_id;
            match batch.settled.outcome {
                Ok(()) => sent_any = true,
                Err(err) => {
                    refused.get_or_insert(err);
                }
            }
            if !batch.full {
                break;
            }
        }
        match refused {
            Some(err) if !sent_any => Err(err),
            _ => Ok(()),
        }
    }

    /// PostgreSQL: claims a batch (one statement: the rows are locked only while it runs),
    /// publishes it, deletes the rows that went out and hands the claim of the rest back.
    async fn relay_claimed_batch(&self, age: Option<Duration>, after: i64) -> anyhow::Result<Option<Drained>> {
        let claimable = oldest(DatabaseBackend::Postgres, age, after)
            .filter(
                Condition::any()
                    .add(outbox::Column::ClaimedUntil.is_null())
                    .add(Expr::col(outbox::Column::ClaimedUntil).lt(db::now_in(DatabaseBackend::Postgres))),
            )
            .select_only()
            .column(outbox::Column::Id)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .into_query();
        let mut rows = outbox::Entity::update_many()
            .col_expr(outbox::Column::ClaimedUntil, db::from_now_in(DatabaseBackend::Postgres, CLAIM_FOR))
            .filter(outbox::Column::Id.in_subquery(claimable))
            .exec_with_returning(&self.db)
            .await?;
        rows.sort_unstable_by_key(|row| row.id);
        let drained = self.publish_rows(&self.db, &rows).await?;
        if let Some(unsent) =
            drained.as_ref().map(|drained| &drained.settled.unsent).filter(|unsent| !unsent.is_empty())
        {
            // Refused, or Redis is down: free for the next attempt of any relay at once,
            // not only once the claim lapses.
            outbox::Entity::update_many()
                .col_expr(outbox::Column::ClaimedUntil, Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None))
                .filter(outbox::Column::Id.is_in(unsent.iter().copied()))
                .exec(&self.db)
                .await?;
        }
        Ok(drained)
    }

    /// SQLite: one instance, one connection; no transaction is held while publishing, so a
    /// slow or absent Redis never blocks the requests waiting for that connection.
    async fn relay_batch(&self, age: Option<Duration>, after: i64) -> anyhow::Result<Option<Drained>> {
        let rows = oldest(self.db.get_database_backend(), age, after).all(&self.db).await?;
        self.publish_rows(&self.db, &rows).await
    }

    async fn publish_rows(&self, db: &impl ConnectionTrait, rows: &[outbox::Model]) -> anyhow::Result<Option<Drained>> {
        let Some(last) = rows.last() else { return Ok(None) };
        let mut readable = Vec::with_capacity(rows.len());
        for row in rows {
            match OutboxMessage::decode(row) {
                Some(message) => readable.push((row.id, message)),
                None => {
                    tracing::error!(id = row.id, topic = row.topic, "dropping an unreadable outbox message");
                    delete(db, std::iter::once(row.id)).await?;
                }
            }
        }
        let messages: Vec<&OutboxMessage> = readable.iter().map(|(_, message)| message).collect();
        let outcomes = self.bus.publish(&messages).await;
        let settled = settle(db, readable.iter().map(|(id, _)| *id), outcomes).await;
        Ok(Some(Drained { last_id: last.id, full: rows.len() == BATCH, settled }))
    }
}

/// One batch read from the table and published.
struct Drained {
    last_id: i64,
    /// A whole batch: there may be more rows after it.
    full: bool,
    settled: Settled,
}

/// What became of a batch's rows.
struct Settled {
    /// An error when no message went out (or the rows of those that did stay undeleted).
    outcome: anyhow::Result<()>,
    /// The rows whose message did not go out.
    unsent: Vec<i64>,
}

/// Deletes the rows (`ids`, in the order of `outcomes`) whose message went out. An error
/// when none did; when only some did, the others stay for a later attempt, and a warning
/// says why.
async fn settle(
    db: &impl ConnectionTrait,
    ids: impl Iterator<Item = i64>,
    outcomes: Vec<anyhow::Result<()>>,
) -> Settled {
    let mut sent = Vec::with_capacity(outcomes.len());
    let mut unsent = Vec::new();
    let mut first_error = None;
    for (id, outcome) in ids.zip(outcomes) {
        match outcome {
            Ok(()) => sent.push(id),
            Err(err) => {
                unsent.push(id);
                first_error.get_or_insert(err);
            }
        }
    }
    let deleted = if sent.is_empty() { Ok(()) } else { delete(db, sent.iter().copied()).await };
    let outcome = deleted.map_err(anyhow::Error::from).and_then(|()| judge(first_error, sent.len(), unsent.len()));
    Settled { outcome, unsent }
}

/// An error when nothing went out; a warning when only some did.
fn judge(first_error: Option<anyhow::Error>, sent: usize, refused: usize) -> anyhow::Result<()> {
    match first_error {
        None => Ok(()),
        Some(err) if sent == 0 => Err(err.context(format!("none of {refused} messages went out"))),
        Some(err) => {
            tracing::warn!(
                refused,
                sent,
                error = format!("{err:#}"),
                "Redis refused some messages; they are retried from the table"
            );
            Ok(())
        }
    }
}

/// Rows after id `after`, oldest first, older than `age` if given.
fn oldest(backend: DatabaseBackend, age: Option<Duration>, after: i64) -> sea_orm::Select<outbox::Entity> {
    let mut query = outbox::Entity::find().filter(outbox::Column::Id.gt(after));
    if let Some(age) = age {
        query = query.filter(Expr::col(outbox::Column::CreatedAt).lt(db::ago_in(backend, age)));
    }
    query.order_by_asc(outbox::Column::Id).limit(BATCH as u64)
}

async fn delete(db: &impl ConnectionTrait, ids: impl Iterator<Item = i64>) -> Result<(), DbErr> {
    outbox::Entity::delete_many().filter(outbox::Column::Id.is_in(ids)).exec(db).await?;
    Ok(())
}
