//! The message bus between the database and everything live: orders for the factories and
//! status events for subscribers. Two backends behind one trait: Redis (streams and pub/sub,
//! for many instances) and in-process (the embedded default).
//!
//! Nothing is published straight from a request: services write [`outbox`] rows in the
//! transaction that changes an order, and the [`outbox::Relay`] publishes them. The database
//! stays the record; Redis is a transport that may forget (see [`redelivery`]).

pub mod event;
pub mod hub;
pub mod in_process;
pub mod outbox;
pub mod redelivery;
pub mod redis;

use async_graphql::async_trait::async_trait;
use uuid::Uuid;

pub use event::StatusEvent;
pub use hub::EventHub;

/// Where published messages go. Implementations deliver status events to every API
/// instance's [`EventHub`] (their own included) and orders to the factories.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Hands an order to the factories (Redis: `XADD <prefix>orders * order_id <id>`).
    async fn enqueue_order(&self, order_id: Uuid) -> anyhow::Result<()>;
    /// Announces a status change (Redis: `PUBLISH <prefix>order-status <json>`).
    async fn publish_status(&self, event: &StatusEvent) -> anyhow::Result<()>;
    /// Whether the transport answers, for `/readyz`; `None` when there is none to ask.
    async fn ping(&self) -> Option<anyhow::Result<()>>;
}
