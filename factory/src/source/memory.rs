//! An in-process [`OrderSource`]: a queue in memory, for embedding the factory in the server
//! (its in-process bus pushes orders here; no Redis) and for tests of the worker. Nothing
//! survives the process, which is fine where the server is the same process and re-hands
//! unfinished orders itself.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use super::{Delivery, OrderSource};

/// How long `receive` waits for an order before returning none.
const RECEIVE_WAIT: Duration = Duration::from_secs(2);

/// A FIFO of order ids, each waiting at most once (an order handed out again while it
/// still waits is not queued twice); a delivery stays "held" from `receive` until `ack` or
/// `release`.
#[derive(Debug, Default)]
pub struct MemorySource {
    state: Mutex<State>,
    arrived: Notify,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Delivery>,
    /// The order ids in `queue`.
    waiting: HashSet<String>,
    held: HashMap<String, Delivery>,
    next_id: u64,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues an order for the factory, unless it is already waiting.
    pub fn push(&self, order_id: impl Into<String>) {
        self.push_traced(order_id, None);
    }

    /// [`MemorySource::push`], in the trace of `traceparent` (the embedded server hands
    /// over the trace of `placeOrder`, as the Redis stream entry does).
    pub fn push_traced(&self, order_id: impl Into<String>, traceparent: Option<String>) {
        let order_id = order_id.into();
        let mut state = self.lock();
        if !state.waiting.insert(order_id.clone()) {
            return;
        }
        state.next_id += 1;
        let delivery = Delivery { id: state.next_id.to_string(), order_id, traceparent };
        state.queue.push_back(delivery);
        drop(state);
        self.arrived.notify_one();
    }

    /// A panic elsewhere while holding the lock leaves the queue itself consistent: every
    /// change under it is a single push or drain.
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Orders queued and not yet received.
    pub fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Orders received and neither acknowledged nor released.
    pub fn held(&self) -> usize {
        self.lock().held.len()
    }

    fn take(&self, max: usize) -> Vec<Delivery> {
        let mut state = self.lock();
        let count = max.min(state.queue.len());
        let taken: Vec<Delivery> = state.queue.drain(..count).collect();
        for delivery in &taken {
            state.waiting.remove(&delivery.order_id);
            state.held.insert(delivery.id.clone(), delivery.clone());
        }
        if !state.queue.is_empty() {
            // Someone else may be waiting too.
            self.arrived.notify_one();
        }
        taken
    }
}

#[async_trait]
impl OrderSource for MemorySource {
    async fn receive(&self, max: usize) -> anyhow::Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + RECEIVE_WAIT;
        loop {
            // Register interest before looking, so a push in between is not missed.
            let arrived = self.arrived.notified();
            let taken = self.take(max);
            if !taken.is_empty() {
                return Ok(taken);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn ack(&self, delivery: &Delivery) -> anyhow::Result<()> {
        self.lock().held.remove(&delivery.id);
        Ok(())
    }

    async fn keep(&self, _delivery: &Delivery) -> anyhow::Result<()> {
        Ok(())
    }

    async fn release(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let mut state = self.lock();
        if let Some(delivery) = state.held.remove(&delivery.id)
            && state.waiting.insert(delivery.order_id.clone())
        {
            state.queue.push_back(delivery);
            drop(state);
            self.arrived.notify_one();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn orders_come_out_in_order_and_released_ones_come_back() {
        let source = MemorySource::new();
        source.push("a");
        source.push("b");
        source.push("c");
        let first = source.receive(2).await.unwrap();
        assert_eq!(first.iter().map(|d| d.order_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!((source.queued(), source.held()), (1, 2));
        source.ack(&first[0]).await.unwrap();
        source.release(&first[1]).await.unwrap();
        let rest = source.receive(10).await.unwrap();
        assert_eq!(rest.iter().map(|d| d.order_id.as_str()).collect::<Vec<_>>(), ["c", "b"]);
        assert_eq!((source.queued(), source.held()), (0, 2));
    }

    #[tokio::test]
    async fn an_order_waits_once_however_often_it_is_pushed() {
        let source = MemorySource::new();
        source.push("a");
        source.push("b");
        source.push("a");
        let first = source.receive(10).await.unwrap();
        assert_eq!(first.iter().map(|d| d.order_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        // Handed out again while a factory holds it (a redelivery): it waits again, once.
        source.push("a");
        source.push("a");
        source.release(&first[0]).await.unwrap();
        assert_eq!(source.queued(), 1);
    }

    #[tokio::test]
    async fn receive_wakes_up_for_an_order_pushed_while_it_waits() {
        let source = std::sync::Arc::new(MemorySource::new());
        let waiting = tokio::spawn({
            let source = source.clone();
            async move { source.receive(1).await.unwrap() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        source.push("late");
        let got = waiting.await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].order_id, "late");
    }
}
