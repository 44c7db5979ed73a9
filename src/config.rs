//! Settings, read once from the environment (or the matching `--flag`).
//!
//! Each setting is documented once, in the doc comment of its field: `minifig --help`
//! shows them, and `minifig config --markdown` prints the README's table from them
//! ([`settings_markdown`]; `tests/api/settings_doc.rs` fails when the README is stale).

use anyhow::{Context, bail};
use base64::Engine;
use minifig_common::secret;
use minifig_common::settings_doc;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// The embedded default: a SQLite file beside the working directory, created when missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://minifig.db?mode=rwc";
/// Every secret value written in this repository: in `.env.example`, the READMEs, the
/// tests, and the defaults `docker-compose.yml` once had. A test checks that the files
/// add none that is missing here.
pub const PUBLISHED_SECRETS: &[&str] = &[
    "replace-with-the-output-of-openssl-rand-base64-48",
    "Replace-With-Your-Own-Factory-Pass-1",
    "change-me-this-is-only-a-local-development-secret",
    "Factory-Pass-123",
    "test-secret-that-is-long-enough-for-hs256!",
];

/// HS256 keys shorter than the hash output weaken the signature (RFC 7518 section 3.2).
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// The database: a SQLite file (`sqlite://path?mode=rwc`, created when missing) or
    /// `postgres://user:password@host/db`.
    #[arg(long, global = true, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true, value_parser = secret::parse)]
    pub database_url: SecretString,
    /// Redis (`redis://host:6379/0`): orders and status events travel through it, so any
    /// number of instances and factories can share the work. Unset: an in-process bus,
    /// and the factory runs inside the server.
    #[arg(long, global = true, env = "REDIS_URL", hide_env_values = true, value_parser = secret::parse)]
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key and channel, so that deployments can share one Redis.
    #[arg(long, global = true, env = "REDIS_KEY_PREFIX", default_value = "minifig:")]
    pub redis_key_prefix: String,
    /// Seconds an unfinished order may sit without any change before it is handed to a
    /// factory again (Redis may have forgotten it).
    #[arg(long, global = true, env = "ORDER_REDELIVER_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub order_redeliver_secs: u64,
    /// Approximate length the Redis orders stream is trimmed to (`XADD … MAXLEN ~`). The
    /// database is the record and the redelivery sweep re-sends any unfinished order, so
    /// the stream need only hold what factories have yet to read: keep this well above the
    /// orders placed in `ORDER_REDELIVER_SECS`.
    #[arg(long, global = true, env = "ORDERS_STREAM_MAX_LEN", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(10..))]
    pub orders_stream_max_len: u64,
    /// Milliseconds a WebSocket client has to send `connection_init` before the socket is
    /// closed with 4408: a socket that never authenticates must not hold resources. An
    /// anonymous socket (no token) gets as long again each time it has nothing running.
    #[arg(long, global = true, env = "WS_INIT_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub ws_init_timeout_ms: u64,
    /// Milliseconds between the keep-alive messages the server sends on every WebSocket
    /// (`ping`, or `ka` for the legacy protocol, each with a WebSocket ping frame), so that
    /// proxies and load balancers do not drop idle subscriptions (many close idle
    /// connections after 30-60 s). A socket that sends nothing, not even the automatic
    /// answer to a ping frame, for two intervals is closed with 4408.
    #[arg(long, global = true, env = "WS_KEEPALIVE_MS", default_value_t = 15_000, value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub ws_keepalive_ms: u64,
    /// WebSockets this instance holds open at once; an upgrade past it is refused with 503
    /// and `Retry-After`, so that a reconnect storm cannot take more memory than planned
    /// for (about 17 KiB per idle socket, 7 KiB per subscription).
    #[arg(long, global = true, env = "WS_MAX_SOCKETS", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub ws_max_sockets: u64,
    /// WebSockets one client address holds open at once (an IPv4 address, or an IPv6 /64;
    /// behind a proxy, set `TRUSTED_PROXIES` or every client counts as the proxy); an
    /// upgrade past it is refused with 429.
    #[arg(long, global = true, env = "WS_MAX_SOCKETS_PER_ADDRESS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub ws_max_sockets_per_address: u64,
    /// Milliseconds between SIGTERM and the closing of the WebSockets, during which
    /// `/readyz` answers 503 (so that the load balancer stops sending clients here) while
    /// every request and socket is still served.
    #[arg(long, global = true, env = "SHUTDOWN_DRAIN_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    pub shutdown_drain_ms: u64,
    /// Milliseconds over which the WebSockets are closed (1001, going away) after the
    /// drain, each at a random moment, so that their clients do not all reconnect at once.
    #[arg(long, global = true, env = "SHUTDOWN_CLOSE_SPREAD_MS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub shutdown_close_spread_ms: u64,
    /// Run the factory inside the server on the in-process bus (the default when there is
    /// no Redis; with Redis, factories are their own processes and this must stay off).
    #[arg(long, global = true, env = "EMBEDDED_FACTORY")]
    pub embedded_factory: Option<bool>,
    /// Simulated time of each production step of the embedded factory, in milliseconds.
    #[arg(long, global = true, env = "FACTORY_STEP_MS", default_value_t = 1000)]
    pub factory_step_ms: u64,
    /// Address to listen on (`0.0.0.0` in a container).
    #[arg(long, global = true, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 asks the OS for a free one (tests do).
    #[arg(long, global = true, env = "PORT", default_value_t = 8000)]
    pub port: u16,
    /// Load balancers or reverse proxies in front of the server, as comma-separated
    /// addresses or networks (`10.0.0.0/8,192.0.2.1`). Only for requests from these is
    /// `X-Forwarded-For` believed; by default it is ignored, since any client can send it.
    #[arg(long, global = true, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::http::parse_trusted_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// HS256 signing key for access tokens, at least 32 bytes: **required** when
    /// `APP_ENV=production`. Unset in development: a random key per run (its tokens die
    /// with the process).
    #[arg(long, global = true, env = "JWT_SECRET", hide_env_values = true, value_parser = secret::parse)]
    pub jwt_secret: Option<SecretString>,
    /// Lifetime of an access token, in seconds (30 to 2592000).
    #[arg(long, global = true, env = "JWT_TTL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(30..=2_592_000))]
    pub jwt_ttl_secs: u64,
    /// Username of the FACTORY account, created (or its password updated) at start; set
    /// together with `FACTORY_PASSWORD`.
    #[arg(long, global = true, env = "FACTORY_USERNAME", requires = "factory_password")]
    pub factory_username: Option<String>,
    /// Password of the FACTORY account.
    #[arg(long, global = true, env = "FACTORY_PASSWORD", hide_env_values = true, requires = "factory_username", value_parser = secret::parse)]
    pub factory_password: Option<SecretString>,
    /// `development` or `production`. Production refuses to start without a strong
    /// `JWT_SECRET` (or with a secret published in this repository) and turns
    /// introspection off.
    #[arg(long, global = true, env = "APP_ENV", value_enum, default_value_t = AppEnv::Development)]
    pub app_env: AppEnv,
    /// Whether clients may introspect the schema (GraphiQL's docs and autocompletion need
    /// it). Unset: on in development, off in production.
    #[arg(long, global = true, env = "GRAPHQL_INTROSPECTION")]
    pub graphql_introspection: Option<bool>,
    /// Where to serve `/metrics` (Prometheus), as `host:port`, apart from the API: a port
    /// the load balancer does not forward keeps the metrics private. Unset: `/metrics` is
    /// served on the API's own listener (`HOST`:`PORT`), for development.
    #[arg(long, global = true, env = "METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// `pretty` for people, `json` for log collectors.
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AppEnv {
    Development,
    Production,
}

