//! How the factory waits before trying again, in one place. Every loop that tries again
//! (an API call, an acknowledgement or release, the probe of an API that is down, a read
//! of the stream) waits by a [`Policy`]: exponential backoff (backon's schedule) with full
//! jitter, i.e. each wait drawn at random between zero and its exponential ceiling. The
//! jitter matters when many factories fail at the same moment (the API restarted): without
//! it they would all come back in step and hit the API together, again and again.

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

/// One API call, retried in place on a transient failure (a dropped connection, a 502 while
/// an instance restarts). No limit here: the circuit breaker ([`crate::circuit`]) decides
/// when failures are sustained and the call must stop. Waits average 0.2 s, 0.4 s, 0.8 s,
/// then 1.6 s: about six attempts within the five seconds before the circuit can open.
pub const API_CALL: Policy = Policy::new(Duration::from_millis(400), Duration::from_millis(3_200), None);

/// An acknowledgement or release that Redis did not take. Four attempts within about two
/// seconds ride out a failover or a reconnect; after that the entry is left pending in the
/// group, where a claim after the idle time picks it up.
pub const REDIS_WRITE: Policy = Policy::new(Duration::from_millis(100), Duration::from_secs(1), Some(3));

/// Waiting for something that is down (the API while the circuit is open, or Redis for a
/// read) to come back: patient, at most [`UNTIL_BACK_MAX`] between tries, and endless.
pub const UNTIL_BACK: Policy = Policy::new(Duration::from_millis(250), UNTIL_BACK_MAX, None);

/// The longest ceiling of [`UNTIL_BACK`].
pub const UNTIL_BACK_MAX: Duration = Duration::from_secs(10);

impl Policy {
    pub const fn new(first: Duration, max: Duration, retries: Option<usize>) -> Self {
        Policy { first, max, retries }
    }

    /// The waits before each retry; endless when there is no retry limit. A loop that
    /// starts over once what it waited for is back takes a new schedule.
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
    fn waiting_until_back_goes_on_at_its_longest_wait_and_a_new_schedule_starts_over() {
        let mut waits = UNTIL_BACK.delays();
        for _ in 0..1_000 {
            let wait = waits.next().expect("an endless schedule");
            assert!(wait <= UNTIL_BACK_MAX, "{wait:?}");
        }
        let firsts: Vec<Duration> = (0..200).filter_map(|_| UNTIL_BACK.delays().next()).collect();
        assert_eq!(firsts.len(), 200);
        assert!(firsts.iter().all(|first| *first <= Duration::from_millis(250)), "back to the shortest waits");
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
