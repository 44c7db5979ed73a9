//! How the factory waits before trying again: its policies, in one place. Every loop that
//! tries again (an API call, an acknowledgement or release, the probe of an API that is
//! down, a read of the stream) waits by one of these, with the shared mechanism of
//! `minifig_common::backoff` (exponential, full jitter).

use std::time::Duration;

pub use minifig_common::backoff::{Backoff, Delays, Policy, retrying};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
