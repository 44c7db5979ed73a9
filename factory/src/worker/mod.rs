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

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::order_locks::OrderLocks;
use self::process::{Why, release, work};
use crate::api::{ApiClient, ApiError};
use crate::circuit::Circuit;
use crate::config::WorkerSettings;
use crate::retry::{self, Backoff};
use crate::source::{Delivery, OrderSource};

mod order_locks;
mod process;
mod shutdown;

pub use self::shutdown::shutdown_signal;

/// How long, at shutdown, a read already under way may take to come back (its orders are
/// then released rather than left to a claim timeout).
const RECEIVE_GRACE: Duration = Duration::from_secs(10);

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
        let stop = self.shared.stop.clone();
        let mut run = RunLoop::new(self);
        tracing::info!(concurrency = run.concurrency, step_ms = run.shared.step.as_millis() as u64, "factory started");
        // The loop and every order task watch `stop`, so shutdown is told to them all at once.
        let told = async move {
            tokio::select! {
                () = shutdown => stop.cancel(),
                () = stop.cancelled() => {}
            }
        };
        tokio::join!(told, run.rounds());
        run.finish().await;
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

/// The main loop: takes orders for its free slots while the API answers, and spawns one
/// task per order ([`process`]).
struct RunLoop {
    shared: Arc<Shared>,
    concurrency: usize,
    slots: Arc<Semaphore>,
    tasks: JoinSet<()>,
    /// Waits between probes of an API that is down. They carry on from one outage to the
    /// next and start over only once orders made progress again, so that an API that
    /// accepts the login but fails every step is not hammered.
    api_waits: Backoff,
    /// Whether the API was probed before (the first login is not delayed).
    probed: bool,
    /// Waits between reads of a source that fails; they start over after a read that works.
    source_waits: Backoff,
}

/// What a round of the main loop does after one of its steps.
enum Flow<T> {
    /// Go on with this round.
    Go(T),
    /// Start the next round.
    Again,
    /// The factory is stopping.
    Stop,
}

impl RunLoop {
    fn new(Factory { shared, concurrency }: Factory) -> Self {
        RunLoop {
            shared,
            concurrency,
            slots: Arc::new(Semaphore::new(concurrency)),
            tasks: JoinSet::new(),
            api_waits: Backoff::new(retry::UNTIL_BACK),
            probed: false,
            source_waits: Backoff::new(retry::UNTIL_BACK),
        }
    }

    /// Rounds until the factory stops: free slots, an API that answers, as many orders as
    /// there are free slots, one task for each.
    async fn rounds(&mut self) {
        loop {
            self.report_finished();
            let Some(mut free) = self.free_slots().await else { break };
            match self.api_answers(&mut free).await {
                Flow::Go(()) => {}
                Flow::Again => continue,
                Flow::Stop => break,
            }
            match self.receive(free.len()).await {
                Flow::Go(deliveries) => self.dispatch(deliveries, free).await,
                Flow::Again => continue,
                Flow::Stop => break,
            }
        }
        self.shared.stop.cancel();
    }

    /// At least one free slot (waiting for it), and every other one free at the moment.
    async fn free_slots(&self) -> Option<Vec<OwnedSemaphorePermit>> {
        let first = tokio::select! {
            () = self.shared.stop.cancelled() => return None,
            slot = self.slots.clone().acquire_owned() => slot.expect("the slot semaphore is never closed"),
        };
        let mut free = vec![first];
        self.top_up(&mut free);
        Some(free)
    }

    fn top_up(&self, free: &mut Vec<OwnedSemaphorePermit>) {
        while free.len() < self.concurrency {
            match self.slots.clone().try_acquire_owned() {
                Ok(slot) => free.push(slot),
                Err(_) => break,
            }
        }
    }

    /// No orders while the circuit is open: probes the API (by logging in) with backoff
    /// until it answers, then closes the circuit. Slots that came free meanwhile (their
    /// orders were handed back) are taken too.
    async fn api_answers(&mut self, free: &mut Vec<OwnedSemaphorePermit>) -> Flow<()> {
        if !self.shared.circuit.is_open() {
            return Flow::Go(());
        }
        if self.shared.circuit.take_progress() {
            self.api_waits.reset();
        }
        let stop = &self.shared.stop;
        if self.probed {
            let wait = self.api_waits.next_delay();
            tokio::select! {
                () = stop.cancelled() => return Flow::Stop,
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.probed = true;
        let api = &self.shared.api;
        let probe = (|| api.login()).retry(&mut self.api_waits).notify(|err: &ApiError, wait: Duration| {
            tracing::warn!(error = %err, retry_in_ms = wait.as_millis() as u64, "the API is unreachable; taking no orders");
        });
        let answered = tokio::select! {
            () = stop.cancelled() => return Flow::Stop,
            answered = probe => answered,
        };
        if let Err(err) = answered {
            tracing::warn!(error = %err, "the API is unreachable; taking no orders");
            return Flow::Again;
        }
        self.shared.circuit.close();
        tracing::info!("the API answers; taking orders");
        self.top_up(free);
        Flow::Go(())
    }

    /// Up to `count` orders. A read that fails is tried again in the next round, after a
    /// wait; a read under way at shutdown gets [`RECEIVE_GRACE`] to come back, and what it
    /// took is handed back at once rather than left pending until another factory's claim
    /// timeout.
    async fn receive(&mut self, count: usize) -> Flow<Vec<Delivery>> {
        let shared = &self.shared;
        let receive = shared.source.receive(count);
        tokio::pin!(receive);
        let received = tokio::select! {
            received = &mut receive => received,
            () = shared.stop.cancelled() => {
                if let Ok(Ok(deliveries)) = tokio::time::timeout(RECEIVE_GRACE, receive).await {
                    for delivery in deliveries {
                        release(shared, &delivery, Why::ShuttingDown).await;
                    }
                }
                return Flow::Stop;
            }
        };
        match received {
            Ok(deliveries) => {
                self.source_waits.reset();
                Flow::Go(deliveries)
            }
            Err(err) => {
                let wait = self.source_waits.next_delay();
                tracing::warn!(
                    error = format!("{err:#}"),
                    retry_in_ms = wait.as_millis() as u64,
                    "could not receive orders"
                );
                tokio::select! {
                    () = shared.stop.cancelled() => Flow::Stop,
                    () = tokio::time::sleep(wait) => Flow::Again,
                }
            }
        }
    }

    /// One task per delivery, each with a free slot.
    async fn dispatch(&mut self, deliveries: Vec<Delivery>, mut free: Vec<OwnedSemaphorePermit>) {
        for delivery in deliveries {
            match free.pop() {
                Some(slot) => {
                    self.tasks.spawn(work(self.shared.clone(), delivery, slot));
                }
                None => {
                    tracing::warn!(order_id = %delivery.order_id, "the source returned more orders than asked for");
                    release(&self.shared, &delivery, Why::NoFreeSlot).await;
                }
            }
        }
    }

    fn report_finished(&mut self) {
        while let Some(joined) = self.tasks.try_join_next() {
            report_join(joined);
        }
    }

    /// Lets the order tasks finish their HTTP calls in flight and release what is not final.
    async fn finish(mut self) {
        tracing::info!(in_flight = self.tasks.len(), "stopping: finishing the steps in flight, releasing the rest");
        while let Some(joined) = self.tasks.join_next().await {
            report_join(joined);
        }
        tracing::info!("factory stopped");
    }
}

fn report_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(err) = joined {
        tracing::error!(error = %err, "an order task failed");
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
}
