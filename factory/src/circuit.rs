//! The circuit breaker: tells a blip from an outage.
//!
//! Every API call an order task makes goes through [`Circuit::call`]. A transient failure
//! (no answer, a 5xx, `INTERNAL_SERVER_ERROR`) is retried in place ([`retry::API_CALL`])
//! and counted here. The circuit *opens* only when failures are sustained: no call has
//! succeeded, across all orders, for [`SUSTAINED_FOR`], over at least
//! [`SUSTAINED_FAILURES`] failed attempts. It also opens at once on an answer that no retry
//! changes (the factory's credentials or role refused, an answer it cannot read). While it
//! is open the factory takes no orders, hands back those it holds, and probes the API
//! (the worker's main loop) until it answers, which closes it.
//!
//! Answers about an order (`INVALID_TRANSITION`, `CONFLICT`, `NOT_FOUND`) mean the API
//! works: they count as successes.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::ApiError;
use crate::retry;

/// How long every call must have failed before the API counts as down. Longer than the
/// blips this is meant to ride out (a proxy's 502s or refused connections while an
/// instance restarts in a rolling deploy: a second or two), short enough that in a real
/// outage other factories get the orders within seconds.
pub const SUSTAINED_FOR: Duration = Duration::from_secs(5);
/// And over at least this many failed attempts: one request that hung until its timeout
/// is a single data point, not an outage.
pub const SUSTAINED_FAILURES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// The API is down: no orders until a probe gets an answer.
    Open,
}

/// How a call through the circuit ended without a value.
#[derive(Debug)]
pub enum CallError {
    /// The API answered something about the order (see [`ApiError::is_answer`]).
    Answer(ApiError),
    /// The circuit is open: let the order go.
    Open,
    /// The factory is stopping.
    Stopped,
    /// This call failed for [`SUSTAINED_FOR`] while other calls succeeded: something about
    /// this order, not an outage.
    GaveUp(ApiError),
}

/// Shared by the main loop and every order task.
#[derive(Debug)]
pub struct Circuit {
    state: watch::Sender<State>,
    streak: Mutex<Streak>,
    /// Set by every successful call: lets the main loop tell an API that accepts the probe
    /// but fails every order from one that really came back.
    progress: AtomicBool,
}

impl Default for Circuit {
    fn default() -> Self {
        Self::new()
    }
}

impl Circuit {
    /// Open: the factory has not reached the API yet.
    pub fn new() -> Self {
        let (state, _) = watch::channel(State::Open);
        Circuit { state, streak: Mutex::new(Streak::new(Instant::now())), progress: AtomicBool::new(false) }
    }

    pub fn is_open(&self) -> bool {
        *self.state.borrow() == State::Open
    }

    /// After a probe got an answer.
    pub fn close(&self) {
        self.streak().reset(Instant::now());
        self.state.send_replace(State::Closed);
    }

    /// Resolves once the circuit is open.
    pub async fn opened(&self) {
        let mut state = self.state.subscribe();
        wait_open(&mut state).await;
    }

    /// Whether a call succeeded since the last time this was asked.
    pub fn take_progress(&self) -> bool {
        self.progress.swap(false, Ordering::Relaxed)
    }

    /// Runs `op` (an API call) until it gets an answer, retrying transient failures in
    /// place, and gives up when the circuit opens, the factory stops, or this call alone
    /// keeps failing. A call in flight is never cut short: it either answers or times out.
    pub async fn call<T, F, Fut>(&self, stop: &CancellationToken, mut op: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut delays = retry::API_CALL.delays();
        let mut own = Streak::new(Instant::now());
        let mut state = self.state.subscribe();
        loop {
            if stop.is_cancelled() {
                return Err(CallError::Stopped);
            }
            if self.is_open() {
                return Err(CallError::Open);
            }
            let started = Instant::now();
            let err = match op().await {
                Ok(value) => {
                    self.succeeded();
                    return Ok(value);
                }
                Err(err) if err.is_answer() => {
                    self.succeeded();
                    return Err(CallError::Answer(err));
                }
                Err(err) if !err.is_transient() => {
                    self.open(&err, "the API refuses the factory");
                    return Err(CallError::Open);
                }
                Err(err) => err,
            };
            let now = Instant::now();
            if self.failed(started, now, &err) {
                return Err(CallError::Open);
            }
            let wait = match delays.next() {
                Some(wait) if !own.fail(started, now) => wait,
                _ => return Err(CallError::GaveUp(err)),
            };
            tracing::info!(error = %err, retry_in_ms = wait.as_millis() as u64, "API call failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => return Err(CallError::Stopped),
                () = wait_open(&mut state) => return Err(CallError::Open),
            }
        }
    }

    fn succeeded(&self) {
        self.progress.store(true, Ordering::Relaxed);
        self.streak().reset(Instant::now());
    }

    /// Counts a transient failure of an attempt sent at `started`; whether the circuit is
    /// open now.
    fn failed(&self, started: Instant, now: Instant, err: &ApiError) -> bool {
        let sustained = self.streak().fail(started, now);
        if sustained {
            self.open(err, "the API keeps failing");
        }
        sustained || self.is_open()
    }

    fn open(&self, err: &ApiError, why: &str) {
        let opened = self.state.send_if_modified(|state| std::mem::replace(state, State::Open) == State::Closed);
        if opened {
            tracing::warn!(error = %err, "{why}: pausing, and handing back the orders held");
        }
    }

