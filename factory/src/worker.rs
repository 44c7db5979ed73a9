//! The factory: takes orders from an [`OrderSource`] and moves each one to SHIPPED through
//! the API, one step every `FACTORY_STEP_MS`.
//!
//! - **Bounded**: at most `FACTORY_CONCURRENCY` orders at once; the factory only asks the
//!   source for as many orders as it has free slots, so it never sits on orders it is not
//!   working on.
//! - **At least once, safely**: every step starts from the order's current status as the
//!   API reports it ([`crate::status::next_step`]) and the API ignores a change to the
//!   status an order already has, so a duplicate or reclaimed delivery adds no history.
//!   Two deliveries of one order in this process take turns. A delivery is acknowledged
//!   only once its order is final.
//! - **Blips are not outages**: an API call that fails for a moment (a dropped connection,
//!   a 502 while an instance restarts) is retried in place, and an answer about the order
//!   (`INVALID_TRANSITION`, `CONFLICT`, the status it already has) is progress: the order is
//!   re-read and worked on from where it really is.
//! - **API down**: only sustained failure opens the circuit ([`crate::circuit`]). Then the
//!   factory takes no new orders, hands back (`release`) every order it holds so that other
//!   factories finish them promptly, and probes the API (by logging in) with backoff until
//!   it answers.
//! - **Nothing held forever**: an `ack` or `release` that fails is retried a few times;
//!   after that the source lets go of the delivery anyway (on Redis, the entry stays
//!   pending in the group and is claimed again after the idle time).
//! - **Shutdown**: stop taking orders, let each HTTP call in flight finish, release what is
//!   not final, return `Ok`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::{ApiClient, ApiError};
use crate::circuit::{CallError, Circuit};
use crate::config::WorkerSettings;
use crate::retry::{self, Backoff};
use crate::source::{Delivery, OrderSource};
use crate::status::{Status, Step, delay_before, next_step};

/// How long, at shutdown, a read already under way may take to come back (its orders are
/// then released rather than left to a claim timeout).
const RECEIVE_GRACE: Duration = Duration::from_secs(10);
/// The longest a delivery goes untouched while its order is worked on: long steps are
/// slept, and slow or retried API calls awaited, in slices of this, with a `keep` after
/// each, so that no other factory reclaims an order that is merely slow (as long as
/// `FACTORY_CLAIM_IDLE_MS` is longer than this).
const KEEP_EVERY: Duration = Duration::from_secs(5);
/// Refused status changes in a row (`INVALID_TRANSITION` or `CONFLICT`), each followed by
/// a re-read, before the factory gives an order back instead of insisting.
const MAX_REFUSALS: u32 = 5;

/// The worker, built from its settings and a source, then run until stopped.
pub struct Factory {
    shared: Arc<Shared>,
    concurrency: usize,
}

/// What every order task shares.
struct Shared {
    /// The API, as the FACTORY account.
    api: ApiClient,
    /// Where orders come from and go back to.
    source: Arc<dyn OrderSource>,
    /// Simulated time of one production step.
    step: Duration,
    /// Whether the API counts as up; calls open it, the main loop's probe closes it.
    circuit: Circuit,
    /// Cancelled when the factory stops.
    stop: CancellationToken,
    /// One lock per order in progress, so two deliveries of one order take turns.
    locks: OrderLocks,
}

/// How working on one delivery ended, i.e. what to tell the source.
#[derive(Debug)]
enum Outcome {
    /// The order is final: acknowledge.
    Final(Status),
    /// The API knows no such order: acknowledge and skip.
    Gone,
    /// A status this factory does not know: acknowledge and leave the order alone.
    Unknown(Status),
    /// Not finished here: give it back.
    Release(Why),
}

#[derive(Debug, Clone, Copy)]
enum Why {
    ShuttingDown,
    ApiDown,
    Refused,
    /// The API kept failing on this order while others went through.
    Failing,
    NoFreeSlot,
}

impl Factory {
    /// Builds the factory. Does not contact the API (it may not be up yet: the embedding
    /// server builds its factory before it serves); `run_until` logs in, with backoff.
    pub fn build(settings: &WorkerSettings, source: Arc<dyn OrderSource>) -> anyhow::Result<Self> {
        let shared = Shared {
            api: ApiClient::new(settings)?,
            source,
            step: settings.step(),
            circuit: Circuit::new(),
            stop: CancellationToken::new(),
            locks: OrderLocks::default(),
        };
        Ok(Factory { shared: Arc::new(shared), concurrency: settings.concurrency.max(1) as usize })
    }

