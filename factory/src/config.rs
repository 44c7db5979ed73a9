//! Settings, read once from the environment or the matching flag (`FACTORY_STEP_MS` is
//! `--factory-step-ms`; `factory --help` lists them).
//!
//! Each setting is documented once, in the doc comment of its field: `factory config
//! --markdown` prints `factory/README.md`'s table from them ([`settings_markdown`]; the
//! test `settings_doc` fails when the README is stale). The server embeds the factory with
//! [`WorkerSettings`] alone (no Redis); the binary reads the whole [`Settings`].

use std::time::Duration;

use minifig_common::secret;
use minifig_common::settings_doc;
use secrecy::SecretString;

/// Everything the `factory` binary reads.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "factory", version, about = "MiniFigurine factory: moves orders from PENDING to SHIPPED")]
pub struct Settings {
    #[command(flatten)]
    pub worker: WorkerSettings,
    #[command(flatten)]
    pub redis: RedisSettings,
    /// Where to serve `/metrics` (Prometheus) and `/healthz`, as `host:port`
    /// (`0.0.0.0:9100` in a container). Unset: no listener.
    #[arg(long, env = "FACTORY_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// `pretty` for people, `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

/// What the worker needs whatever its orders come from: the API and its pace. The server
/// builds this by hand to run the factory in-process.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerSettings {
    /// The GraphQL endpoint of the API, which the factory moves orders through.
    #[arg(long, env = "API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// Username of the FACTORY account the factory logs in as (the server creates it from
    /// the same variables).
    #[arg(long = "factory-username", env = "FACTORY_USERNAME")]
    pub username: String,
    /// Password of the FACTORY account (never printed).
    #[arg(long = "factory-password", env = "FACTORY_PASSWORD", hide_env_values = true, value_parser = secret::parse)]
    pub password: SecretString,
    /// Simulated time of each production step, in milliseconds.
    #[arg(long = "factory-step-ms", env = "FACTORY_STEP_MS", default_value_t = 1000)]
    pub step_ms: u64,
    /// Orders one factory works on at once (1 to 1024).
    #[arg(long = "factory-concurrency", env = "FACTORY_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
}

/// Where the binary's orders come from: the Redis stream `<prefix>orders`.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisSettings {
    /// Redis URL, e.g. `redis://127.0.0.1:6379/0`: where the order stream lives.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = secret::parse)]
    pub redis_url: SecretString,
    /// Prefix of every Redis key, so that deployments can share one Redis; the stream is
    /// `<prefix>orders`.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = DEFAULT_KEY_PREFIX)]
    pub redis_key_prefix: String,
    /// Milliseconds an entry may sit idle in another consumer's pending list before this
    /// factory takes it over (that consumer is presumed dead). Keep it well above
    /// `FACTORY_STEP_MS` and above 5 s: a live factory touches its entries at least that
    /// often.
    #[arg(long = "factory-claim-idle-ms", env = "FACTORY_CLAIM_IDLE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub claim_idle_ms: u64,
    /// About how many entries the stream keeps when this factory adds one (an order handed
    /// back): `XADD … MAXLEN ~`. The stream is a transport, not the record: the database and
    /// the server's redelivery sweep recover an order whose entry was trimmed. The server
    /// caps its own `XADD`s alike (`ORDERS_STREAM_MAX_LEN`).
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

/// What is logged when `RUST_LOG` is not set: the factory's own events, and only warnings
/// from the HTTP and Redis clients. Read by tracing-subscriber, not clap.
pub const DEFAULT_LOG_FILTER: &str = "info,fred=warn,reqwest=warn,hyper=warn";

/// `factory/README.md`'s configuration table (`factory config --markdown`), from the clap
/// definitions.
pub fn settings_markdown() -> String {
    settings_doc::markdown(
        &<Settings as clap::CommandFactory>::command(),
        &[settings_doc::rust_log(DEFAULT_LOG_FILTER)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use secrecy::ExposeSecret;

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
        assert_eq!(settings.worker.password.expose_secret(), "Hunter2-secret");
    }
}
