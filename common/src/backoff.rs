//! How a loop waits before trying again, for every retry loop of the API and the factory:
//! exponential backoff (backon's schedule) with full jitter, i.e. each wait drawn at random
//! between zero and its exponential ceiling. The jitter matters when many processes fail at
//! the same moment (the API restarted, Redis failed over): without it they would all come
//! back in step and hit the same service together, again and again.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder, Retryable};

/// An exponential schedule: ceilings `first`, `2 × first`, … up to `max`, for at most
/// `retries` waits (`None`: as many as the caller asks for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    first: Duration,
    max: Duration,
    retries: Option<usize>,
}

impl Policy {
    pub const fn new(first: Duration, max: Duration, retries: Option<usize>) -> Self {
        Policy { first, max, retries }
    }

    /// The waits before each retry.
    pub fn delays(&self) -> Delays {
        let schedule = ExponentialBuilder::new().with_factor(2.0).with_min_delay(self.first).with_max_delay(self.max);
        let schedule = match self.retries {
            Some(retries) => schedule.with_max_times(retries),
            None => schedule.without_max_times(),
        };
        Delays { ceilings: schedule.build(), rng: fastrand::Rng::new() }
    }
}

/// The waits of a [`Policy`]: each one uniform in `[0, ceiling]`. (backon's own jitter adds
/// to the ceiling instead, which keeps retries bunched after a shared failure.)
#[derive(Debug)]
pub struct Delays {
    ceilings: ExponentialBackoff,
    rng: fastrand::Rng,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.ceilings.next().map(|ceiling| ceiling.mul_f64(self.rng.f64()))
    }
}

/// A [`Policy`] for a loop that waits until something comes back and starts over once it
/// did.
#[derive(Debug)]
pub struct Backoff {
    policy: Policy,
    delays: Delays,
}

impl Backoff {
    pub fn new(policy: Policy) -> Self {
        Backoff { policy, delays: policy.delays() }
    }

    /// The next wait; the longest one again once the schedule is used up.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.policy.max)
    }

    /// Back to the shortest waits.
    pub fn reset(&mut self) {
        self.delays = self.policy.delays();
    }
}

/// Endless: backon's `retry` can run on a `&mut Backoff`, and the loop that owns it goes on
/// from where that retry left off.
impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }
}

/// Runs `op` until it succeeds or `policy` runs out of retries, with a warning for each
/// failure; the last error if none succeeded.
pub async fn retrying<T, Fut>(policy: Policy, what: &str, op: impl FnMut() -> Fut) -> anyhow::Result<T>
where
    Fut: Future<Output = anyhow::Result<T>>,
{
    op.retry(policy.delays())
        .notify(|err: &anyhow::Error, wait: Duration| {
            tracing::warn!(
                error = format!("{err:#}"),
                retry_in_ms = wait.as_millis() as u64,
                "{what} failed; retrying"
            );
        })
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const POLICY: Policy = Policy::new(Duration::from_millis(250), Duration::from_secs(2), Some(6));

    #[test]
    fn waits_are_drawn_under_doubling_ceilings_and_stop_after_the_retries() {
        let ceilings = [250, 500, 1000, 2000, 2000, 2000].map(Duration::from_millis);
        for _ in 0..200 {
            let delays: Vec<Duration> = POLICY.delays().collect();
            assert_eq!(delays.len(), ceilings.len());
            for (delay, ceiling) in delays.iter().zip(ceilings) {
                assert!(*delay <= ceiling, "{delay:?} > {ceiling:?}");
            }
        }
    }

    #[test]
    fn the_jitter_is_full_not_a_fixed_schedule() {
        let firsts: Vec<Duration> = (0..200).filter_map(|_| POLICY.delays().next()).collect();
        assert!(firsts.iter().any(|first| *first < Duration::from_millis(125)), "some waits are short");
        assert!(firsts.iter().any(|first| *first > Duration::from_millis(125)), "some waits are long");
    }

    #[test]
    fn a_backoff_goes_on_at_its_longest_wait_and_starts_over_on_reset() {
        let mut backoff = Backoff::new(Policy::new(Duration::from_millis(10), Duration::from_millis(40), Some(2)));
        for _ in 0..5 {
            assert!(backoff.next_delay() <= Duration::from_millis(40));
        }
        assert_eq!(backoff.next_delay(), Duration::from_millis(40), "the schedule is used up");
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(10));
    }

    #[test]
    fn a_backoff_as_an_iterator_never_runs_out() {
        let mut backoff = Backoff::new(Policy::new(Duration::from_millis(10), Duration::from_millis(40), Some(2)));
        let waits: Vec<Duration> = backoff.by_ref().take(10).collect();
        assert_eq!(waits.len(), 10);
        assert!(waits.iter().all(|wait| *wait <= Duration::from_millis(40)));
        assert_eq!(waits[9], Duration::from_millis(40), "past its retries it waits the longest");
    }

    #[tokio::test]
    async fn retrying_stops_at_the_first_success_or_after_the_last_retry() {
        let quick = Policy::new(Duration::from_millis(1), Duration::from_millis(2), Some(3));
        let calls = AtomicU32::new(0);
        let result = retrying(quick, "the test", || async {
            let call = calls.fetch_add(1, Ordering::SeqCst);
            if call < 2 { Err(anyhow::anyhow!("not yet")) } else { Ok(call) }
        })
        .await;
        assert_eq!(result.unwrap(), 2);

        calls.store(0, Ordering::SeqCst);
        let result: anyhow::Result<()> = retrying(quick, "the test", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(anyhow::anyhow!("never"))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 4, "one attempt and three retries");
    }
}