    /// Runs until SIGINT or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Runs until `shutdown` resolves, then finishes the HTTP calls in flight, releases
    /// the orders that are not final, and returns.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let Factory { shared, concurrency } = self;
        let slots = Arc::new(Semaphore::new(concurrency));
        let mut tasks = JoinSet::new();
        let mut api_backoff = Backoff::new(retry::UNTIL_BACK);
        // Whether the API was probed before (the first login is not delayed).
        let mut probed = false;
        let mut source_backoff = Backoff::new(retry::UNTIL_BACK);
        tokio::pin!(shutdown);
        tracing::info!(concurrency, step_ms = shared.step.as_millis() as u64, "factory started");

        'run: loop {
            while let Some(joined) = tasks.try_join_next() {
                report_join(joined);
            }
            // 1. At least one free slot.
            let first = tokio::select! {
                () = &mut shutdown => break 'run,
                slot = slots.clone().acquire_owned() => slot.expect("the slot semaphore is never closed"),
            };
            let mut free = vec![first];
            while free.len() < concurrency {
                match slots.clone().try_acquire_owned() {
                    Ok(slot) => free.push(slot),
                    Err(_) => break,
                }
            }

            // 2. No orders while the API does not answer. Probes (logins) back off, and
            //    the backoff only starts over once orders made progress again, so that
            //    an API that accepts the login but fails every step is not hammered.
            if shared.circuit.is_open() {
                if shared.circuit.take_progress() {
                    api_backoff.reset();
                }
                if probed {
                    let wait = api_backoff.next_delay();
                    tokio::select! {
                        () = &mut shutdown => break 'run,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                probed = true;
                let probe = tokio::select! {
                    () = &mut shutdown => break 'run,
                    probe = shared.api.login() => probe,
                };
                match probe {
                    Ok(()) => {
                        shared.circuit.close();
                        tracing::info!("the API answers; taking orders");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "the API is unreachable; taking no orders");
                        continue 'run;
                    }
                }
            }

            // 3. As many orders as there are free slots.
            let receive = shared.source.receive(free.len());
            tokio::pin!(receive);
            let received = tokio::select! {
                received = &mut receive => received,
                () = &mut shutdown => {
                    shared.stop.cancel();
                    // The read may already have taken entries: hand them back now rather
                    // than leave them pending until another factory's claim timeout.
                    if let Ok(Ok(deliveries)) = tokio::time::timeout(RECEIVE_GRACE, receive).await {
                        for delivery in deliveries {
                            release(&shared, &delivery, Why::ShuttingDown).await;
                        }
                    }
                    break 'run;
                }
            };
            let deliveries = match received {
                Ok(deliveries) => {
                    source_backoff.reset();
                    deliveries
                }
                Err(err) => {
                    let wait = source_backoff.next_delay();
                    tracing::warn!(
                        error = format!("{err:#}"),
                        retry_in_ms = wait.as_millis() as u64,
                        "could not receive orders"
                    );
                    tokio::select! {
                        () = &mut shutdown => break 'run,
                        () = tokio::time::sleep(wait) => continue 'run,
                    }
                }
            };
            for delivery in deliveries {
                match free.pop() {
                    Some(slot) => {
                        tasks.spawn(work(shared.clone(), delivery, slot));
                    }
                    None => {
                        tracing::warn!(order_id = %delivery.order_id, "the source returned more orders than asked for");
                        release(&shared, &delivery, Why::NoFreeSlot).await;
                    }
                }
            }
        }

        shared.stop.cancel();
        tracing::info!(in_flight = tasks.len(), "stopping: finishing the steps in flight, releasing the rest");
        while let Some(joined) = tasks.join_next().await {
            report_join(joined);
        }
        tracing::info!("factory stopped");
        Ok(())
    }
}

/// Builds a [`Factory`] on `source` and runs it until `shutdown` resolves: the entry point
/// for embedding the factory in another process (the server, with its in-process queue).
pub async fn run_with_source(
    source: Arc<dyn OrderSource>,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    Factory::build(&settings, source)?.run_until(shutdown).await
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown signal received");
}

fn report_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined {
        tracing::error!(error = %err, "an order task failed");
    }
}

