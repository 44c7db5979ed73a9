//! One way to connect to Redis, for the API's bus and throttle and for the factory's
//! stream: the same timeouts, keepalives and reconnection everywhere, so that a Redis
//! outage looks the same from every process.

use std::time::Duration;

use anyhow::Context;
use fred::prelude::{Builder, Config, EventInterface, ReconnectPolicy};
use fred::types::config::{TcpConfig, UnresponsiveConfig};
use fred::types::streams::{XCap, XCapKind, XCapTrim};
use tokio::sync::broadcast::error::RecvError;

/// The orders stream, under the deployment's key prefix (contract, section 5).
pub const ORDERS_STREAM: &str = "orders";
/// The stream entry's field that names the order (contract, section 5).
pub const ORDER_ID_FIELD: &str = "order_id";
/// The stream entry's optional field with the W3C trace context of the order's
/// `placeOrder` (an extra field, which the contract allows): the factory continues that
/// trace. Absent when the API's traces are off.
pub const TRACEPARENT_FIELD: &str = crate::telemetry::propagation::TRACEPARENT;

/// Counts `client`'s reconnections on `counter`, for as long as the client lives. Must be
/// called inside the Tokio runtime.
pub fn count_reconnections(client: &impl EventInterface, counter: metrics::Counter) {
    let mut reconnections = client.reconnect_rx();
    tokio::spawn(async move {
        // A lagged receiver missed some: it still counts one, and goes on.
        while !matches!(reconnections.recv().await, Err(RecvError::Closed)) {
            counter.increment(1);
        }
    });
}

/// How long a command may wait, including while reconnecting, before its caller sees it
/// fail (and retries, or reports Redis down).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);
/// Kernel keepalive probes, for a peer that vanished while nothing was being sent.
const TCP_KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// How often fred checks for commands left unanswered.
const UNRESPONSIVE_CHECK: Duration = Duration::from_millis(500);
/// Reconnection never gives up (0 attempts = unlimited): 100 ms, doubling, at most this.
const MAX_RECONNECT_DELAY_MS: u32 = 2_000;

/// A builder for clients of `url`. `unresponsive_after` is how long a command may go
/// unanswered before its connection counts as dead and is replaced: longer than the
/// longest blocking command the caller sends, and short enough to notice a Redis host
/// that vanished without a reset.
pub fn builder(url: &str, unresponsive_after: Duration) -> anyhow::Result<Builder> {
    let config = Config::from_url(url).context("REDIS_URL is not a valid Redis URL")?;
    let mut builder = Builder::from_config(config);
    builder
        .set_policy(ReconnectPolicy::new_exponential(0, 100, MAX_RECONNECT_DELAY_MS, 2))
        .with_connection_config(|connection| {
            let keepalive =
                fred::socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE_IDLE).with_interval(TCP_KEEPALIVE_INTERVAL);
            // Orders and status events are small and latency-bound: no Nagle delay on them.
            connection.tcp = TcpConfig { nodelay: Some(true), keepalive: Some(keepalive), ..Default::default() };
            connection.connection_timeout = COMMAND_TIMEOUT;
            connection.internal_command_timeout = COMMAND_TIMEOUT;
            connection.unresponsive =
                UnresponsiveConfig { max_timeout: Some(unresponsive_after), interval: UNRESPONSIVE_CHECK };
        })
        .with_performance_config(|performance| performance.default_command_timeout = COMMAND_TIMEOUT);
    Ok(builder)
}

/// `MAXLEN ~ <max_len>`, the cap of every `XADD` to the orders stream: approximate, so that
/// Redis trims whole nodes, at no cost to speak of.
pub fn stream_cap(max_len: u64) -> XCap {
    let max_len = i64::try_from(max_len).unwrap_or(i64::MAX);
    XCap::try_from((XCapKind::MaxLen, XCapTrim::AlmostExact, max_len)).unwrap_or_else(|_| XCap::from(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_says_which_setting_is_wrong() {
        let err = builder("not a url", Duration::from_secs(1)).err().map(|err| format!("{err:#}"));
        assert!(err.is_some_and(|err| err.starts_with("REDIS_URL is not a valid Redis URL")));
    }

    #[test]
    fn every_client_gets_the_same_timeouts() {
        let builder = builder("redis://127.0.0.1:6379", Duration::from_secs(3)).unwrap();
        let connection = builder.get_connection_config();
        assert_eq!(connection.connection_timeout, COMMAND_TIMEOUT);
        assert_eq!(connection.unresponsive.max_timeout, Some(Duration::from_secs(3)));
        assert_eq!(connection.tcp.nodelay, Some(true));
        assert_eq!(builder.get_performance_config().default_command_timeout, COMMAND_TIMEOUT);
    }
}
