//! The embedded bus: status events go straight to this process's hub, orders wait in a
//! de-duplicated in-memory queue for the in-process factory. Nothing survives a restart,
//! and nothing needs to: the redelivery sweep hands unfinished orders out again.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::async_trait::async_trait;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{Bus, EventHub, OutboxMessage};

pub struct InProcessBus {
    hub: Arc<EventHub>,
    queue: Arc<OrderQueue>,
}

impl InProcessBus {
    pub fn new(hub: Arc<EventHub>) -> Self {
        InProcessBus { hub, queue: Arc::new(OrderQueue::default()) }
    }

    /// The queue the in-process factory takes orders from.
    pub fn queue(&self) -> Arc<OrderQueue> {
        self.queue.clone()
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, messages: &[&OutboxMessage]) -> Vec<anyhow::Result<()>> {
        for message in messages {
            match message {
                OutboxMessage::Order(order_id) => self.queue.push(*order_id),
                OutboxMessage::Status(event) => self.hub.dispatch(event.clone()),
            }
        }
        messages.iter().map(|_| Ok(())).collect()
    }

    async fn ping(&self) -> Option<anyhow::Result<()>> {
        None
    }
}

/// Orders waiting for a factory, each at most once (a redelivered order that is still
/// waiting is not queued twice).
#[derive(Default)]
pub struct OrderQueue {
    waiting: Mutex<(VecDeque<Uuid>, HashSet<Uuid>)>,
    arrived: Notify,
}

impl OrderQueue {
    pub fn push(&self, order_id: Uuid) {
        let mut waiting = self.lock();
        if waiting.1.insert(order_id) {
            waiting.0.push_back(order_id);
            self.arrived.notify_one();
        }
    }

    /// Up to `max` orders, waiting at most `wait` for the first one.
    pub async fn pop(&self, max: usize, wait: Duration) -> Vec<Uuid> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.arrived.notified();
            {
                let mut waiting = self.lock();
                let n = max.min(waiting.0.len());
                if n > 0 {
                    let taken: Vec<Uuid> = waiting.0.drain(..n).collect();
                    for id in &taken {
                        waiting.1.remove(id);
                    }
                    return taken;
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Uuid>, HashSet<Uuid>)> {
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The in-process queue as the embedded factory's order source: the same factory code as
/// the `factory` binary, fed without Redis. Nothing to acknowledge or keep: a delivered
/// order is the factory's until it is final or released (and the redelivery sweep covers
/// a crash).
pub struct QueueSource(pub Arc<OrderQueue>);

/// How long the embedded factory waits for an order before looking again.
const RECEIVE_WAIT: Duration = Duration::from_secs(2);

#[async_trait]
impl factory::OrderSource for QueueSource {
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<factory::Delivery>> {
        let orders = self.0.pop(max, RECEIVE_WAIT).await;
        Ok(orders.into_iter().map(|id| factory::Delivery { id: id.to_string(), order_id: id.to_string() }).collect())
    }

    async fn ack(&self, _delivery: &factory::Delivery) -> anyhow::Result<()> {
        Ok(())
    }

    async fn keep(&self, _delivery: &factory::Delivery) -> anyhow::Result<()> {
        Ok(())
    }

    async fn release(&self, delivery: &factory::Delivery) -> anyhow::Result<()> {
        self.0.push(Uuid::parse_str(&delivery.order_id)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn orders_come_out_once_in_arrival_order() {
        let queue = OrderQueue::default();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        queue.push(a);
        queue.push(b);
        queue.push(a);
        assert_eq!(queue.pop(10, Duration::from_millis(10)).await, vec![a, b]);
        assert!(queue.pop(10, Duration::from_millis(10)).await.is_empty());
    }

    #[tokio::test]
    async fn a_waiting_pop_wakes_when_an_order_arrives() {
        let queue = Arc::new(OrderQueue::default());
        let waiter = tokio::spawn({
            let queue = queue.clone();
            async move { queue.pop(1, Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue.push(Uuid::from_u128(7));
        assert_eq!(waiter.await.unwrap(), vec![Uuid::from_u128(7)]);
    }
}
