//! Orders from the Redis stream `<prefix>orders` (contract, section 5): one entry per order
//! with the field `order_id`, read by the consumer group `factory`.
//!
//! - Each process reads under its own consumer name (`hostname-pid-random`), so it never
//!   has pending entries of a previous life to recover: those belong to a dead consumer and
//!   come back through `XAUTOCLAIM` once idle longer than `FACTORY_CLAIM_IDLE_MS`.
//! - Redis is a transport, not the record: it may restart empty at any moment, taking the
//!   stream and the group with it. Every command that fails with `NOGROUP` re-creates the
//!   group (`MKSTREAM`, from id `0`, so entries added before it are read too) and is tried
//!   again. The clients reconnect on their own (a reconnect policy is set; fred does not
//!   reconnect without one).
//! - The blocking `XREADGROUP` runs on a connection of its own: fred pipelines commands
//!   on one connection, and a blocked read would hold up every `XACK` and `XCLAIM` behind
//!   it.
//! - The stream is capped (`XADD … MAXLEN ~`, here when an order is handed back, in the
//!   server when an order is placed), so an entry may be trimmed while it is pending.
//!   Redis 7 then drops it from the pending list when it is claimed (`XAUTOCLAIM` lists it
//!   apart, `XCLAIM` returns nothing for it); the database and the server's redelivery
//!   sweep are the record of the order.
//! - After `ack` or `release`, whether it worked or not, the delivery is no longer held
//!   here: an entry Redis did not take the `XACK` for stays pending in the group and comes
//!   back through `XAUTOCLAIM` once idle, to this factory or another.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use fred::prelude::*;
use fred::types::Value;
use fred::types::config::Options;
use secrecy::ExposeSecret;

pub use minifig_common::redis::ORDER_ID_FIELD;
use minifig_common::redis::{COMMAND_TIMEOUT, ORDERS_STREAM};

mod consumer;
mod release;
mod replies;

use self::consumer::consumer_name;
use self::replies::{Autoclaim, Entry, parse_autoclaim, parse_read};
use super::{Delivery, OrderSource};
use crate::config::RedisSettings;
use crate::metrics;

/// The consumer group every factory reads with (contract, section 5).
pub const CONSUMER_GROUP: &str = "factory";

/// How long one `XREADGROUP` waits for new entries: short, so that a shutdown or a pause
/// never waits long for a read to come back.
const BLOCK: Duration = Duration::from_secs(2);

/// Evaluates `$op` (a command's result); when Redis says the group (or the stream) is
/// gone, re-creates the group and evaluates `$op` once more. (A macro: async closures
/// borrowing `self` are not yet `Send` enough for `async_trait`.)
macro_rules! with_group {
    ($source:expr, $op:expr) => {
        match $op {
            Err(err) if mentions(&err, "NOGROUP") => match $source.regroup().await {
                Ok(()) => $op,
                Err(err) => Err(err),
            },
            other => other,
        }
    };
}

/// How long a command may go unanswered before its connection counts as dead; longer
/// than any blocking read.
const UNRESPONSIVE: Duration = Duration::from_secs(10);

/// `close`: forget this consumer, but only when it holds nothing (deleting a consumer
/// drops its pending entries).
const FORGET_CONSUMER_SCRIPT: &str = r"
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
";

/// The Redis stream as an [`OrderSource`].
pub struct RedisStreamSource {
    /// Every command but the blocking read.
    writer: Client,
    /// The blocking `XREADGROUP` only.
    reader: Client,
    /// `<prefix>orders`.
    stream: String,
    /// Unique to this source (hostname-pid-random).
    consumer: String,
    /// Idle time after which another consumer's pending entry is taken over.
    claim_idle: Duration,
    /// About how many entries the stream keeps when this source adds one.
    max_len: u64,
    /// Where the next `XAUTOCLAIM` scan starts (`0-0` begins a new pass).
    claim_cursor: Mutex<String>,
    /// Entries received and not yet acknowledged or released, so that a scan that finds
    /// one of them (we were slow to `keep` it) does not hand it out twice.
    held: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for RedisStreamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamSource")
            .field("stream", &self.stream)
            .field("consumer", &self.consumer)
            .field("claim_idle", &self.claim_idle)
            .finish_non_exhaustive()
    }
}