/// Works on one delivery from start to acknowledgement or release. `_slot` frees its
/// concurrency slot when the task ends.
async fn work(shared: Arc<Shared>, delivery: Delivery, _slot: OwnedSemaphorePermit) {
    let span = tracing::info_span!("order", order_id = %delivery.order_id, entry = %delivery.id);
    async move {
        let lock = shared.locks.get(&delivery.order_id);
        let outcome = match take_turn(&shared, &delivery, &lock).await {
            Ok(_turn) => process(&shared, &delivery).await,
            Err(why) => Outcome::Release(why),
        };
        shared.locks.put_back(&delivery.order_id, lock);
        match outcome {
            Outcome::Final(status) => {
                tracing::info!(%status, "order is final");
                ack(&shared, &delivery).await;
            }
            Outcome::Gone => {
                tracing::warn!("the API knows no such order; skipping it");
                ack(&shared, &delivery).await;
            }
            Outcome::Unknown(status) => {
                tracing::warn!(%status, "the order is in a status this factory does not know; leaving it alone");
                ack(&shared, &delivery).await;
            }
            Outcome::Release(why) => release(&shared, &delivery, why).await,
        }
    }
    .instrument(span)
    .await
}

/// This process's turn on the order: immediate, unless another delivery of the same order
/// is being worked on here, in which case this one waits (kept, so nobody reclaims it).
async fn take_turn(
    shared: &Shared,
    delivery: &Delivery,
    lock: &Arc<tokio::sync::Mutex<()>>,
) -> Result<OwnedMutexGuard<()>, Why> {
    if let Ok(turn) = lock.clone().try_lock_owned() {
        return Ok(turn);
    }
    tracing::debug!("this order is already in progress here; waiting for its turn");
    loop {
        tokio::select! {
            turn = lock.clone().lock_owned() => return Ok(turn),
            () = tokio::time::sleep(shared.step.clamp(Duration::from_millis(100), KEEP_EVERY)) => keep(shared, delivery).await,
            () = shared.stop.cancelled() => return Err(Why::ShuttingDown),
            () = shared.circuit.opened() => return Err(Why::ApiDown),
        }
    }
}

/// Moves the order along until it is final, or until the factory must let it go.
async fn process(shared: &Shared, delivery: &Delivery) -> Outcome {
    if let Some(why) = shared.must_let_go() {
        return Outcome::Release(why);
    }
    let order_id = delivery.order_id.as_str();
    let mut order = match shared.call(delivery, || shared.api.order_state(order_id)).await {
        Ok(order) => order,
        Err(err) => return shared.let_go(err),
    };
    let mut refusals = 0;
    loop {
        let to = match next_step(&order.status) {
            Step::Done => return Outcome::Final(order.status),
            Step::Unknown => return Outcome::Unknown(order.status),
            Step::Move(to) => to,
        };
        if let Some(why) = shared.must_let_go() {
            return Outcome::Release(why);
        }
        let delay = delay_before(&to, shared.step);
        if !delay.is_zero()
            && let Some(why) = shared.pause(delivery, delay).await
        {
            return Outcome::Release(why);
        }
        // The API answers a change to the status the order already has with the order as
        // it is, so a retried step whose first answer was lost is progress like any other.
        match shared.call(delivery, || shared.api.update_status(order_id, &to)).await {
            Ok(now) => {
                tracing::info!(status = %now.status, version = now.version, "order moved");
                order = now;
                refusals = 0;
            }
            Err(CallError::Answer(err @ (ApiError::InvalidTransition(_) | ApiError::Conflict(_)))) => {
                // Someone else moved it (a customer cancelled, another factory went ahead,
                // perhaps past `to`) or was moving it at that moment: plan again from where
                // it really is.
                refusals += 1;
                if refusals > MAX_REFUSALS {
                    tracing::warn!(%to, error = %err, "the API keeps refusing this order's next step; giving it back");
                    return Outcome::Release(Why::Refused);
                }
                tracing::info!(%to, error = %err, "status change refused; re-reading the order");
                order = match shared.call(delivery, || shared.api.order_state(order_id)).await {
                    Ok(order) => order,
                    Err(err) => return shared.let_go(err),
                };
            }
            Err(err) => return shared.let_go(err),
        }
    }
}

async fn keep(shared: &Shared, delivery: &Delivery) {
    if let Err(err) = shared.source.keep(delivery).await {
        tracing::warn!(error = format!("{err:#}"), "could not keep the delivery; carrying on");
    }
}

