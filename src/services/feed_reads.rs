//! Reads of the record for live subscriptions, batched through a bounded queue.
//!
//! When an instance restarts, every client of it reconnects at once and each of tens of
//! thousands of `orderStatus` subscriptions needs its order's state before it goes live.
//! One query each would take every pool connection for seconds, so that the subscriptions
//! (and every request behind them) time out on the pool. Instead each read waits in a
//! bounded queue, and [`READERS`] readers serve up to [`BATCH`] reads at a time with two
//! queries, each reader on one connection: the rest of the pool stays free for requests,
//! and a subscription that cannot be served at once waits instead of failing. The same
//! path serves the re-reads of a subscription that may have missed an event.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use entity::order;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use crate::domain::StatusEvent;
use crate::error::AppError;
use crate::services::order_details;
use crate::services::orders::Order;

/// Readers serving the queue at once, each holding at most one pool connection.
pub const READERS: usize = 2;
/// Reads served by one pair of queries.
pub const BATCH: usize = 500;
/// Reads that may wait; past this a subscription waits to enter the queue.
const QUEUE_CAPACITY: usize = 8 * 1024;
/// Attempts at one batch before its reads fail (the database is down, not just busy).
const ATTEMPTS: u32 = 3;

/// An order and its events after some version, version ascending.
pub struct OrderHistory {
    pub order: Order,
    pub events: Vec<StatusEvent>,
}

type Reply = oneshot::Sender<Result<Option<OrderHistory>, AppError>>;

struct Read {
    order_id: Uuid,
    after_version: i32,
    reply: Reply,
}

/// The queue of reads; cloning shares it.
#[derive(Clone)]
pub struct FeedReads {
    queue: mpsc::Sender<Read>,
}

impl FeedReads {
    /// Starts the readers on `db`; they stop when the last handle is dropped.
    pub fn start(db: DatabaseConnection) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..READERS {
            tokio::spawn(reader(db.clone(), receiver.clone()));
        }
        FeedReads { queue }
    }

    /// The order `order_id` with its events after `after_version`; `None` when there is no
    /// such order.
    pub async fn history(&self, order_id: Uuid, after_version: i32) -> Result<Option<OrderHistory>, AppError> {
        let (reply, answer) = oneshot::channel();
        let gone = || AppError::Internal(anyhow::anyhow!("the subscription readers stopped"));
        self.queue.send(Read { order_id, after_version, reply }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn reader(db: DatabaseConnection, queue: Arc<Mutex<mpsc::Receiver<Read>>>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // One reader waits for work at a time; the others wait for the lock, so batches
        // are as full as the queue allows.
        if queue.lock().await.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        serve(&db, &mut batch).await;
    }
}

async fn serve(db: &DatabaseConnection, batch: &mut Vec<Read>) {
    let ids: Vec<Uuid> = batch.iter().map(|read| read.order_id).collect::<HashSet<_>>().into_iter().collect();
    let mut attempt = 0;
    let (orders, events) = loop {
        attempt += 1;
        match read(db, &ids).await {
            Ok(found) => break found,
            Err(err) if attempt >= ATTEMPTS => {
                let message = format!("{err:?}");
                for read in batch.drain(..) {
                    let cause = anyhow::anyhow!("reading order history: {message}");
                    let _ = read.reply.send(Err(AppError::Internal(cause)));
                }
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await,
        }
    };
    for read in batch.drain(..) {
        let answer = match orders.get(&read.order_id) {
            None => Ok(None),
            Some(order) => {
                let after = read.after_version;
                let events = events.get(&read.order_id).map_or(&[][..], Vec::as_slice);
                let events = events.iter().filter(|e| e.version > after).cloned().collect();
                Ok(Some(OrderHistory { order: order.clone(), events }))
            }
        };
        let _ = read.reply.send(answer);
    }
}

type Found = (HashMap<Uuid, Order>, HashMap<Uuid, Vec<StatusEvent>>);

async fn read(db: &DatabaseConnection, ids: &[Uuid]) -> Result<Found, AppError> {
    // Events first: an order read after its events is never older than them, so a
    // subscription never stops before an event it has not yet seen.
    let events = order_details::history_of(db, ids).await?;
    let models = order::Entity::find().filter(order::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    let mut orders = HashMap::with_capacity(models.len());
    for model in models {
        orders.insert(model.id, Order::from(model));
    }
    Ok((orders, events))
}
