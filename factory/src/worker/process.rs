//! One delivery, from its turn on the order to its acknowledgement or release: the order
//! is moved step by step from the status the API reports, and the delivery is kept ours
//! (`keep`) whenever the work on it takes a while.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use minifig_common::telemetry::propagation;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit};
use tracing::Instrument;

use super::Shared;
use crate::api::ApiError;
use crate::circuit::CallError;
use crate::metrics;
use crate::retry;
use crate::source::Delivery;
use crate::status::{Status, Step, delay_before, next_step};

/// The longest a delivery goes untouched while its order is worked on: long steps are
/// slept, and slow or retried API calls awaited, in slices of this, with a `keep` after
/// each, so that no other factory reclaims an order that is merely slow (as long as
/// `FACTORY_CLAIM_IDLE_MS` is longer than this).
const KEEP_EVERY: Duration = Duration::from_secs(5);
/// Refused status changes in a row (`INVALID_TRANSITION` or `CONFLICT`), each followed by
/// a re-read, before the factory gives an order back instead of insisting.
const MAX_REFUSALS: u32 = 5;

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

/// Why an order is handed back (logged with it).
#[derive(Debug, Clone, Copy)]
pub(super) enum Why {
    ShuttingDown,
    ApiDown,
    Refused,
    /// The API kept failing on this order while others went through.
    Failing,
    NoFreeSlot,
}

impl Why {
    /// One of [`metrics::RELEASE_REASONS`].
    fn label(self) -> &'static str {
        match self {
            Why::ShuttingDown => "shutting_down",
            Why::ApiDown => "api_down",
            Why::Refused => "refused",
            Why::Failing => "failing",
            Why::NoFreeSlot => "no_free_slot",
        }
    }
}

/// Works on one delivery from start to acknowledgement or release. `_slot` frees its
/// concurrency slot when the task ends.
pub(super) async fn work(shared: Arc<Shared>, delivery: Delivery, _slot: OwnedSemaphorePermit) {
    let span = tracing::info_span!("order", order_id = %delivery.order_id, entry = %delivery.id);
    // The trace the order was placed in (a malformed or absent context: a trace of its own).
    propagation::set_parent(&span, delivery.traceparent.as_deref(), None);
    async move {
        let _in_progress = metrics::in_progress();
        let lock = shared.locks.get(&delivery.order_id);
        let outcome = match take_turn(&shared, &delivery, &lock).await {
            Ok(_turn) => process(&shared, &delivery).await,
            Err(why) => Outcome::Release(why),
        };
        shared.locks.put_back(&delivery.order_id, lock);
        match outcome {
            Outcome::Final(status) => {
                tracing::info!(%status, "order is final");
                metrics::finished(match &status {
                    Status::Known(status) => status.as_str(),
                    Status::Unknown(_) => "other",
                });
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
        let started = Instant::now();
        // One span per production step, the work and the status change that ends it, so a
        // trace shows where an order's time went.
        let step = tracing::info_span!("factory.step", to = %to);
        let delay = delay_before(&to, shared.step);
        if !delay.is_zero()
            && let Some(why) = shared.pause(delivery, delay).instrument(step.clone()).await
        {
            return Outcome::Release(why);
        }
        // The API answers a change to the status the order already has with the order as
        // it is, so a retried step whose first answer was lost is progress like any other.
        match shared.call(delivery, || shared.api.update_status(order_id, &to)).instrument(step).await {
            Ok(now) => {
                tracing::info!(status = %now.status, version = now.version, "order moved");
                metrics::step(to, started.elapsed());
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

pub(super) async fn release(shared: &Shared, delivery: &Delivery, why: Why) {
    metrics::released(why.label());
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
