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
//!
//! Each row also keeps the W3C `traceparent` of the span that wrote it (null while traces
//! are off), so that the trace of `placeOrder` or `updateOrderStatus` goes on through the
//! relay, the Redis stream entry (field `traceparent` beside `order_id`) or the status JSON
//! (key `traceparent`), to the factory and to every instance's fan-out.

mod relay;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use entity::outbox;
use minifig_common::telemetry::propagation;
use sea_orm::sea_query::Query;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryOrder};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

pub use self::relay::Relay;

use crate::db;
use crate::domain::StatusEvent;

/// How often the relay looks for rows nobody handed over in memory.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// A row this old was not handed over by the instance that wrote it (it crashed, or its
/// relay is failing): any relay publishes it. Younger rows are their writer's, which
/// publishes them within milliseconds, so they are not published twice.
pub const ORPHAN_AGE: Duration = Duration::from_secs(3);
/// Committed messages waiting for the relay in memory. When it is full the message waits
/// in the table instead, and the relay reads the table.
const QUEUE_CAPACITY: usize = 64 * 1024;
/// How long a relay's claim on rows it reads from the table keeps other relays off them:
/// longer than a publish can take (Redis commands time out after 5 s), so that a claim
/// does not lapse while its batch is on the wire. A relay that dies holding one only
/// delays those rows by this much.
pub const CLAIM_FOR: Duration = Duration::from_secs(15);

pub const TOPIC_ORDERS: &str = "orders";
pub const TOPIC_STATUS: &str = "order-status";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxMessage {
    /// Hand this order to a factory. `traceparent` goes into the stream entry beside
    /// `order_id`, so that the factory's work joins the trace.
    Order { order_id: Uuid, traceparent: Option<String> },
    /// Tell subscribers about a status change. `json` is the event as the outbox row holds
    /// it, made once when the row is written (with `traceparent` in it, when there is
    /// one): Redis carries that text as it is, and only the in-process bus, which has no
    /// wire, uses `event` and `traceparent`.
    Status { event: StatusEvent, json: String, traceparent: Option<String> },
}

impl OutboxMessage {
    /// The message handing `order_id` to a factory, in the trace of the current span.
    pub fn order(order_id: Uuid) -> Self {
        OutboxMessage::Order { order_id, traceparent: propagation::current_traceparent() }
    }

    /// The message for `event`, encoded, in the trace of the current span.
    pub fn status(event: StatusEvent) -> Result<Self, DbErr> {
        let traceparent = propagation::current_traceparent();
        let wire = StatusWire { event: &event, traceparent: traceparent.as_deref() };
        let json = serde_json::to_string(&wire).map_err(|err| DbErr::Custom(format!("outbox payload: {err}")))?;
        Ok(OutboxMessage::Status { event, json, traceparent })
    }

    /// The W3C trace context the message continues, if any.
    pub fn traceparent(&self) -> Option<&str> {
        match self {
            OutboxMessage::Order { traceparent, .. } | OutboxMessage::Status { traceparent, .. } => {
                traceparent.as_deref()
            }
        }
    }

    /// The row's `topic` and `payload`.
    pub fn encode(&self) -> Result<(&'static str, String), DbErr> {
        match self {
            OutboxMessage::Order { order_id, .. } => serde_json::to_string(&OrderPayload { order_id: *order_id })
                .map(|payload| (TOPIC_ORDERS, payload))
                .map_err(|err| DbErr::Custom(format!("outbox payload: {err}"))),
            OutboxMessage::Status { json, .. } => Ok((TOPIC_STATUS, json.clone())),
        }
    }

