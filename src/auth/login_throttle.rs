//! Throttling of failed logins, so that a password cannot be guessed online and the
//! throttle cannot be used to lock an owner out.
//!
//! Two counts, over a fixed window of [`WINDOW`] from the first attempt counted:
//! - per account (or unknown login name) *and* client address: [`PER_LOGIN_AND_ADDRESS`]
//!   failures. An attacker's
//!   guesses throttle the attacker; the owner (or the factory) on another address is not
//!   affected;
//! - per client address over every login name: [`PER_ADDRESS`] failures, so that one address
//!   cannot spray guesses across many accounts.
//!
//! An attempt is *reserved* before its password is checked, atomically with the check, and
//! settled after: a failure stays counted, a success clears its login's count, an attempt
//! that could not be judged (the hasher was busy) is refunded. So a concurrent burst of
//! guesses gets exactly as many tries as the limit, not one per request. Unknown login names
//! are counted exactly like known ones, so the throttle reveals nothing about which
//! accounts exist.
//!
//! The counts live in Redis when the service has one, shared by every instance; otherwise,
//! in this process (embedded mode is one process). If Redis cannot be reached, the process's
//! own counts stand in, so a Redis outage neither opens the door nor locks everyone out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fred::prelude::{Client, LuaInterface};

pub const PER_LOGIN_AND_ADDRESS: u32 = 5;
pub const PER_ADDRESS: u32 = 100;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bound on the counts one process keeps, so that failures for random names cannot grow
/// memory without limit.
pub const MAX_TRACKED: usize = 100_000;

/// Checks both limits and, when neither is reached, counts the attempt against both, in one
/// step. Returns 0, or the seconds until the limit that was reached frees up.
/// KEYS: the login-and-address count, the address count. ARGV: window seconds, the two limits.
const RESERVE_LUA: &str = r"
local function wait(key)
  local ttl = redis.call('TTL', key)
  if ttl < 0 then
    redis.call('EXPIRE', key, ARGV[1])
    return tonumber(ARGV[1])
  end
  return math.max(ttl, 1)
end
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[2]) then return wait(KEYS[1]) end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[3]) then return wait(KEYS[2]) end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
end
return 0
";

/// Settles a reservation: ARGV[1] is `clear` (a success: the login's count goes), or
/// `refund` (the attempt is uncounted). The address count is refunded in both cases: only
/// failures count against an address. DECR keeps a key's expiry; a key that expired
/// meanwhile is left absent rather than recreated without one.
const SETTLE_LUA: &str = r"
if ARGV[1] == 'clear' then
  redis.call('DEL', KEYS[1])
elseif tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
  redis.call('DECR', KEYS[1])
end
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then redis.call('DECR', KEYS[2]) end
return 0
";

#[derive(Clone)]
pub struct LoginThrottle {
    shared: Option<RedisCounts>,
    local: LocalCounts,
}

#[derive(Clone)]
struct RedisCounts {
    client: Client,
    prefix: String,
}

/// One attempt, counted until it is settled.
#[must_use = "settle the reservation with the attempt's outcome"]
pub struct Reservation {
    subject: String,
    address: IpAddr,
    /// Where it was counted: in Redis, or (no Redis, or Redis unreachable) here.
    in_redis: bool,
}

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The right password: the login's failures are forgotten.
    Success,
    /// A wrong password or an unknown name: it stays counted.
    Failure,
    /// The password could not be checked (e.g. the hasher was full): not counted.
    NotJudged,
}

impl LoginThrottle {
    /// Counts kept in this process only.
    pub fn local() -> Self {
        LoginThrottle { shared: None, local: LocalCounts::default() }
    }

    /// Counts kept in Redis under `prefix`, shared by every instance using it.
    pub fn redis(client: Client, prefix: &str) -> Self {
        LoginThrottle { shared: Some(RedisCounts { client, prefix: prefix.to_owned() }), local: LocalCounts::default() }
    }

