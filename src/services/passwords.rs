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

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::{Semaphore, oneshot};

use crate::error::AppError;

/// OWASP's first argon2id recommendation: m = 19 MiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;
/// How many requests may wait for a hashing slot, per slot.
pub const QUEUE_PER_WORKER: usize = 32;
/// The hashing threads' niceness: below the executor's 0, so hashing yields to requests.
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// Work for the hashing threads. A plain channel rather than a thread-pool crate: the
    /// pool is a fixed handful of threads whose one special need is their OS priority.
    jobs: mpsc::Sender<Job>,
    /// One permit per request allowed to run or wait.
    admitted: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the user is unknown so that
    /// "no such user" takes as long as "wrong password".
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// A hasher with `workers` threads (one per core is right: hashing is CPU-bound, and the
    /// threads' low priority keeps them from delaying requests).
    pub fn new(workers: usize) -> anyhow::Result<Self> {
        let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
            .map_err(|err| anyhow::anyhow!("argon2 parameters rejected: {err}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let workers = workers.max(1);
        let dummy_hash = hash_with(&argon2, &uuid::Uuid::new_v4().to_string())?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..workers {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|err| anyhow::anyhow!("cannot start a hashing thread: {err}"))?;
        }
        Ok(PasswordHasher {
            argon2,
            jobs,
            admitted: Arc::new(Semaphore::new(workers * (QUEUE_PER_WORKER + 1))),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a fresh random salt.
    pub async fn hash(&self, password: &str) -> Result<String, AppError> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        self.run(move || hash_with(&argon2, &password)).await?.map_err(AppError::internal("hashing a password"))
    }

    /// Whether `password` matches `stored`. With no stored hash (unknown user) it still does
    /// the full work against a dummy hash and answers `false`.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, AppError> {
        let argon2 = self.argon2.clone();
        let password = password.to_owned();
        let known = stored.is_some();
        let hash = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let matches = self
            .run(move || {
                let parsed =
                    PasswordHash::new(&hash).map_err(|err| anyhow::anyhow!("stored hash unreadable: {err}"))?;
                Ok::<_, anyhow::Error>(argon2.verify_password(password.as_bytes(), &parsed).is_ok())
            })
            .await?
            .map_err(AppError::internal("verifying a password"))?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let _admitted =
            self.admitted.clone().try_acquire_owned().map_err(|_| AppError::RateLimited { retry_after_secs: 1 })?;
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.send(job).map_err(|_| AppError::Internal(anyhow::anyhow!("the hashing threads are gone")))?;
        result.await.map_err(|_| AppError::Internal(anyhow::anyhow!("a password hashing job failed")))
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
        .map_err(|err| anyhow::anyhow!("argon2 failed: {err}"))
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
            (0..QUEUE_PER_WORKER + 1).map(|_| hasher.admitted.clone().try_acquire_owned().unwrap()).collect();
        let err = hasher.hash("TestTest123@").await.unwrap_err();
        assert_eq!(err.code(), "RATE_LIMITED");
        drop(held);
        assert!(hasher.hash("TestTest123@").await.is_ok());
    }
}
