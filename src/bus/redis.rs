//! The Redis bus (fred): orders on the stream `<prefix>orders` (field `order_id`), status
//! events on the channel `<prefix>order-status` (JSON). One subscriber connection per API
//! instance feeds the [`EventHub`]; after a reconnect or when fred's own buffer overflowed,
//! every subscription re-reads from the database, so nothing is missed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use minifig_common::redis::{ORDER_ID_FIELD, ORDERS_STREAM, TRACEPARENT_FIELD, stream_cap};
use minifig_common::telemetry::propagation;
use tokio::sync::broadcast::error::RecvError;

use super::outbox::StatusTrace;
use super::{Bus, EventHub, OutboxMessage};
use crate::domain::StatusEvent;
use crate::metrics::{self, Resync};

/// The channel of status events, under the key prefix.
pub const STATUS_CHANNEL: &str = "order-status";
/// fred's pub/sub receiver is a broadcast channel; make it deep enough to ride out bursts.
const SUBSCRIBER_BUFFER: usize = 16 * 1024;
/// How long start-up waits for Redis before serving anyway (the outbox holds messages).
const STARTUP_WAIT: Duration = Duration::from_secs(5);
/// Both connections PING Redis this often. A subscriber connection otherwise sends
/// nothing, so one that silently died (a failover, a dropped NAT entry) would look alive,
/// and its instance would receive no event, forever.
const PING_INTERVAL: Duration = Duration::from_secs(2);
/// A command (the PING above included) unanswered for this long closes its connection,
/// and fred reconnects.
const UNRESPONSIVE_AFTER: Duration = Duration::from_secs(3);

pub struct RedisBus {
    client: Client,
    _subscriber: SubscriberClient,
    stream: String,
    /// `MAXLEN ~` of every XADD to the stream.
    stream_max_len: u64,
    channel: String,
}

impl RedisBus {
    /// The command connection, for other users of the same Redis (the login throttle).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Connects (with reconnection forever, see `minifig_common::redis`) and starts feeding `hub`.
    /// The orders stream is trimmed to about `stream_max_len` entries.
    pub async fn connect(url: &str, prefix: &str, stream_max_len: u64, hub: Arc<EventHub>) -> anyhow::Result<Self> {
        let mut builder = minifig_common::redis::builder(url, UNRESPONSIVE_AFTER)?;
        builder.with_performance_config(|c| c.broadcast_channel_capacity = SUBSCRIBER_BUFFER);
        let client = builder.build().context("building the Redis client")?;
        let subscriber = builder.build_subscriber_client().context("building the Redis subscriber")?;
        let channel = format!("{prefix}{STATUS_CHANNEL}");

        // Listen before connecting, so that no message or reconnection is missed.
        let mut messages = subscriber.message_rx();
        let mut reconnections = subscriber.reconnect_rx();
        let feed_hub = hub.clone();
        // Counted here rather than by its own listener: this loop already sees each one.
        let subscriber_reconnects = metrics::redis_reconnects("subscriber");
        let (feed_subscriber, feed_channel) = (subscriber.clone(), channel.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(message) => match message.value.as_str() {
                            Some(text) => match serde_json::from_str::<StatusEvent>(&text) {
                                Ok(event) => feed_hub.dispatch_traced(event, received_trace(&text).as_deref()),
                                Err(_) => tracing::warn!(channel = %message.channel, "ignoring a malformed status event"),
                            },
                            None => tracing::warn!(channel = %message.channel, "ignoring a malformed status event"),
                        },
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "status feed fell behind; subscriptions re-read from the database");
                            feed_hub.resync_all(Resync::Overflowed);
                        }
                        Err(RecvError::Closed) => break,
                    },
                    reconnected = reconnections.recv() => match reconnected {
                        Ok(_) | Err(RecvError::Lagged(_)) => {
                            // Re-read only once the channel is subscribed again: an event
                            // published before that is in the database by then, and one
                            // published after arrives here.
                            subscribe_until_confirmed(&feed_subscriber, &feed_channel).await;
                            tracing::info!("Redis subscriber reconnected; subscriptions re-read from the database");
                            subscriber_reconnects.increment(1);
                            feed_hub.resync_all(Resync::Reconnected);
                        }
                        Err(RecvError::Closed) => break,
                    },
                }
            }
        });
        metrics::describe_redis();
        minifig_common::redis::count_reconnections(&client, metrics::redis_reconnects("commands"));
        let pinged = client.clone();
        tokio::spawn(async move { pinged.enable_heartbeat(PING_INTERVAL, false).await });
        let pinged = subscriber.clone();
        tokio::spawn(async move { pinged.enable_heartbeat(PING_INTERVAL, false).await });

        client.connect();
        subscriber.connect();
        let connected = tokio::time::timeout(STARTUP_WAIT, async {
            client.wait_for_connect().await?;
            subscriber.wait_for_connect().await
        })
        .await;
        match connected {
            Ok(Ok(())) => subscriber.subscribe(channel.clone()).await.context("subscribing to the status channel")?,
            _ => {
                tracing::warn!("Redis is not reachable yet; serving anyway and retrying in the background");
                let subscriber = subscriber.clone();
                let channel = channel.clone();
                tokio::spawn(async move { subscribe_until_confirmed(&subscriber, &channel).await });
            }
        }
        Ok(RedisBus {
            client,
            _subscriber: subscriber,
            stream: format!("{prefix}{ORDERS_STREAM}"),
            stream_max_len,
            channel,
        })
    }
}