    /// Reserves an attempt on `subject` (an account's id, or the unknown name tried) from
    /// `address`, or `Err(seconds)` to wait.
    pub async fn reserve(&self, subject: &str, address: IpAddr) -> Result<Reservation, u64> {
        let subject = subject.to_owned();
        if let Some(redis) = &self.shared {
            match redis.reserve(&subject, address).await {
                Ok(0) => return Ok(Reservation { subject, address, in_redis: true }),
                Ok(wait) => return Err(wait),
                Err(err) => {
                    tracing::warn!(error = %err, "login throttle: Redis unreachable, counting in this instance");
                }
            }
        }
        self.local.reserve(&subject, address, Instant::now())?;
        Ok(Reservation { subject, address, in_redis: false })
    }

    pub async fn settle(&self, reservation: Reservation, outcome: Outcome) {
        if outcome == Outcome::Failure {
            return;
        }
        let Reservation { subject, address, in_redis } = reservation;
        match &self.shared {
            Some(redis) if in_redis => {
                if let Err(err) = redis.settle(&subject, address, outcome).await {
                    // The attempt then stays counted until the window ends: the safe side.
                    tracing::warn!(error = %err, "login throttle: could not settle an attempt in Redis");
                }
            }
            _ => self.local.settle(&subject, address, outcome),
        }
    }
}

impl RedisCounts {
    /// Both keys share a hash tag (the address), so that they live on one node of a cluster,
    /// as a script's keys must.
    fn keys(&self, subject: &str, address: IpAddr) -> Vec<String> {
        let prefix = &self.prefix;
        vec![format!("{prefix}login-failures:{{{address}}}:{subject}"), format!("{prefix}login-failures:{{{address}}}")]
    }

    async fn reserve(&self, subject: &str, address: IpAddr) -> Result<u64, fred::error::Error> {
        let args = vec![WINDOW.as_secs().to_string(), PER_LOGIN_AND_ADDRESS.to_string(), PER_ADDRESS.to_string()];
        // EVAL rather than EVALSHA: the script is a few hundred bytes next to an argon2
        // hash, and Redis caches its compiled form either way.
        self.client.eval(RESERVE_LUA, self.keys(subject, address), args).await
    }

    async fn settle(&self, subject: &str, address: IpAddr, outcome: Outcome) -> Result<(), fred::error::Error> {
        let how = if outcome == Outcome::Success { "clear" } else { "refund" };
        self.client.eval::<(), _, _, _>(SETTLE_LUA, self.keys(subject, address), vec![how]).await
    }
}

/// The same counts as the scripts above, in this process.
#[derive(Clone, Default)]
struct LocalCounts {
    counts: Arc<Mutex<HashMap<Key, Window>>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    SubjectAndAddress(String, IpAddr),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    count: u32,
    ends: Instant,
}

impl LocalCounts {
    fn reserve(&self, subject: &str, address: IpAddr, now: Instant) -> Result<(), u64> {
        let mut counts = self.lock();
        let keys = [
            (Key::SubjectAndAddress(subject.to_owned(), address), PER_LOGIN_AND_ADDRESS),
            (Key::Address(address), PER_ADDRESS),
        ];
        for (key, limit) in &keys {
            if let Some(window) = counts.get(key).filter(|window| window.ends > now && window.count >= *limit) {
                return Err((window.ends - now).as_secs().max(1));
            }
        }
        if counts.len() + keys.len() > MAX_TRACKED {
            make_room(&mut counts, now);
        }
        for (key, _) in keys {
            let window = counts.entry(key).or_insert(Window { count: 0, ends: now + WINDOW });
            if window.ends <= now {
                *window = Window { count: 0, ends: now + WINDOW };
            }
            window.count += 1;
        }
        Ok(())
    }