pub use minifig_common::telemetry::LogFormat;

/// What is logged when `RUST_LOG` is not set: our own events and request logs, and only
/// warnings from the database drivers (their `info` is one line per statement). Read by
/// tracing-subscriber, not clap.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn";

/// The settings alone, without the binary's subcommands.
#[derive(clap::Parser)]
#[command(name = "minifig")]
struct Only {
    #[command(flatten)]
    settings: Settings,
}

/// The README's configuration table (`minifig config --markdown`), from the clap definitions.
pub fn settings_markdown() -> String {
    settings_doc::markdown(&<Only as clap::CommandFactory>::command(), &[settings_doc::rust_log(DEFAULT_LOG_FILTER)])
}

impl Settings {
    /// Settings from the environment alone, as `minifig serve` would read them.
    pub fn from_env() -> Result<Self, clap::Error> {
        <Only as clap::Parser>::try_parse_from(["minifig"]).map(|only| only.settings)
    }

    pub fn introspection_enabled(&self) -> bool {
        self.graphql_introspection.unwrap_or(self.app_env == AppEnv::Development)
    }

    /// Whether to run the factory in-process: only on the in-process bus, on by default there.
    pub fn runs_embedded_factory(&self) -> anyhow::Result<bool> {
        match (self.embedded_factory, &self.redis_url) {
            (Some(true), Some(_)) => {
                bail!("EMBEDDED_FACTORY needs the in-process bus: unset REDIS_URL or run `factory` processes")
            }
            (Some(on), None) => Ok(on),
            (Some(false), Some(_)) => Ok(false),
            (None, redis) => Ok(redis.is_none()),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
    }

    /// The JWT key to use, and whether it was generated (development only). Production
    /// refuses to start without a strong configured key: tokens signed with a random key
    /// would die with the process, and a short key can be brute-forced offline.
    pub fn jwt_key(&self) -> anyhow::Result<(SecretString, bool)> {
        match (&self.jwt_secret, self.app_env) {
            (Some(secret), _) if secret.expose_secret().len() >= MIN_JWT_SECRET_BYTES => Ok((secret.clone(), false)),
            (Some(_), AppEnv::Production) => {
                bail!("JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes long in production")
            }
            (None, AppEnv::Production) => bail!("JWT_SECRET must be set when APP_ENV=production"),
            (Some(_), AppEnv::Development) => {
                bail!(
                    "JWT_SECRET is shorter than {MIN_JWT_SECRET_BYTES} bytes; unset it to get a random one in development"
                )
            }
            (None, AppEnv::Development) => {
                let mut key = [0u8; 48];
                rand::rngs::OsRng.try_fill_bytes(&mut key).context("no randomness for a JWT key")?;
                Ok((SecretString::from(base64::engine::general_purpose::STANDARD_NO_PAD.encode(key)), true))
            }
        }
    }

    /// Production refuses a `JWT_SECRET` or `FACTORY_PASSWORD` written anywhere in this
    /// repository: whoever deploys an example as is would let anyone who has read it forge
    /// ADMIN tokens or log in as the factory.
    pub fn refuse_published_secrets(&self) -> anyhow::Result<()> {
        if self.app_env != AppEnv::Production {
            return Ok(());
        }
        for (name, secret) in [("JWT_SECRET", &self.jwt_secret), ("FACTORY_PASSWORD", &self.factory_password)] {
            if secret.as_ref().is_some_and(|secret| PUBLISHED_SECRETS.contains(&secret.expose_secret())) {
                bail!("{name} is one published in the MiniFigurine repository; set one of your own");
            }
        }
        Ok(())
    }

    /// `host:port` to bind.
    pub fn bind_address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Settings {
        let mut all = vec!["minifig"];
        all.extend_from_slice(args);
        Only::try_parse_from(all).unwrap().settings
    }

    #[test]
    fn production_refuses_missing_or_short_secrets() {
        let missing = parse(&["--app-env", "production"]);
        assert!(missing.jwt_key().is_err());
        let short = parse(&["--app-env", "production", "--jwt-secret", "short"]);
        assert!(short.jwt_key().is_err());
        let good = parse(&["--app-env", "production", "--jwt-secret", &"s".repeat(32)]);
        let (key, generated) = good.jwt_key().unwrap();
        assert_eq!((key.expose_secret(), generated), ("s".repeat(32).as_str(), false));
    }

    #[test]
    fn production_refuses_the_secrets_written_in_the_repository() {
        for secret in PUBLISHED_SECRETS {
            let jwt = parse(&["--app-env", "production", "--jwt-secret", secret]);
            assert!(jwt.refuse_published_secrets().is_err(), "JWT_SECRET {secret}");
            let factory = parse(&["--app-env", "production", "--factory-username", "f", "--factory-password", secret]);
            assert!(factory.refuse_published_secrets().is_err(), "FACTORY_PASSWORD {secret}");
            // Development runs on them (the tests do).
            assert!(parse(&["--jwt-secret", secret]).refuse_published_secrets().is_ok());
        }
        let own = parse(&["--app-env", "production", "--jwt-secret", &"q".repeat(40)]);
        assert!(own.refuse_published_secrets().is_ok());
    }

    /// The values given to `JWT_SECRET` and `FACTORY_PASSWORD` in the repository's files,
    /// as `NAME=value`, `NAME='value'` or `${NAME:-value}`.
    fn secrets_written_in(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for name in ["JWT_SECRET", "FACTORY_PASSWORD"] {
            for (at, _) in text.match_indices(name) {
                let rest = &text[at + name.len()..];
                let value = rest.strip_prefix('=').or_else(|| rest.strip_prefix(":-"));
                let Some(value) = value else { continue };
                let value = value.trim_start_matches(['\'', '"']);
                let end = value.find(|c: char| c.is_whitespace() || "'\"}`$(".contains(c)).unwrap_or(value.len());
                if end > 0 {
                    found.push(value[..end].to_owned());
                }
            }
        }
        found
    }

    #[test]
    fn every_secret_written_in_the_repository_is_a_published_one() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/");
        let files = [
            "README.md",
            "factory/README.md",
            "docker-compose.yml",
            ".env.example",
            "tests/api/helpers.rs",
            "Dockerfile",
        ];
        let mut seen = 0;
        for file in files {
            let text = std::fs::read_to_string(format!("{root}{file}")).unwrap_or_else(|err| panic!("{file}: {err}"));
            for secret in secrets_written_in(&text) {
                seen += 1;
                assert!(
                    PUBLISHED_SECRETS.contains(&secret.as_str()),
                    "{file} writes {secret:?}: add it to PUBLISHED_SECRETS"
                );
            }
        }
        assert!(seen >= 3, "the scan found the examples it should ({seen})");
        let compose = std::fs::read_to_string(format!("{root}docker-compose.yml")).unwrap();
        assert!(
            compose.contains("${JWT_SECRET:?") && compose.contains("${FACTORY_PASSWORD:?"),
            "compose requires both"
        );
    }

    #[test]
    fn development_generates_a_random_secret() {
        let settings = parse(&["--app-env", "development"]);
        let (one, generated) = settings.jwt_key().unwrap();
        let (two, _) = settings.jwt_key().unwrap();
        assert!(generated);
        assert!(one.expose_secret().len() >= MIN_JWT_SECRET_BYTES);
        assert_ne!(one.expose_secret(), two.expose_secret());
    }

    #[test]
    fn secrets_never_print() {
        let secret = SecretString::from("hunter2hunter2");
        let shown = format!("{secret:?}");
        assert!(!shown.contains("hunter2") && shown.contains("REDACTED"), "{shown}");
        let settings =
            parse(&["--jwt-secret", "hunter2hunter2hunter2hunter2hunter2", "--database-url", "postgres://u:pw@h/db"]);
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("pw@"), "{shown}");
    }

    #[test]
    fn introspection_follows_the_environment_unless_set() {
        assert!(parse(&[]).introspection_enabled());
        assert!(!parse(&["--app-env", "production"]).introspection_enabled());
        assert!(parse(&["--app-env", "production", "--graphql-introspection", "true"]).introspection_enabled());
    }
}
