//! The relay: publishes what was committed, from memory at once, and from the table for
//! whatever memory did not carry (see the module above).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use entity::outbox;
use minifig_common::backoff::{Backoff, Policy};
use minifig_common::telemetry::propagation;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use sea_orm::{Condition, QueryTrait};
use tokio::sync::mpsc;

use super::{CLAIM_FOR, ORPHAN_AGE, Outbox, OutboxMessage, POLL_INTERVAL, QUEUE_CAPACITY, Written};
use crate::bus::Bus;
use crate::db;
use crate::metrics::{self, Source};

/// Messages published per batch, and rows read per transaction.
const BATCH: usize = 512;
/// While Redis refuses everything: waits from 0.1 s up to 5 s between attempts to drain
/// the table, jittered so that the instances of a fleet do not retry in step.
const REDIS_DOWN: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(5), None);

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
        let outcomes = self.publish(&messages, Source::Memory).await;
        settle(&self.db, batch.iter().map(|w| w.id), outcomes).await.outcome
    }

    /// Publishes one batch, timed and counted.
    async fn publish(&self, messages: &[&OutboxMessage], source: Source) -> Vec<anyhow::Result<()>> {
        let started = Instant::now();
        let outcomes = self.publish_traced(messages).await;
        let refused = outcomes.iter().filter(|outcome| outcome.is_err()).count();
        metrics::relay_published(source, outcomes.len() - refused, refused, started.elapsed());
        outcomes
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

    /// Publishes `messages` as one batch; while traces are on, each message that came with
    /// a trace context gets a span in that trace (`outbox.publish`, as long as the batch
    /// takes), and an order carries that span's context on to the factory, so the
    /// factory's work hangs under the relay in the trace.
    async fn publish_traced(&self, messages: &[&OutboxMessage]) -> Vec<anyhow::Result<()>> {
        if !propagation::is_enabled() {
            return self.bus.publish(messages).await;
        }
        let spans: Vec<Option<tracing::Span>> = messages.iter().map(|message| relay_span(message)).collect();
        let relayed: Vec<Cow<'_, OutboxMessage>> = messages
            .iter()
            .zip(&spans)
            .map(|(message, span)| match (message, span) {
                (OutboxMessage::Order { order_id, .. }, Some(span)) => Cow::Owned(OutboxMessage::Order {
                    order_id: *order_id,
                    traceparent: propagation::traceparent_of(span),
                }),
                _ => Cow::Borrowed(*message),
            })
            .collect();
        let relayed: Vec<&OutboxMessage> = relayed.iter().map(|message| message.as_ref()).collect();
        let outcomes = self.bus.publish(&relayed).await;
        for (span, outcome) in spans.iter().zip(&outcomes) {
            if let (Some(span), Err(err)) = (span, outcome) {
                span.record("error", format!("{err:#}"));
            }
        }
        outcomes
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
        let outcomes = self.publish(&messages, Source::Table).await;
        let settled = settle(db, readable.iter().map(|(id, _)| *id), outcomes).await;
        Ok(Some(Drained { last_id: last.id, full: rows.len() == BATCH, settled }))
    }
}

/// The span of relaying `message`, in the trace it came with; `None` when it came without
/// one (a redelivery, a row written while traces were off): a trace of its own would be
/// noise.
fn relay_span(message: &OutboxMessage) -> Option<tracing::Span> {
    let traceparent = message.traceparent()?;
    let span = match message {
        OutboxMessage::Order { order_id, .. } => tracing::info_span!(
            parent: None,
            "outbox.publish",
            topic = super::TOPIC_ORDERS,
            order_id = %order_id,
            error = tracing::field::Empty,
        ),
        OutboxMessage::Status { event, .. } => tracing::info_span!(
            parent: None,
            "outbox.publish",
            topic = super::TOPIC_STATUS,
            order_id = %event.order_id,
            status = %event.status,
            version = event.version,
            error = tracing::field::Empty,
        ),
    };
    propagation::set_parent(&span, Some(traceparent), None);
    Some(span)
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
