//! The message bus between the database and everything live: orders for the factories and
//! status events for subscribers. Two backends behind one trait: Redis (streams and pub/sub,
//! for many instances) and in-process (the embedded default).
//!
//! Services write [`outbox`] rows in the transaction that changes an order and hand them to
//! the [`outbox::Relay`] after the commit, which publishes them at once (and from the table
//! whenever that failed). The database stays the record; Redis is a transport that may
//! forget (see [`redelivery`]).

pub mod hub;
pub mod in_process;
pub mod outbox;
pub mod redelivery;
pub mod redis;

use async_trait::async_trait;
pub use hub::EventHub;
pub use outbox::OutboxMessage;

/// Where published messages go. Implementations deliver status events to every API
/// instance's [`EventHub`] (their own included) and orders to the factories.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Sends `messages` in order, as one batch where the transport allows: an order goes to
    /// the factories (Redis: `XADD <prefix>orders * order_id <id>`), a status change to every
    /// instance (Redis: `PUBLISH <prefix>order-status <json>`). Answers one outcome per
    /// message, in order: a message whose outcome is an error may not have been sent, and
    /// is sent again later; the others are done. Redis may refuse one kind of command and
    /// not the other (`XADD` under `maxmemory`, say), so one failure says nothing of the rest.
    async fn publish(&self, messages: &[&OutboxMessage]) -> Vec<anyhow::Result<()>>;
    /// Whether the transport answers, for `/readyz`; `None` when there is none to ask.
    async fn ping(&self) -> Option<anyhow::Result<()>>;
}
