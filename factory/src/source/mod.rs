//! Where orders come from. The worker only sees [`OrderSource`], so the same factory code
//! runs on the Redis stream (the `factory` binary, [`RedisStreamSource`]) and on the
//! server's in-process queue (embedded mode, the server's own implementation, or
//! [`MemorySource`]).
//!
//! Delivery is at least once: a source may hand out the same order twice (a duplicate
//! entry, a reclaimed entry), and the worker copes because it always plans from the order's
//! current status and the API's status change is idempotent.

use async_trait::async_trait;

mod memory;
mod redis;

pub use memory::MemorySource;
pub use redis::{CONSUMER_GROUP, ORDER_ID_FIELD, RedisStreamSource};

/// One order handed to the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The stream entry id (or any queue id): what `ack`, `keep` and `release` refer to.
    pub id: String,
    /// The order to work on, as the API knows it.
    pub order_id: String,
    /// The W3C trace context the order was handed over in (the stream entry's
    /// `traceparent`), which the work on it continues; `None` when it came without one.
    pub traceparent: Option<String>,
}

#[async_trait]
pub trait OrderSource: Send + Sync + 'static {
    /// Up to `max` orders to work on; may wait a few seconds and return none.
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<Delivery>>;
    /// The order is final: forget the delivery for good.
    async fn ack(&self, delivery: &Delivery) -> anyhow::Result<()>;
    /// Still working on it: keep it ours (resets its idle time, so nobody reclaims it).
    async fn keep(&self, delivery: &Delivery) -> anyhow::Result<()>;
    /// Give it back now so another worker can take it (API down, shutting down).
    async fn release(&self, delivery: &Delivery) -> anyhow::Result<()>;
}