    fn streak(&self) -> std::sync::MutexGuard<'_, Streak> {
        // A panic cannot leave a streak half-updated (plain fields), so a poisoned lock is
        // as good as any.
        self.streak.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

async fn wait_open(state: &mut watch::Receiver<State>) {
    if state.wait_for(|state| *state == State::Open).await.is_err() {
        // The circuit is gone, and with it the factory.
        std::future::pending::<()>().await;
    }
}

/// Failures since the last success, and since when.
#[derive(Debug, Clone)]
struct Streak {
    /// When the first failed attempt of the streak was sent.
    since: Option<Instant>,
    failures: u32,
    /// The last success (or the start).
    reset_at: Instant,
}

impl Streak {
    fn new(now: Instant) -> Self {
        Streak { since: None, failures: 0, reset_at: now }
    }

    /// Counts an attempt sent at `started` that failed; whether failures are now
    /// sustained.
    fn fail(&mut self, started: Instant, now: Instant) -> bool {
        // An attempt sent before the last success does not date the streak before it.
        let started = started.max(self.reset_at);
        let since = *self.since.get_or_insert(started);
        let since = since.min(started);
        self.since = Some(since);
        self.failures += 1;
        self.failures >= SUSTAINED_FAILURES && now.saturating_duration_since(since) >= SUSTAINED_FOR
    }

    fn reset(&mut self, now: Instant) {
        *self = Streak::new(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn a_blip_is_not_sustained_however_many_attempts_fail() {
        let start = Instant::now();
        let mut streak = Streak::new(start);
        for attempt in 0..50 {
            let at = start + ms(attempt * 20);
            assert!(!streak.fail(at, at + ms(10)), "attempt {attempt}: one second of failures");
        }
    }

    #[test]
    fn failures_for_long_enough_over_enough_attempts_are_sustained() {
        let start = Instant::now();
        let mut streak = Streak::new(start);
        assert!(!streak.fail(start, start + ms(100)));
        assert!(!streak.fail(start + ms(2_000), start + ms(2_100)));
        assert!(!streak.fail(start + ms(4_000), start + ms(4_100)));
        assert!(streak.fail(start + ms(5_000), start + ms(5_100)));
    }

    #[test]
    fn one_long_timeout_is_not_an_outage() {
        let start = Instant::now();
        let mut streak = Streak::new(start);
        assert!(!streak.fail(start, start + Duration::from_secs(15)));
        assert!(!streak.fail(start + Duration::from_secs(15), start + Duration::from_secs(30)));
    }

    #[test]
    fn a_success_starts_the_count_over_even_for_attempts_sent_before_it() {
        let start = Instant::now();
        let mut streak = Streak::new(start);
        streak.fail(start, start + ms(10));
        streak.fail(start + ms(100), start + ms(110));
        streak.reset(start + ms(4_000));
        // Sent before the success, failed long after the start.
        assert!(!streak.fail(start + ms(1_000), start + ms(6_000)));
        assert!(!streak.fail(start + ms(6_000), start + ms(6_010)));
        assert!(!streak.fail(start + ms(8_000), start + ms(8_010)), "only 4 s since the success");
        assert!(streak.fail(start + ms(9_000), start + ms(9_010)));
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_in_place_and_closes_nothing() {
        let circuit = Circuit::new();
        circuit.close();
        let stop = CancellationToken::new();
        let mut attempts = 0;
        let result = circuit
            .call(&stop, || {
                attempts += 1;
                let attempt = attempts;
                async move { if attempt < 3 { Err(ApiError::Transient("502".into())) } else { Ok(attempt) } }
            })
            .await;
        assert_eq!(result.unwrap(), 3);
        assert!(!circuit.is_open());
        assert!(circuit.take_progress());
    }

    #[tokio::test]
    async fn answers_about_the_order_come_back_at_once_and_count_as_the_api_working() {
        let circuit = Circuit::new();
        circuit.close();
        let stop = CancellationToken::new();
        let result: Result<(), _> = circuit.call(&stop, || async { Err(ApiError::Conflict("busy".into())) }).await;
        assert!(matches!(result, Err(CallError::Answer(ApiError::Conflict(_)))));
        assert!(!circuit.is_open());
    }

    #[tokio::test]
    async fn a_refusal_no_retry_changes_opens_the_circuit_at_once() {
        let circuit = Circuit::new();
        circuit.close();
        let stop = CancellationToken::new();
        let result: Result<(), _> =
            circuit.call(&stop, || async { Err(ApiError::Unavailable("FORBIDDEN: no".into())) }).await;
        assert!(matches!(result, Err(CallError::Open)));
        assert!(circuit.is_open());
    }

    #[tokio::test]
    async fn calls_stop_at_once_when_the_factory_stops_or_the_circuit_is_open() {
        let circuit = Circuit::new();
        let stop = CancellationToken::new();
        let open: Result<(), _> = circuit.call(&stop, || async { Ok(()) }).await;
        assert!(matches!(open, Err(CallError::Open)), "a new circuit is open until a probe answers");
        circuit.close();
        stop.cancel();
        let stopped: Result<(), _> = circuit.call(&stop, || async { Ok(()) }).await;
        assert!(matches!(stopped, Err(CallError::Stopped)));
    }
}
