//! Building and running the server. `Application::build` does everything that can fail
//! (configuration, database, migrations, accounts, binding the port) before anything is
//! served, and binds inside `build` so that tests can ask for port 0 and read `port()`.
//! `run_until` serves, and when told to stop drains, closes the sockets and finishes the
//! requests in flight (see [`crate::shutdown`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::auth::login_throttle::LoginThrottle;
use crate::auth::passwords::PasswordHasher;
use crate::auth::tokens::TokenKeys;
use crate::bus::in_process::InProcessBus;
use crate::bus::outbox::Relay;
use crate::bus::redis::RedisBus;
use crate::bus::{Bus, EventHub, redelivery};
use crate::config::Settings;
use crate::db;
use crate::domain::{Password, Username};
use crate::graphql::build_schema;
use crate::http::lifecycle::Lifecycle;
use crate::http::{self, HttpState, SocketRegistry, SocketRuntime, metrics_router, router};
use crate::services::accounts;
use crate::services::catalog::Catalog;
use crate::services::feed_reads::FeedReads;
use crate::shutdown::{Drain, FINISH_LIMIT, StopSignals};
use crate::state::AppState;

pub struct Application {
    listener: TcpListener,
    port: u16,
    router: axum::Router,
    /// `METRICS_ADDR`'s listener and what it serves, when set.
    metrics: Option<(TcpListener, axum::Router)>,
    /// The factory to run inside the server (in-process bus only).
    embedded_factory: Option<(Arc<factory::MemorySource>, factory::WorkerSettings)>,
    /// Held here as well as by the router, which goes when HTTP is done: the sockets'
    /// runtime must outlive it until the sockets have closed.
    sockets: Arc<SocketRuntime>,
    drain: Drain,
}

/// The FACTORY account the embedded factory uses when none is configured; its password is
/// random for each run (it never leaves the process).
const EMBEDDED_FACTORY_USERNAME: &str = "embedded-factory";
/// Orders the embedded factory works on at once.
const EMBEDDED_FACTORY_CONCURRENCY: u32 = 8;

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.refuse_published_secrets()?;
        let metrics = minifig_common::metrics::install()
            .map_err(|err| anyhow::anyhow!("installing the metrics recorder: {err}"))?;
        crate::metrics::describe();
        let (jwt_secret, generated) = settings.jwt_key()?;
        if generated {
            tracing::warn!("JWT_SECRET is not set: using a random key for this run, so tokens die with the process");
        }
        let db = db::connect(settings.database_url.expose_secret()).await?;
        db::migrate(&db).await?;
        let catalog = Catalog::load(&db).await.map_err(|err| err.into_anyhow().context("reading the catalog"))?;
        tokio::spawn(catalog.clone().keep_fresh(db.clone()));
        let hasher = PasswordHasher::new(hashing_workers())?;
        let embedded = settings.runs_embedded_factory()?;
        let factory_account = factory_account(&settings, embedded)?;
        if let Some((username, password)) = &factory_account {
            accounts::ensure_factory_account(&db, &hasher, username.clone(), password.clone()).await?;
        }
        let hub = EventHub::new();
        let mut order_queue = None;
        let (bus, throttle): (Arc<dyn Bus>, _) = match &settings.redis_url {
            Some(url) => {
                let bus = RedisBus::connect(
                    url.expose_secret(),
                    &settings.redis_key_prefix,
                    settings.orders_stream_max_len,
                    hub.clone(),
                )
                .await?;
                let throttle = LoginThrottle::redis(bus.client(), &settings.redis_key_prefix);
                (Arc::new(bus), throttle)
            }
            None => {
                let bus = InProcessBus::new(hub.clone());
                order_queue = Some(bus.queue());
                (Arc::new(bus), LoginThrottle::local())
            }
        };
        let (relay, outbox) = Relay::new(db.clone(), bus.clone());
        tokio::spawn(relay.run());
        tokio::spawn(redelivery::run(
            db.clone(),
            std::time::Duration::from_secs(settings.order_redeliver_secs),
            outbox.clone(),
        ));
        let state = AppState {
            feed_reads: FeedReads::start(db.clone()),
            db,
            catalog,
            bus,
            outbox,
            hub,
            tokens: TokenKeys::new(&jwt_secret, settings.jwt_ttl_secs),
            hasher,
            throttle,
            settings: Arc::new(settings),
        };
        let schema = build_schema(&state);
        let address = state.settings.bind_address();
        let listener = TcpListener::bind(&address).await.with_context(|| format!("failed to listen on {address}"))?;
        let port = listener.local_addr().context("reading the bound address")?.port();
        let embedded_factory = match (embedded, order_queue, factory_account) {
            (true, Some(queue), Some((username, password))) => Some((
                queue,
                factory::WorkerSettings {
                    api_url: format!("http://{}/graphql", loopback_address(&state.settings.host, port)),
                    username: username.as_str().to_owned(),
                    password: secrecy::SecretString::from(password.expose()),
                    step_ms: state.settings.factory_step_ms,
                    concurrency: EMBEDDED_FACTORY_CONCURRENCY,
                },
            )),
            _ => None,
        };
        let settings = &state.settings;
        let socket_registry = SocketRegistry::new(
            usize::try_from(settings.ws_max_sockets).unwrap_or(usize::MAX),
            usize::try_from(settings.ws_max_sockets_per_address).unwrap_or(usize::MAX),
        );
        let lifecycle = Lifecycle::default();
        let drain = Drain {
            lifecycle: lifecycle.clone(),
            sockets: socket_registry.clone(),
            period: Duration::from_millis(settings.shutdown_drain_ms),
            close_spread: Duration::from_millis(settings.shutdown_close_spread_ms),
        };
        let metrics_listener = match &settings.metrics_addr {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("failed to listen on METRICS_ADDR {address}"))?,
            ),
            None => None,
        };
        let sockets = Arc::new(SocketRuntime::start()?);
        let http_state = HttpState::new(http::Shared {
            app: state,
            schema,
            sockets: sockets.clone(),
            socket_registry,
            lifecycle,
            metrics,
        });
        let metrics = metrics_listener.map(|listener| (listener, metrics_router(http_state.clone())));
        Ok(Application { listener, port, router: router(http_state), metrics, embedded_factory, sockets, drain })
    }

    /// The port actually bound (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `METRICS_ADDR` bound, when it is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().and_then(|(listener, _)| listener.local_addr().ok()).map(|address| address.port())
    }

    /// Serves until SIGTERM or SIGINT, then stops as [`crate::shutdown`] describes.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let (stop, cut_short) = StopSignals::listen()?.stop_and_cut_short();
        self.run(stop, cut_short).await
    }

    /// Serves until `shutdown` resolves, then drains for `SHUTDOWN_DRAIN_MS`, closes every
    /// socket and finishes the requests in flight; the embedded factory, if any, stops at
    /// the start of the drain.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        self.run(shutdown, std::future::pending()).await
    }

    async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        cut_short: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let address = self.listener.local_addr().context("reading the bound address")?;
        let (stop_factory, factory_stopped) = tokio::sync::oneshot::channel::<()>();
        let factory = self.embedded_factory.map(|(queue, settings)| {
            tracing::info!(step_ms = settings.step_ms, "running the factory inside the server");
            factory::metrics::describe();
            tokio::spawn(async move {
                let stopped = async {
                    let _ = factory_stopped.await;
                };
                if let Err(err) = factory::run_with_source(queue, settings, stopped).await {
                    tracing::error!(error = format!("{err:#}"), "the embedded factory stopped");
                }
            })
        });
        tracing::info!("listening on http://{address}/ (GraphiQL), API at /graphql");
        // Scrapes go on through the drain (the metrics of a draining instance are the
        // interesting ones) and end with the process.
        let metrics = self.metrics.map(|(listener, router)| {
            if let Ok(address) = listener.local_addr() {
                tracing::info!("metrics at http://{address}/metrics");
            }
            tokio::spawn(async move {
                if let Err(err) = axum::serve(listener, router).await {
                    tracing::error!(error = %err, "the metrics listener failed");
                }
            })
        });
        let closing = self.drain.until_closing(shutdown, cut_short, move || {
            let _ = stop_factory.send(());
        });
        // Small GraphQL responses and WebSocket events must not wait for Nagle's algorithm.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "could not set TCP_NODELAY");
            }
        });
        let serve = axum::serve(listener, self.router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(closing)
            .into_future();
        let served = self.drain.finish(serve).await.context("server failed");
        if let Some(factory) = factory
            && tokio::time::timeout(FINISH_LIMIT, factory).await.is_err()
        {
            tracing::warn!("the embedded factory did not stop within {FINISH_LIMIT:?}");
        }
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        drop(self.sockets);
        served
    }
}