impl RedisStreamSource {
    /// Connects (in the background: Redis may come up later) and makes sure the group
    /// exists when Redis already answers.
    pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Self> {
        let url = settings.redis_url.expose_secret();
        let source = RedisStreamSource {
            writer: client(url)?,
            reader: client(url)?,
            stream: format!("{}{ORDERS_STREAM}", settings.redis_key_prefix),
            consumer: consumer_name(),
            claim_idle: settings.claim_idle(),
            max_len: settings.stream_max_len,
            claim_cursor: Mutex::new("0-0".into()),
            held: Mutex::new(HashSet::new()),
        };
        for client in [&source.writer, &source.reader] {
            minifig_common::redis::count_reconnections(client, metrics::redis_reconnects());
            client.connect();
        }
        match tokio::time::timeout(COMMAND_TIMEOUT, source.writer.wait_for_connect()).await {
            Ok(Ok(())) => {
                if let Err(err) = source.ensure_group().await {
                    tracing::warn!(error = %err, "could not create the consumer group yet; will retry");
                }
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "Redis is not reachable yet; retrying in the background"),
            Err(_) => tracing::warn!("Redis is not reachable yet; retrying in the background"),
        }
        tracing::info!(stream = %source.stream, consumer = %source.consumer, "reading orders from Redis");
        Ok(source)
    }

    /// The stream key, `<prefix>orders`.
    pub fn stream_key(&self) -> &str {
        &self.stream
    }

    /// Entries delivered to the group and not yet acknowledged, by any of its consumers
    /// (`XPENDING` summary): the orders in the works or waiting to be claimed back.
    pub async fn pending_entries(&self) -> anyhow::Result<u64> {
        let summary: Value = self
            .writer
            .xpending(&self.stream, CONSUMER_GROUP, ())
            .await
            .with_context(|| format!("XPENDING on {}", self.stream))?;
        let count = summary.into_array().into_iter().next().and_then(|count| count.as_u64());
        count.with_context(|| format!("reading XPENDING on {}", self.stream))
    }

    /// This source's consumer name in the group.
    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// After the worker stopped: removes this consumer from the group when it holds
    /// nothing (so that dead names do not pile up), then closes the connections.
    pub async fn close(&self) {
        let forgotten: Result<i64, Error> = self
            .writer
            .eval(FORGET_CONSUMER_SCRIPT, vec![self.stream.as_str()], vec![CONSUMER_GROUP, self.consumer.as_str()])
            .await;
        match forgotten {
            Ok(-1) => {
                tracing::info!(consumer = %self.consumer, "consumer still holds entries; leaving it for others to claim")
            }
            Ok(_) => tracing::debug!(consumer = %self.consumer, "consumer removed from the group"),
            Err(err) => tracing::debug!(error = %err, "could not remove the consumer from the group"),
        }
        for client in [&self.reader, &self.writer] {
            let _ = client.quit().await;
        }
    }

