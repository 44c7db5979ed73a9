//! The Redis bus (fred): orders on the stream `<prefix>orders` (field `order_id`), status
//! events on the channel `<prefix>order-status` (JSON). One subscriber connection per API
//! instance feeds the [`EventHub`]; after a reconnect or when fred's own buffer overflowed,
//! every subscription re-reads from the database, so nothing is missed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_graphql::async_trait::async_trait;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use tokio::sync::broadcast::error::RecvError;

use super::{Bus, EventHub, OutboxMessage, StatusEvent};

/// The stream of orders for the factories, under the key prefix.
pub const ORDERS_STREAM: &str = "orders";
/// The channel of status events, under the key prefix.
pub const STATUS_CHANNEL: &str = "order-status";
/// fred's pub/sub receiver is a broadcast channel; make it deep enough to ride out bursts.
const SUBSCRIBER_BUFFER: usize = 16 * 1024;
/// How long a command may wait, including while reconnecting, before the caller retries.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long start-up waits for Redis before serving anyway (the outbox holds messages).
const STARTUP_WAIT: Duration = Duration::from_secs(5);

pub struct RedisBus {
    client: Client,
    _subscriber: SubscriberClient,
    stream: String,
    channel: String,
}

impl RedisBus {
    /// Connects (with reconnection forever, backing off to 5 s) and starts feeding `hub`.
    pub async fn connect(url: &str, prefix: &str, hub: Arc<EventHub>) -> anyhow::Result<Self> {
        let config = Config::from_url(url).context("REDIS_URL is not a valid Redis URL")?;
        let mut builder = Builder::from_config(config);
        builder
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
            .with_connection_config(|c| {
                // Status events are small and latency-bound: no Nagle delay on them.
                c.tcp = fred::types::config::TcpConfig { nodelay: Some(true), ..Default::default() };
                c.connection_timeout = COMMAND_TIMEOUT;
                c.internal_command_timeout = COMMAND_TIMEOUT;
            })
            .with_performance_config(|c| {
                c.default_command_timeout = COMMAND_TIMEOUT;
                c.broadcast_channel_capacity = SUBSCRIBER_BUFFER;
            });
        let client = builder.build().context("building the Redis client")?;
        let subscriber = builder.build_subscriber_client().context("building the Redis subscriber")?;
        let channel = format!("{prefix}{STATUS_CHANNEL}");

        // Listen before connecting, so that no message or reconnection is missed.
        let mut messages = subscriber.message_rx();
        let mut reconnections = subscriber.reconnect_rx();
        let feed_hub = hub.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(message) => match message.value.as_str().map(|text| serde_json::from_str::<StatusEvent>(&text)) {
                            Some(Ok(event)) => feed_hub.dispatch(event),
                            _ => tracing::warn!(channel = %message.channel, "ignoring a malformed status event"),
                        },
                        Err(RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "status feed fell behind; subscriptions re-read from the database");
                            feed_hub.resync_all();
                        }
                        Err(RecvError::Closed) => break,
                    },
                    reconnected = reconnections.recv() => match reconnected {
                        Ok(_) | Err(RecvError::Lagged(_)) => {
                            tracing::info!("Redis subscriber reconnected; subscriptions re-read from the database");
                            feed_hub.resync_all();
                        }
                        Err(RecvError::Closed) => break,
                    },
                }
            }
        });
        // Re-subscribes to the channel after every reconnection; runs as long as the client.
        drop(subscriber.manage_subscriptions());

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
                tokio::spawn(async move {
                    while subscriber.subscribe(channel.clone()).await.is_err() {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                });
            }
        }
        Ok(RedisBus { client, _subscriber: subscriber, stream: format!("{prefix}{ORDERS_STREAM}"), channel })
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, messages: &[&OutboxMessage]) -> anyhow::Result<()> {
        // One pipeline: a burst of status changes costs one round trip, not one each.
        let pipeline = self.client.pipeline();
        for message in messages {
            match message {
                OutboxMessage::Order(order_id) => {
                    let () = pipeline
                        .xadd(&self.stream, false, None, "*", vec![("order_id", order_id.to_string())])
                        .await
                        .context("queueing an order for the Redis stream")?;
                }
                OutboxMessage::Status(event) => {
                    let () = pipeline
                        .publish(&self.channel, serde_json::to_string(event)?)
                        .await
                        .context("queueing a status event for Redis")?;
                }
            }
        }
        let results: Vec<fred::types::Value> = pipeline
            .try_all()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .with_context(|| format!("failed to publish {} messages to Redis", messages.len()))?;
        debug_assert_eq!(results.len(), messages.len());
        Ok(())
    }

    async fn ping(&self) -> Option<anyhow::Result<()>> {
        let pong: Result<String, _> = self.client.ping(None).await;
        Some(pong.map(|_| ()).context("Redis did not answer PING"))
    }
}