/// The FACTORY account to create at start: the configured one, or for the embedded factory
/// a generated one.
fn factory_account(settings: &Settings, embedded: bool) -> anyhow::Result<Option<(Username, Password)>> {
    match (&settings.factory_username, &settings.factory_password) {
        (Some(username), Some(password)) => {
            let username = Username::parse(username).map_err(|err| anyhow::anyhow!("FACTORY_USERNAME {err}"))?;
            let password =
                Password::parse(password.expose_secret()).map_err(|err| anyhow::anyhow!("FACTORY_PASSWORD {err}"))?;
            Ok(Some((username, password)))
        }
        _ if embedded => {
            let mut random = [0u8; 24];
            rand::RngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut random)
                .context("no randomness for a password")?;
            let generated =
                format!("Ef1!{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, random));
            let username = Username::parse(EMBEDDED_FACTORY_USERNAME).map_err(|err| anyhow::anyhow!("{err}"))?;
            let password = Password::parse(&generated).map_err(|err| anyhow::anyhow!("{err}"))?;
            Ok(Some((username, password)))
        }
        _ => Ok(None),
    }
}

/// Where this process can reach its own listener: loopback when bound to every interface.
fn loopback_address(host: &str, port: u16) -> String {
    match host {
        "0.0.0.0" | "" => format!("127.0.0.1:{port}"),
        "::" | "[::]" => format!("[::1]:{port}"),
        host if host.contains(':') => format!("[{host}]:{port}"),
        host => format!("{host}:{port}"),
    }
}

/// Hashing threads: one per core. They run at a lower priority than the executor (see
/// [`crate::auth::passwords`]), so a login storm uses every core without slowing
/// other requests (measured by the load suite's `logins` scenario).
fn hashing_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