/// The trace context a status event carries, read only while traces are on: the event
/// itself is parsed without it, and parsing the text twice costs the fan-out nothing then.
fn received_trace(text: &str) -> Option<String> {
    if !propagation::is_enabled() {
        return None;
    }
    serde_json::from_str::<StatusTrace>(text).ok()?.traceparent
}

/// SUBSCRIBEs to `channel`, retrying every second until Redis confirms it.
async fn subscribe_until_confirmed(subscriber: &SubscriberClient, channel: &str) {
    while let Err(err) = subscriber.subscribe(channel).await {
        tracing::warn!(error = %err, "cannot subscribe to the status channel yet; retrying");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The stream entry of an order: `order_id`, and `traceparent` when it is traced.
fn order_fields(order_id: &uuid::Uuid, traceparent: Option<&str>) -> Vec<(&'static str, String)> {
    let mut fields = vec![(ORDER_ID_FIELD, order_id.to_string())];
    if let Some(traceparent) = traceparent {
        fields.push((TRACEPARENT_FIELD, traceparent.to_owned()));
    }
    fields
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, messages: &[&OutboxMessage]) -> Vec<anyhow::Result<()>> {
        // One pipeline: a burst of status changes costs one round trip, not one each.
        let pipeline = self.client.pipeline();
        // Per message: queued in the pipeline (its reply comes from `try_all`), or why not.
        let mut queued: Vec<anyhow::Result<()>> = Vec::with_capacity(messages.len());
        for message in messages {
            let result = match message {
                OutboxMessage::Order { order_id, traceparent } => pipeline
                    .xadd::<(), _, _, _, _>(
                        &self.stream,
                        false,
                        stream_cap(self.stream_max_len),
                        "*",
                        order_fields(order_id, traceparent.as_deref()),
                    )
                    .await
                    .context("queueing an order for the Redis stream"),
                OutboxMessage::Status { json, .. } => {
                    pipeline.publish::<(), _, _>(&self.channel, json.as_str()).await.context("queueing a status event")
                }
            };
            queued.push(result);
        }
        let mut replies = pipeline.try_all::<fred::types::Value>().await.into_iter();
        queued
            .into_iter()
            .map(|queued| {
                queued?;
                match replies.next() {
                    Some(Ok(_)) => Ok(()),
                    Some(Err(err)) => Err(anyhow::Error::new(err).context("Redis refused a message")),
                    None => Err(anyhow::anyhow!("Redis answered fewer replies than commands")),
                }
            })
            .collect()
    }

    async fn ping(&self) -> Option<anyhow::Result<()>> {
        let pong: Result<String, _> = self.client.ping(None).await;
        Some(pong.map(|_| ()).context("Redis did not answer PING"))
    }
}