async fn ack(shared: &Shared, delivery: &Delivery) {
    let acked = retry::retrying(retry::REDIS_WRITE, "acknowledging the delivery", || shared.source.ack(delivery)).await;
    if let Err(err) = acked {
        // The source no longer holds it; the entry stays pending in the group, and whoever
        // claims it after the idle time finds the order final and acknowledges it then.
        tracing::warn!(error = format!("{err:#}"), "could not acknowledge the delivery");
    }
}

async fn release(shared: &Shared, delivery: &Delivery, why: Why) {
    let released =
        retry::retrying(retry::REDIS_WRITE, "handing the order back", || shared.source.release(delivery)).await;
    match released {
        Ok(()) => tracing::info!(order_id = %delivery.order_id, reason = ?why, "order handed back"),
        Err(err) => tracing::warn!(
            order_id = %delivery.order_id,
            reason = ?why,
            error = format!("{err:#}"),
            "could not hand the order back; it will be reclaimed after the idle timeout"
        ),
    }
}

impl Shared {
    /// Whether to stop working on orders now, and why.
    fn must_let_go(&self) -> Option<Why> {
        if self.stop.is_cancelled() {
            Some(Why::ShuttingDown)
        } else if self.circuit.is_open() {
            Some(Why::ApiDown)
        } else {
            None
        }
    }

    /// Works on the order for `delay`, keeping the delivery ours every [`KEEP_EVERY`] and
    /// at the end, unless the factory stops or the API goes down meanwhile.
    async fn pause(&self, delivery: &Delivery, delay: Duration) -> Option<Why> {
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            tokio::select! {
                () = tokio::time::sleep(left.min(KEEP_EVERY)) => {}
                () = self.stop.cancelled() => return Some(Why::ShuttingDown),
                () = self.circuit.opened() => return Some(Why::ApiDown),
            }
            keep(self, delivery).await;
        }
    }

    /// An API call about `delivery` through the circuit (retried in place when it fails
    /// for a moment), keeping the delivery ours every [`KEEP_EVERY`] while it and its
    /// retries take their time.
    async fn call<T, F, Fut>(&self, delivery: &Delivery, op: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let call = self.circuit.call(&self.stop, op);
        tokio::pin!(call);
        loop {
            tokio::select! {
                result = &mut call => return result,
                () = tokio::time::sleep(KEEP_EVERY) => keep(self, delivery).await,
            }
        }
    }

    /// What a call that got no value means for the order at hand.
    fn let_go(&self, err: CallError) -> Outcome {
        match err {
            CallError::Answer(ApiError::NotFound(_)) => Outcome::Gone,
            CallError::Answer(err) => {
                tracing::warn!(error = %err, "unexpected answer about the order; giving it back");
                Outcome::Release(Why::Refused)
            }
            CallError::Open => Outcome::Release(Why::ApiDown),
            CallError::Stopped => Outcome::Release(Why::ShuttingDown),
            CallError::GaveUp(err) => {
                tracing::warn!(error = %err, "the API keeps failing on this order while others go through; giving it back");
                Outcome::Release(Why::Failing)
            }
        }
    }
}

/// A lock per order id, created on first use and dropped when nobody holds or waits for it.
#[derive(Default)]
struct OrderLocks(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl OrderLocks {
    fn get(&self, order_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.0.lock().expect("order locks").entry(order_id.to_owned()).or_default().clone()
    }

    /// Returns a lock taken with [`get`](Self::get) (after its guard is dropped). Clones are
    /// only made and dropped under the map's lock, so a count of one means nobody else
    /// has it.
    fn put_back(&self, order_id: &str, lock: Arc<tokio::sync::Mutex<()>>) {
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

    #[test]
    fn the_embedding_entry_point_can_be_spawned() {
        fn spawnable<T: Future + Send + 'static>(_: T) {}
        // Type-checked, never run: a server can `tokio::spawn` the factory.
        let _ = || {
            let settings = WorkerSettings {
                api_url: "http://127.0.0.1:1/graphql".into(),
                username: "factory".into(),
                password: secrecy::SecretString::from("x"),
                step_ms: 1,
                concurrency: 1,
            };
            spawnable(run_with_source(Arc::new(crate::MemorySource::new()), settings, std::future::pending()));
        };
    }

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