    fn settle(&self, subject: &str, address: IpAddr, outcome: Outcome) {
        let mut counts = self.lock();
        let pair = Key::SubjectAndAddress(subject.to_owned(), address);
        if outcome == Outcome::Success {
            counts.remove(&pair);
        }
        let refunded: &[Key] =
            if outcome == Outcome::Success { &[Key::Address(address)] } else { &[pair, Key::Address(address)] };
        for key in refunded {
            if let Some(window) = counts.get_mut(key) {
                window.count = window.count.saturating_sub(1);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Window>> {
        // A panic while holding this lock cannot leave the map inconsistent in a way that
        // matters (worst case: a lost count), so recover rather than poison every login.
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Drops ended windows; if live ones still fill the map (a flood of distinct names), the
/// half that ends soonest goes: those names merely lose some of their counted failures.
fn make_room(counts: &mut HashMap<Key, Window>, now: Instant) {
    counts.retain(|_, window| window.ends > now);
    if counts.len() >= MAX_TRACKED / 2 {
        let mut by_end: Vec<_> = counts.iter().map(|(key, window)| (window.ends, key.clone())).collect();
        by_end.sort_unstable_by_key(|(ends, _)| *ends);
        for (_, key) in by_end.into_iter().take(counts.len() / 2) {
            counts.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    fn fail(counts: &LocalCounts, subject: &str, address: IpAddr, now: Instant) -> Result<(), u64> {
        counts.reserve(subject, address, now)
    }

    #[test]
    fn the_sixth_attempt_from_one_address_is_refused_until_the_window_ends() {
        let counts = LocalCounts::default();
        let start = Instant::now();
        for _ in 0..PER_LOGIN_AND_ADDRESS {
            fail(&counts, "ada", ip(2), start).unwrap();
        }
        let later = start + Duration::from_secs(60);
        assert_eq!(counts.reserve("ada", ip(2), later), Err(WINDOW.as_secs() - 60));
        assert_eq!(counts.reserve("ada", ip(2), start + WINDOW), Ok(()));
    }

    #[test]
    fn another_address_and_another_name_are_not_affected() {
        let counts = LocalCounts::default();
        let now = Instant::now();
        for _ in 0..PER_LOGIN_AND_ADDRESS {
            fail(&counts, "ada", ip(2), now).unwrap();
        }
        assert!(counts.reserve("ada", ip(2), now).is_err());
        assert_eq!(counts.reserve("ada", ip(3), now), Ok(()));
        assert_eq!(counts.reserve("bob", ip(2), now), Ok(()));
    }

    #[test]
    fn one_address_is_limited_across_every_name() {
        let counts = LocalCounts::default();
        let now = Instant::now();
        for n in 0..PER_ADDRESS {
            fail(&counts, &format!("user{n}"), ip(4), now).unwrap();
        }
        assert!(counts.reserve("yet-another", ip(4), now).is_err());
        assert_eq!(counts.reserve("yet-another", ip(5), now), Ok(()));
    }

    #[test]
    fn a_success_clears_the_name_and_refunds_the_address() {
        let counts = LocalCounts::default();
        let now = Instant::now();
        for _ in 0..PER_LOGIN_AND_ADDRESS - 1 {
            fail(&counts, "ada", ip(2), now).unwrap();
        }
        counts.reserve("ada", ip(2), now).unwrap();
        counts.settle("ada", ip(2), Outcome::Success);
        for _ in 0..PER_LOGIN_AND_ADDRESS {
            fail(&counts, "ada", ip(2), now).unwrap();
        }
        let address = counts.lock()[&Key::Address(ip(2))].count;
        assert_eq!(address, 2 * PER_LOGIN_AND_ADDRESS - 1, "the success is not counted against the address");
    }

    #[test]
    fn an_attempt_that_was_not_judged_is_refunded() {
        let counts = LocalCounts::default();
        let now = Instant::now();
        for _ in 0..PER_LOGIN_AND_ADDRESS * 3 {
            counts.reserve("ada", ip(2), now).unwrap();
            counts.settle("ada", ip(2), Outcome::NotJudged);
        }
        assert_eq!(counts.reserve("ada", ip(2), now), Ok(()));
    }

    #[test]
    fn the_map_stays_bounded_under_a_flood_of_names() {
        let counts = LocalCounts::default();
        let now = Instant::now();
        for n in 0..MAX_TRACKED + 10 {
            // Distinct addresses too, so the per-address limit does not stop the flood.
            let address = IpAddr::from(u32::try_from(n).unwrap().to_be_bytes());
            fail(&counts, &format!("user{n}"), address, now).unwrap();
        }
        assert!(counts.lock().len() <= MAX_TRACKED);
    }
}
