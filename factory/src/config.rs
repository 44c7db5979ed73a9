//! Settings, read once from the environment or the matching flag (`FACTORY_STEP_MS` is
//! `--factory-step-ms`; `factory --help` lists them).
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `API_URL` | `http://127.0.0.1:8000/graphql` | the GraphQL endpoint the factory moves orders through |
//! | `REDIS_URL` | required (binary) | `redis://host:6379/0`: where the order stream lives |
//! | `REDIS_KEY_PREFIX` | `minifig:` | prefix of every key; the stream is `<prefix>orders` |
//! | `FACTORY_USERNAME` | required | the FACTORY account the factory logs in as |
//! | `FACTORY_PASSWORD` | required | its password (never printed) |
//! | `FACTORY_STEP_MS` | `1000` | simulated time of each production step, in milliseconds |
//! | `FACTORY_CONCURRENCY` | `8` | how many orders one factory works on at once |
//! | `FACTORY_CLAIM_IDLE_MS` | `30000` | how long an entry may sit idle in another consumer's pending list (a dead factory's) before this factory takes it over; keep it well above `FACTORY_STEP_MS` |
//! | `FACTORY_STREAM_MAX_LEN` | `100000` | about how many entries the stream keeps when the factory hands an order back (`XADD … MAXLEN ~`); the server caps its own `XADD`s alike |
//! | `RUST_LOG` | `info` | log filter (tracing-subscriber `EnvFilter` syntax) |
//! | `LOG_FORMAT` | `pretty` | `pretty` or `json` |
//!
//! The server embeds the factory with [`WorkerSettings`] alone (no Redis); the binary reads
//! the whole [`Settings`]. The README's factory table says the same; keep them in step.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Everything the `factory` binary reads.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "factory", version, about = "MiniFigurine factory: moves orders from PENDING to SHIPPED")]
pub struct Settings {
    #[command(flatten)]
    pub worker: WorkerSettings,
    #[command(flatten)]
    pub redis: RedisSettings,
    /// `pretty` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

/// What the worker needs whatever its orders come from: the API and its pace. The server
/// builds this by hand to run the factory in-process.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerSettings {
    /// The GraphQL endpoint of the API.
    #[arg(long, env = "API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// Username of the FACTORY account.
    #[arg(long = "factory-username", env = "FACTORY_USERNAME")]
    pub username: String,
    /// Password of the FACTORY account.
    #[arg(long = "factory-password", env = "FACTORY_PASSWORD", hide_env_values = true)]
    pub password: Secret,
    /// Simulated time of each production step, in milliseconds.
    #[arg(long = "factory-step-ms", env = "FACTORY_STEP_MS", default_value_t = 1000)]
    pub step_ms: u64,
    /// Orders worked on at once.
    #[arg(long = "factory-concurrency", env = "FACTORY_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
}

/// Where the binary's orders come from: the Redis stream `<prefix>orders`.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisSettings {
    /// Redis URL, e.g. `redis://127.0.0.1:6379/0`.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Secret,
    /// Prefix of every Redis key, so that deployments can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = DEFAULT_KEY_PREFIX)]
    pub redis_key_prefix: String,
    /// Milliseconds an entry may sit idle in another consumer's pending list before this
    /// factory takes it over (that consumer is presumed dead).
    #[arg(long = "factory-claim-idle-ms", env = "FACTORY_CLAIM_IDLE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub claim_idle_ms: u64,
    /// About how many entries the stream keeps when this factory adds one (an order handed
    /// back): `XADD … MAXLEN ~`. The stream is a transport, not the record: the database and
    /// the server's redelivery sweep recover an order whose entry was trimmed.
    #[arg(long = "factory-stream-max-len", env = "FACTORY_STREAM_MAX_LEN", default_value_t = DEFAULT_STREAM_MAX_LEN, value_parser = clap::value_parser!(u64).range(1..))]
    pub stream_max_len: u64,
}

pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8000/graphql";
pub const DEFAULT_KEY_PREFIX: &str = "minifig:";
/// Far more than the orders in flight at any time, so that only entries long acknowledged
/// (or long forgotten) are trimmed.
pub const DEFAULT_STREAM_MAX_LEN: u64 = 100_000;

impl WorkerSettings {
    pub fn step(&self) -> Duration {
        Duration::from_millis(self.step_ms)
    }
}

impl RedisSettings {
    pub fn claim_idle(&self) -> Duration {
        Duration::from_millis(self.claim_idle_ms)
    }
}

pub use minifig_common::telemetry::LogFormat;

/// A value that must never reach a log: `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Settings, clap::Error> {
        let mut all = vec!["factory"];
        all.extend_from_slice(args);
        Settings::try_parse_from(all)
    }

    const REQUIRED: [&str; 6] = [
        "--redis-url",
        "redis://:hunter2@127.0.0.1:6379",
        "--factory-username",
        "factory",
        "--factory-password",
        "Hunter2-secret",
    ];

    #[test]
    fn defaults_follow_the_contract() {
        let settings = parse(&REQUIRED).unwrap();
        assert_eq!(settings.worker.api_url, "http://127.0.0.1:8000/graphql");
        assert_eq!(settings.worker.step_ms, 1000);
        assert_eq!(settings.worker.concurrency, 8);
        assert_eq!(settings.redis.redis_key_prefix, "minifig:");
        assert_eq!(settings.redis.claim_idle_ms, 30_000);
        assert_eq!(settings.redis.stream_max_len, 100_000);
        assert_eq!(settings.log_format, LogFormat::Pretty);
    }

    #[test]
    fn redis_and_the_account_are_required() {
        // Only meaningful when the environment does not supply them itself.
        if std::env::var_os("REDIS_URL").is_none() {
            assert!(parse(&REQUIRED[2..]).is_err(), "REDIS_URL is required");
        }
        if std::env::var_os("FACTORY_PASSWORD").is_none() {
            assert!(parse(&REQUIRED[..4]).is_err(), "the password is required");
        }
    }

    #[test]
    fn concurrency_must_be_positive() {
        let mut args = REQUIRED.to_vec();
        args.extend(["--factory-concurrency", "0"]);
        assert!(parse(&args).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let settings = parse(&REQUIRED).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("Hunter2"), "{shown}");
        assert_eq!(settings.worker.password.expose(), "Hunter2-secret");
    }
}
