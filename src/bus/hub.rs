//! Fan-out of status events to the subscriptions of this instance, demultiplexed by order
//! id and by user id. One feed comes in (one Redis subscriber connection per instance, or
//! the in-process bus); each subscription has its own small broadcast channel.
//!
//! Sending never waits, so a slow client never slows the others: when its channel overflows
//! it sees `Lagged` and re-reads from the database. [`EventHub::resync_all`] tells every
//! subscription to re-read (the Redis connection dropped, or its own buffer overflowed).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use minifig_common::telemetry::propagation;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::StatusEvent;
use crate::metrics::{self, Resync};

/// Events one order can produce before it is final is 4; a little slack for duplicates.
/// Every subscribed order holds one such channel, so it is kept small: a subscriber that
/// falls further behind re-reads from the database.
const ORDER_CHANNEL_CAPACITY: usize = 8;
/// A customer's events across all their orders.
const USER_CHANNEL_CAPACITY: usize = 64;

#[derive(Debug, Clone)]
pub enum HubMessage {
    Event(Arc<StatusEvent>),
    /// Something may have been missed: re-read from the database.
    Resync,
}

type Channels<K> = Mutex<HashMap<K, broadcast::Sender<HubMessage>>>;

#[derive(Default)]
pub struct EventHub {
    by_order: Channels<Uuid>,
    by_user: Channels<Uuid>,
}

/// A subscription's receiver; unregisters its channel when the last one for a key goes.
pub struct HubReceiver {
    receiver: Option<broadcast::Receiver<HubMessage>>,
    hub: Arc<EventHub>,
    key: Key,
}

#[derive(Clone, Copy)]
enum Key {
    Order(Uuid),
    User(Uuid),
}

impl EventHub {
    pub fn new() -> Arc<Self> {
        Arc::new(EventHub::default())
    }

    pub fn subscribe_order(self: &Arc<Self>, order_id: Uuid) -> HubReceiver {
        let receiver = subscribe(&self.by_order, order_id, ORDER_CHANNEL_CAPACITY);
        HubReceiver { receiver: Some(receiver), hub: self.clone(), key: Key::Order(order_id) }
    }

    pub fn subscribe_user(self: &Arc<Self>, user_id: Uuid) -> HubReceiver {
        let receiver = subscribe(&self.by_user, user_id, USER_CHANNEL_CAPACITY);
        HubReceiver { receiver: Some(receiver), hub: self.clone(), key: Key::User(user_id) }
    }

    /// Routes one event to the subscriptions of its order and of its owner.
    pub fn dispatch(&self, event: StatusEvent) {
        self.dispatch_traced(event, None);
    }

    /// [`EventHub::dispatch`], in the trace of the status change (`traceparent`, from the
    /// status message): while traces are on, each instance's fan-out of a traced change is
    /// a span of that change's trace.
    pub fn dispatch_traced(&self, event: StatusEvent, traceparent: Option<&str>) {
        let _span = traceparent.filter(|_| propagation::is_enabled()).map(|traceparent| {
            let span = tracing::info_span!(
                parent: None,
                "hub.dispatch",
                order_id = %event.order_id,
                status = %event.status,
                version = event.version,
            );
            propagation::set_parent(&span, Some(traceparent), None);
            span.entered()
        });
        // By this instance's clock against the committing one's: a skew between them shows
        // here, and a negative delay counts as none.
        metrics::dispatched((chrono::Utc::now() - event.at).to_std().unwrap_or_default());
        let event = Arc::new(event);
        send(&self.by_order, &event.order_id, HubMessage::Event(event.clone()));
        let user_id = event.user_id;
        send(&self.by_user, &user_id, HubMessage::Event(event));
    }

    pub fn resync_all(&self, reason: Resync) {
        metrics::resynced(reason);
        for channels in [&self.by_order, &self.by_user] {
            for sender in lock(channels).values() {
                let _ = sender.send(HubMessage::Resync);
            }
        }
    }

