//! Password hashing with argon2id, off the async executor and behind a bound.
//!
//! A hash costs ~19 MiB and tens of milliseconds of one core by design. Running it on the
//! executor would stall every other request on that worker, and running an unbounded number
//! at once would let a login flood exhaust memory. So hashes run on threads of their own,
//! one per core, at a lower OS priority than the executor (nice [`NICE`]): a login storm
//! uses every idle cycle of every core, yet the kernel still runs request handling first,
//! so other requests stay fast. At most [`QUEUE_PER_WORKER`] requests per thread may wait;
//! past that a request is turned away at once with `RATE_LIMITED` instead of queueing
//! without limit.
//!
//! Logins have a share of their own: their own admission bound and their own queue, which
//! the threads serve first. A flood of registrations (each one hash) therefore fills only
//! its own share, and the factory's login (a verification) neither waits behind it nor is
//! turned away by it.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use crate::error::AppError;
use crate::metrics;

/// OWASP's first argon2id recommendation: m = 19 MiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;
/// How many requests may wait for a hashing slot, per slot.
pub const QUEUE_PER_WORKER: usize = 32;
/// The hashing threads' niceness: below the executor's 0, so hashing yields to requests.
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// Which share of the hashing capacity a job uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Share {
    /// Verifications at login: served first.
    Login,
    /// Everything else: hashing new passwords.
    Other,
}

impl Share {
    fn label(self) -> &'static str {
        match self {
            Share::Login => "login",
            Share::Other => "other",
        }
    }
}

/// Work for the hashing threads: two queues, logins first. Hand-written rather than a
/// thread-pool crate: the pool is a fixed handful of threads whose special needs are
/// their OS priority and this one ordering rule.
#[derive(Default)]
struct Queues {
    jobs: Mutex<(VecDeque<Job>, VecDeque<Job>)>,
    ready: Condvar,
}

impl Queues {
    fn push(&self, share: Share, job: Job) {
        let mut jobs = self.lock();
        match share {
            Share::Login => jobs.0.push_back(job),
            Share::Other => jobs.1.push_back(job),
        }
        drop(jobs);
        self.ready.notify_one();
    }

    /// The next job, logins first; blocks while there is none.
    fn next(&self) -> Job {
        let mut jobs = self.lock();
        loop {
            if let Some(job) = jobs.0.pop_front().or_else(|| jobs.1.pop_front()) {
                return job;
            }
            jobs = self.ready.wait(jobs).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Job>, VecDeque<Job>)> {
        // The lock is never held while a job runs, so a poisoned lock still guards
        // consistent queues.
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    queues: Arc<Queues>,
    /// One permit per login allowed to run or wait.
    logins: Arc<Semaphore>,
    /// One permit per other request allowed to run or wait.
    others: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the user is unknown so that
    /// "no such user" takes as long as "wrong password".
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// A hasher with `workers` threads (one per core is right: hashing is CPU-bound, and the
    /// threads' low priority keeps them from delaying requests).
    pub fn new(workers: usize) -> anyhow::Result<Self> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .map_err(|err| anyhow::Error::new(err).context("argon2 parameters rejected"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let workers = workers.max(1);
        let dummy_hash = hash_with(&argon2, &uuid::Uuid::new_v4().to_string())?;
        let queues = Arc::new(Queues::default());
        for index in 0..workers {
            let queues = queues.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        (queues.next())();
                    }
                })
                .map_err(|err| anyhow::Error::new(err).context("cannot start a hashing thread"))?;
        }
        let admitted = || Arc::new(Semaphore::new(workers * (QUEUE_PER_WORKER + 1)));
        Ok(PasswordHasher { argon2, queues, logins: admitted(), others: admitted(), dummy_hash: dummy_hash.into() })
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<String, AppError> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        self.run(Share::Other, move || hash_with(&argon2, &password))
            .await?
            .map_err(AppError::internal("hashing a password"))
    }

    /// Whether `password` matches `stored`, from the logins' share. With no stored hash
    /// (unknown user) it still does the full work against a dummy hash and answers `false`.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, AppError> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        let known = stored.is_some();
        let hash = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let matches = self
            .run(Share::Login, move || {
                let parsed = PasswordHash::new(&hash)
                    .map_err(|err| anyhow::Error::new(err).context("stored hash unreadable"))?;
                Ok::<_, anyhow::Error>(argon2.verify_password(password.as_bytes(), &parsed).is_ok())
            })
            .await?
            .map_err(AppError::internal("verifying a password"))?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        share: Share,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let admitted = match share {
            Share::Login => &self.logins,
            Share::Other => &self.others,
        };
        let _admitted =
            admitted.clone().try_acquire_owned().map_err(|_| AppError::RateLimited { retry_after_secs: 1 })?;
        let (done, result) = oneshot::channel();
        let queued = Instant::now();
        let depth = metrics::hash_queued(share.label());
        self.queues.push(
            share,
            Box::new(move || {
                metrics::hash_started(share.label(), &depth, queued.elapsed());
                let _ = done.send(work());
            }),
        );
        result.await.map_err(|err| AppError::Internal(anyhow::Error::new(err).context("a password hashing job failed")))
    }
}

/// Lowers the calling thread's scheduling priority to [`NICE`]. On Linux a nice value is
/// per thread (`setpriority` with the thread's id); elsewhere hashing keeps normal priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority only read their arguments and change this thread's
        // priority.
        let changed = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE)
        };
        if changed != 0 {
            tracing::debug!("could not lower the priority of a hashing thread");
        }
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::Error::new(err).context("argon2 failed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_at_owasp_parameters_and_verify() {
        let hasher = PasswordHasher::new(1).unwrap();
        let hash = hasher.hash("TestTest123@").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify("TestTest123@", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("TestTest123!", Some(&hash)).await.unwrap());
        assert_ne!(hash, hasher.hash("TestTest123@").await.unwrap(), "salts differ");
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        let hasher = PasswordHasher::new(1).unwrap();
        assert!(!hasher.verify("anything", None).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_turns_requests_away_instead_of_growing() {
        let hasher = PasswordHasher::new(1).unwrap();
        let held: Vec<_> =
            (0..QUEUE_PER_WORKER + 1).map(|_| hasher.others.clone().try_acquire_owned().unwrap()).collect();
        let err = hasher.hash("TestTest123@").await.unwrap_err();
        assert_eq!(err.code(), "RATE_LIMITED");
        drop(held);
        assert!(hasher.hash("TestTest123@").await.is_ok());
    }

    #[tokio::test]
    async fn logins_have_their_own_share() {
        let hasher = PasswordHasher::new(1).unwrap();
        let hash = hasher.hash("TestTest123@").await.unwrap();
        let held: Vec<_> =
            (0..QUEUE_PER_WORKER + 1).map(|_| hasher.others.clone().try_acquire_owned().unwrap()).collect();
        assert!(hasher.verify("TestTest123@", Some(&hash)).await.unwrap(), "a full share of others refuses no login");
        drop(held);
    }

    #[test]
    fn the_threads_take_logins_first() {
        let queues = Queues::default();
        let order = Arc::new(Mutex::new(Vec::new()));
        for (share, name) in [(Share::Other, "other-1"), (Share::Other, "other-2"), (Share::Login, "login")] {
            let order = order.clone();
            queues.push(share, Box::new(move || order.lock().unwrap().push(name)));
        }
        for _ in 0..3 {
            (queues.next())();
        }
        assert_eq!(*order.lock().unwrap(), ["login", "other-1", "other-2"]);
    }
}
