//! Two deliveries of one order in this process take turns: a duplicate entry, or one
//! reclaimed while the first is still being worked on, waits for the first to finish.

use std::collections::HashMap;
use std::sync::Arc;

/// A lock per order id, created on first use and dropped when nobody holds or waits for it.
#[derive(Default)]
pub(super) struct OrderLocks(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl OrderLocks {
    pub(super) fn get(&self, order_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.0.lock().expect("order locks").entry(order_id.to_owned()).or_default().clone()
    }

    /// Returns a lock taken with [`get`](Self::get) (after its guard is dropped). Clones are
    /// only made and dropped under the map's lock, so a count of one means nobody else
    /// has it.
    pub(super) fn put_back(&self, order_id: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self.0.lock().expect("order locks");
        drop(lock);
        if locks.get(order_id).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            locks.remove(order_id);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().expect("order locks").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn order_locks_are_shared_while_in_use_and_dropped_after() {
        let locks = OrderLocks::default();
        let one = locks.get("a");
        let two = locks.get("a");
        assert!(Arc::ptr_eq(&one, &two));
        let turn = one.clone().try_lock_owned().unwrap();
        assert!(two.clone().try_lock_owned().is_err(), "a second delivery waits its turn");
        drop(turn);
        locks.put_back("a", one);
        assert_eq!(locks.len(), 1, "still in use by the second delivery");
        locks.put_back("a", two);
        assert_eq!(locks.len(), 0);
    }
}