    fn decode(row: &outbox::Model) -> Option<Self> {
        let traceparent = row.traceparent.clone();
        match row.topic.as_str() {
            TOPIC_ORDERS => serde_json::from_str::<OrderPayload>(&row.payload)
                .ok()
                .map(|p| OutboxMessage::Order { order_id: p.order_id, traceparent }),
            TOPIC_STATUS => serde_json::from_str::<StatusEvent>(&row.payload).ok().map(|event| OutboxMessage::Status {
                event,
                json: row.payload.clone(),
                traceparent,
            }),
            _ => None,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct OrderPayload {
    order_id: Uuid,
}

/// A status event as Redis carries it: the event's own fields, and `traceparent` when the
/// change was traced (the contract lets status events carry more fields). PostgreSQL
/// builds the same JSON in SQL (`order_store::postgres`).
#[derive(Serialize)]
struct StatusWire<'a> {
    #[serde(flatten)]
    event: &'a StatusEvent,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
}

/// The trace context of a status event as received from Redis; the event itself is read
/// as a [`StatusEvent`], which ignores this key.
#[derive(Deserialize)]
pub struct StatusTrace {
    pub traceparent: Option<String>,
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
        .columns([
            outbox::Column::Topic,
            outbox::Column::Payload,
            outbox::Column::CreatedAt,
            outbox::Column::Traceparent,
        ])
        .values_panic([
            topic.into(),
            payload.into(),
            db::now_in(backend),
            message.traceparent().map(str::to_owned).into(),
        ])
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderStatus;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn event() -> StatusEvent {
        StatusEvent {
            order_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            status: OrderStatus::Shipped,
            version: 4,
            at: chrono::Utc::now(),
            note: None,
            seq: 7,
        }
    }

    #[test]
    fn an_untraced_status_message_is_the_events_json_alone() {
        // Traces are off in unit tests: no context is taken from the current span.
        let OutboxMessage::Status { json, traceparent, .. } = OutboxMessage::status(event()).unwrap() else {
            panic!("a status message")
        };
        assert_eq!(traceparent, None);
        assert_eq!(json, serde_json::to_string(&event_with_at(&json)).unwrap());
        assert!(!json.contains("traceparent"), "{json}");
    }

    /// The event `json` holds (its `at` is the one serialized).
    fn event_with_at(json: &str) -> StatusEvent {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_traced_status_message_ends_with_its_traceparent_and_still_reads_as_the_event() {
        let event = event();
        let json = serde_json::to_string(&StatusWire { event: &event, traceparent: Some(TRACEPARENT) }).unwrap();
        assert!(json.ends_with(&format!(",\"traceparent\":\"{TRACEPARENT}\"}}")), "{json}");
        assert_eq!(serde_json::from_str::<StatusEvent>(&json).unwrap(), event);
        assert_eq!(serde_json::from_str::<StatusTrace>(&json).unwrap().traceparent.as_deref(), Some(TRACEPARENT));
    }

    #[test]
    fn a_row_gives_back_its_message_with_the_trace_it_was_written_in() {
        let row = |topic: &str, payload: String, traceparent: Option<&str>| outbox::Model {
            id: 1,
            topic: topic.to_owned(),
            payload,
            created_at: chrono::Utc::now(),
            claimed_until: None,
            traceparent: traceparent.map(str::to_owned),
        };
        let order = OutboxMessage::Order { order_id: Uuid::from_u128(3), traceparent: Some(TRACEPARENT.to_owned()) };
        let (topic, payload) = order.encode().unwrap();
        assert_eq!(payload, format!("{{\"order_id\":\"{}\"}}", Uuid::from_u128(3)), "the payload is unchanged");
        assert_eq!(OutboxMessage::decode(&row(topic, payload.clone(), Some(TRACEPARENT))), Some(order));
        assert_eq!(
            OutboxMessage::decode(&row(topic, payload, None)),
            Some(OutboxMessage::Order { order_id: Uuid::from_u128(3), traceparent: None })
        );
        let json = serde_json::to_string(&event()).unwrap();
        let Some(OutboxMessage::Status { traceparent, .. }) =
            OutboxMessage::decode(&row(TOPIC_STATUS, json, Some(TRACEPARENT)))
        else {
            panic!("a status message")
        };
        assert_eq!(traceparent.as_deref(), Some(TRACEPARENT));
    }
}
