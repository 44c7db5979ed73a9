//! Throttling of failed logins per username, so that a password cannot be guessed online.
//!
//! After [`MAX_FAILURES`] failures within [`WINDOW`], further attempts for that username are
//! refused without checking the password until the oldest failure leaves the window. The
//! check comes before hashing, so a throttled attempt costs no CPU. Unknown usernames are
//! throttled the same way, so throttling reveals nothing about which accounts exist.
//!
//! State is per process; the map is bounded ([`MAX_TRACKED`]) so that failures for random
//! usernames cannot grow memory without limit.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 5;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const MAX_TRACKED: usize = 100_000;

#[derive(Clone, Default)]
pub struct LoginThrottle {
    failures: Arc<Mutex<HashMap<String, VecDeque<Instant>>>>,
}

impl LoginThrottle {
    /// `Err(seconds)` to wait when `login` may not try now.
    pub fn check(&self, login: &str, now: Instant) -> Result<(), u64> {
        let failures = self.lock();
        match failures.get(&key(login)) {
            Some(times) if times.len() >= MAX_FAILURES => {
                let oldest = times.front().copied().unwrap_or(now);
                let free_at = oldest + WINDOW;
                if free_at > now { Err((free_at - now).as_secs().max(1)) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, login: &str, now: Instant) {
        let mut failures = self.lock();
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, times| times.back().is_some_and(|last| now.duration_since(*last) < WINDOW));
            if failures.len() >= MAX_TRACKED {
                // Still full of live entries: a flood of distinct names. Forget the oldest half
                // rather than grow; those names merely lose some of their counted failures.
                let mut by_age: Vec<_> = failures.iter().map(|(k, t)| (t.back().copied(), k.clone())).collect();
                by_age.sort();
                for (_, k) in by_age.into_iter().take(MAX_TRACKED / 2) {
                    failures.remove(&k);
                }
            }
        }
        let times = failures.entry(key(login)).or_default();
        while times.front().is_some_and(|first| now.duration_since(*first) >= WINDOW) {
            times.pop_front();
        }
        times.push_back(now);
        while times.len() > MAX_FAILURES {
            times.pop_front();
        }
    }

    pub fn record_success(&self, login: &str) {
        self.lock().remove(&key(login));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<Instant>>> {
        // A panic while holding this lock cannot leave the map inconsistent in a way that
        // matters (worst case: a lost failure), so recover rather than poison every login.
        self.failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Usernames and emails are matched ignoring case, so throttle them the same way.
fn key(login: &str) -> String {
    login.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_attempt_within_the_window_is_refused_until_it_passes() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..MAX_FAILURES {
            assert_eq!(throttle.check("Ada", start), Ok(()));
            throttle.record_failure("Ada", start + Duration::from_secs(i as u64));
        }
        let later = start + Duration::from_secs(60);
        let wait = throttle.check("ada", later).unwrap_err();
        assert_eq!(wait, WINDOW.as_secs() - 60);
        assert_eq!(throttle.check("someone-else", later), Ok(()));
        assert_eq!(throttle.check("ADA", start + WINDOW + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn a_success_clears_the_count() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.record_failure("ada", now);
        }
        throttle.record_success("ada");
        throttle.record_failure("ada", now);
        assert_eq!(throttle.check("ada", now), Ok(()));
    }

    #[test]
    fn old_failures_fall_out_of_the_window() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.record_failure("ada", start);
        }
        throttle.record_failure("ada", start + WINDOW + Duration::from_secs(1));
        assert_eq!(throttle.check("ada", start + WINDOW + Duration::from_secs(2)), Ok(()));
    }
}