    /// `XGROUP CREATE <stream> factory 0 MKSTREAM`; an existing group is fine.
    async fn ensure_group(&self) -> Result<(), Error> {
        match self.writer.xgroup_create::<Value, _, _, _>(&self.stream, CONSUMER_GROUP, "0", true).await {
            Ok(_) => {
                tracing::info!(stream = %self.stream, group = CONSUMER_GROUP, "created the consumer group");
                Ok(())
            }
            Err(err) if mentions(&err, "BUSYGROUP") => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Re-creates the group after Redis said it (or the stream) is gone.
    async fn regroup(&self) -> Result<(), Error> {
        tracing::warn!(stream = %self.stream, "the consumer group is gone (Redis lost its data?); re-creating it");
        self.ensure_group().await
    }

    /// Entries other consumers left pending for longer than the claim idle time.
    async fn claim_abandoned(&self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        let start = self.claim_cursor.lock().expect("cursor lock").clone();
        let idle_ms = u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: Result<Value, Error> = with_group!(
            self,
            self.writer
                .xautoclaim(
                    &self.stream,
                    CONSUMER_GROUP,
                    &self.consumer,
                    idle_ms,
                    start.as_str(),
                    Some(max as u64),
                    false
                )
                .await
        );
        let reply = reply.with_context(|| format!("XAUTOCLAIM on {}", self.stream))?;
        let Autoclaim { next, entries, trimmed } =
            parse_autoclaim(reply).with_context(|| format!("reading XAUTOCLAIM on {}", self.stream))?;
        *self.claim_cursor.lock().expect("cursor lock") = next;
        if trimmed > 0 {
            tracing::info!(
                trimmed,
                stream = %self.stream,
                "abandoned entries were trimmed from the stream; Redis dropped them from the pending list (the server redelivers their orders)"
            );
        }
        let held = self.held.lock().expect("held lock").clone();
        let fresh: Vec<Entry> = entries.into_iter().filter(|entry| !held.contains(&entry.id)).collect();
        let deliveries = self.usable(fresh).await;
        for delivery in &deliveries {
            tracing::info!(order_id = %delivery.order_id, entry = %delivery.id, "took over an order another factory left");
        }
        metrics::claimed(deliveries.len());
        Ok(deliveries)
    }

    /// New entries, waiting up to `block` for some.
    async fn read_new(&self, count: usize, block: Option<Duration>) -> anyhow::Result<Vec<Delivery>> {
        let block_ms = block.map(|b| u64::try_from(b.as_millis()).unwrap_or(u64::MAX));
        let options = Options { timeout: Some(block.unwrap_or_default() + COMMAND_TIMEOUT), ..Default::default() };
        let reply: Result<Value, Error> = with_group!(
            self,
            self.reader
                .with_options(&options)
                .xreadgroup(CONSUMER_GROUP, &self.consumer, Some(count as u64), block_ms, false, &self.stream, ">")
                .await
        );
        let reply = reply.with_context(|| format!("XREADGROUP on {}", self.stream))?;
        let entries = parse_read(reply).with_context(|| format!("reading XREADGROUP on {}", self.stream))?;
        Ok(self.usable(entries).await)
    }

    /// Entries as deliveries; an entry without an `order_id` can never be worked on, so it
    /// is acknowledged (with a warning) rather than handed around forever.
    async fn usable(&self, entries: Vec<Entry>) -> Vec<Delivery> {
        let mut deliveries = Vec::with_capacity(entries.len());
        for entry in entries {
            match entry.order_id {
                Some(order_id) if !order_id.is_empty() => {
                    deliveries.push(Delivery { id: entry.id, order_id, traceparent: entry.traceparent })
                }
                _ => {
                    tracing::warn!(entry = %entry.id, stream = %self.stream, "stream entry without an order_id; dropping it");
                    if let Err(err) =
                        self.writer.xack::<Value, _, _, _>(&self.stream, CONSUMER_GROUP, entry.id.as_str()).await
                    {
                        tracing::warn!(entry = %entry.id, error = %err, "could not acknowledge a broken entry");
                    }
                }
            }
        }
        deliveries
    }

    fn forget(&self, delivery: &Delivery) {
        self.held.lock().expect("held lock").remove(&delivery.id);
    }
}

#[async_trait]
impl OrderSource for RedisStreamSource {
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut deliveries = self.claim_abandoned(max).await?;
        if deliveries.len() < max {
            // Do not wait for new entries when there is already work to hand out.
            let block = deliveries.is_empty().then_some(BLOCK);
            match self.read_new(max - deliveries.len(), block).await {
                Ok(new) => deliveries.extend(new),
                // The claimed entries are this consumer's now: hand them out rather than
                // leave them idle until the next claim.
                Err(err) if !deliveries.is_empty() => {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "could not read new entries; working on the claimed ones"
                    );
                }
                Err(err) => return Err(err),
            }
        }
        let mut held = self.held.lock().expect("held lock");
        held.extend(deliveries.iter().map(|d| d.id.clone()));
        Ok(deliveries)
    }

    async fn ack(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let acked: Result<Value, Error> =
            with_group!(self, self.writer.xack(&self.stream, CONSUMER_GROUP, delivery.id.as_str()).await);
        self.forget(delivery);
        acked.with_context(|| format!("XACK {} on {}", delivery.id, self.stream))?;
        Ok(())
    }

    async fn keep(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let claimed: Result<Value, Error> = with_group!(
            self,
            self.writer
                .xclaim(
                    &self.stream,
                    CONSUMER_GROUP,
                    &self.consumer,
                    0,
                    delivery.id.as_str(),
                    None,
                    None,
                    None,
                    false,
                    true
                )
                .await
        );
        let claimed = claimed.with_context(|| format!("XCLAIM {} on {}", delivery.id, self.stream))?;
        if claimed.into_array().is_empty() {
            // Acknowledged by someone else, or lost with Redis: the order itself is safe in
            // the database, and the final `ack` is harmless either way.
            tracing::debug!(entry = %delivery.id, order_id = %delivery.order_id, "entry no longer pending");
        }
        Ok(())
    }

    async fn release(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let released = self.hand_back(delivery).await;
        self.forget(delivery);
        released
    }
}

/// A client that reconnects forever, with commands that fail after a timeout instead of
/// waiting for Redis to come back.
fn client(url: &str) -> anyhow::Result<Client> {
    minifig_common::redis::builder(url, UNRESPONSIVE)?.build().context("building the Redis client")
}

fn mentions(err: &Error, code: &str) -> bool {
    err.details().contains(code) || err.to_string().contains(code)
}
