//! Building and running the server. `Application::build` does everything that can fail
//! (configuration, database, migrations, accounts, binding the port) before anything is
//! served, and binds inside `build` so that tests can ask for port 0 and read `port()`.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::bus::in_process::InProcessBus;
use crate::bus::outbox::{OutboxSignal, Relay};
use crate::bus::redis::RedisBus;
use crate::bus::{Bus, EventHub, redelivery};
use crate::config::Settings;
use crate::db;
use crate::domain::{Password, Username};
use crate::graphql::build_schema;
use crate::http::{HttpState, router};
use crate::services::accounts;
use crate::services::login_throttle::LoginThrottle;
use crate::services::passwords::PasswordHasher;
use crate::services::tokens::TokenKeys;
use crate::state::AppState;

pub struct Application {
    listener: TcpListener,
    port: u16,
    router: axum::Router,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let (jwt_secret, generated) = settings.jwt_key()?;
        if generated {
            tracing::warn!("JWT_SECRET is not set: using a random key for this run, so tokens die with the process");
        }
        let db = db::connect(settings.database_url.expose()).await?;
        db::migrate(&db).await?;
        let hasher = PasswordHasher::new(hashing_workers())?;
        if let (Some(username), Some(password)) = (&settings.factory_username, &settings.factory_password) {
            let username = Username::parse(username).map_err(|err| anyhow::anyhow!("FACTORY_USERNAME {err}"))?;
            let password =
                Password::parse(password.expose()).map_err(|err| anyhow::anyhow!("FACTORY_PASSWORD {err}"))?;
            accounts::ensure_factory_account(&db, &hasher, username, password).await?;
        }
        let hub = EventHub::new();
        let bus: Arc<dyn Bus> = match &settings.redis_url {
            Some(url) => Arc::new(RedisBus::connect(url.expose(), &settings.redis_key_prefix, hub.clone()).await?),
            None => Arc::new(InProcessBus::new(hub.clone())),
        };
        let outbox = OutboxSignal::default();
        tokio::spawn(Relay::new(db.clone(), bus.clone(), outbox.clone()).run());
        tokio::spawn(redelivery::run(
            db.clone(),
            std::time::Duration::from_secs(settings.order_redeliver_secs),
            outbox.clone(),
        ));
        let state = AppState {
            db,
            bus,
            outbox,
            hub,
            tokens: TokenKeys::new(&jwt_secret, settings.jwt_ttl_secs),
            hasher,
            throttle: LoginThrottle::default(),
            settings: Arc::new(settings),
        };
        let schema = build_schema(&state);
        let address = state.settings.bind_address();
        let listener = TcpListener::bind(&address).await.with_context(|| format!("failed to listen on {address}"))?;
        let port = listener.local_addr().context("reading the bound address")?.port();
        Ok(Application { listener, port, router: router(HttpState { app: state, schema }) })
    }

    /// The port actually bound (useful with `PORT=0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT or SIGTERM, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` resolves.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let address = self.listener.local_addr().context("reading the bound address")?;
        tracing::info!("listening on http://{address}/ (GraphiQL), API at /graphql");
        axum::serve(self.listener, self.router).with_graceful_shutdown(shutdown).await.context("server failed")
    }
}

/// Hashes running at once: one per core but one, so that a login flood always leaves a
/// core to the async executor and every other request stays fast (measured by
/// `benches/login_flood.rs`), and never fewer than one.
fn hashing_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1)).max(1)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