    /// Subscriptions (order and user channels) currently open on this instance.
    pub fn channel_count(&self) -> usize {
        lock(&self.by_order).len() + lock(&self.by_user).len()
    }
}

impl HubReceiver {
    /// The next message; `Resync` after a lag. `None` never happens while the hub lives.
    pub async fn recv(&mut self) -> HubMessage {
        let Some(receiver) = self.receiver.as_mut() else { return HubMessage::Resync };
        loop {
            match receiver.recv().await {
                Ok(message) => return message,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    metrics::subscriber_lagged();
                    return HubMessage::Resync;
                }
                // The sender lives in the hub's map as long as a receiver for the key exists.
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

impl Drop for HubReceiver {
    fn drop(&mut self) {
        drop(self.receiver.take());
        match self.key {
            Key::Order(id) => unregister_if_unused(&self.hub.by_order, id),
            Key::User(id) => unregister_if_unused(&self.hub.by_user, id),
        }
    }
}

fn lock<K>(channels: &Channels<K>) -> std::sync::MutexGuard<'_, HashMap<K, broadcast::Sender<HubMessage>>> {
    // Nothing in the map can be left half-updated by a panic, so a poisoned lock is usable.
    channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn subscribe<K: Eq + Hash>(channels: &Channels<K>, key: K, capacity: usize) -> broadcast::Receiver<HubMessage> {
    lock(channels).entry(key).or_insert_with(|| broadcast::channel(capacity).0).subscribe()
}

fn send<K: Eq + Hash>(channels: &Channels<K>, key: &K, message: HubMessage) {
    if let Some(sender) = lock(channels).get(key) {
        let _ = sender.send(message);
    }
}

fn unregister_if_unused<K: Eq + Hash>(channels: &Channels<K>, key: K) {
    let mut map = lock(channels);
    if map.get(&key).is_some_and(|sender| sender.receiver_count() == 0) {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderStatus;

    fn event(order: u128, user: u128, version: i32) -> StatusEvent {
        StatusEvent {
            order_id: Uuid::from_u128(order),
            user_id: Uuid::from_u128(user),
            status: OrderStatus::Accepted,
            version,
            at: chrono::Utc::now(),
            note: None,
            seq: version.into(),
        }
    }

    #[tokio::test]
    async fn events_reach_their_order_and_user_subscribers_only() {
        let hub = EventHub::new();
        let mut order = hub.subscribe_order(Uuid::from_u128(1));
        let mut user = hub.subscribe_user(Uuid::from_u128(9));
        let mut other = hub.subscribe_order(Uuid::from_u128(2));
        hub.dispatch(event(1, 9, 2));
        assert!(matches!(order.recv().await, HubMessage::Event(e) if e.version == 2));
        assert!(matches!(user.recv().await, HubMessage::Event(e) if e.order_id == Uuid::from_u128(1)));
        hub.dispatch(event(2, 8, 5));
        assert!(matches!(other.recv().await, HubMessage::Event(e) if e.version == 5));
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_to_resync() {
        let hub = EventHub::new();
        let mut slow = hub.subscribe_order(Uuid::from_u128(1));
        for version in 0..(ORDER_CHANNEL_CAPACITY as i32 + 5) {
            hub.dispatch(event(1, 9, version));
        }
        assert!(matches!(slow.recv().await, HubMessage::Resync));
    }

    #[test]
    fn channels_go_away_with_their_last_subscriber() {
        let hub = EventHub::new();
        let first = hub.subscribe_order(Uuid::from_u128(1));
        let second = hub.subscribe_order(Uuid::from_u128(1));
        let user = hub.subscribe_user(Uuid::from_u128(9));
        assert_eq!(hub.channel_count(), 2);
        drop(first);
        assert_eq!(hub.channel_count(), 2);
        drop(second);
        drop(user);
        assert_eq!(hub.channel_count(), 0);
    }
}
