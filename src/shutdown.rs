//! The signals that stop the server, and the bound on its last steps.
//!
//! On SIGTERM (what orchestrators and `docker stop` send) the server drains: `/readyz`
//! answers 503 for `SHUTDOWN_DRAIN_MS` while everything is served as before, then every
//! WebSocket is closed with 1001 over `SHUTDOWN_CLOSE_SPREAD_MS`, the requests in flight
//! finish, and the process exits 0 (see [`crate::http::lifecycle`]). SIGINT (Ctrl-C at a
//! terminal) skips the drain, and a second signal of either kind cuts a drain short: whoever
//! sends it wants the process gone, not the load balancer informed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::http::SocketRegistry;
use crate::http::lifecycle::{Lifecycle, Phase};

/// How long the requests in flight, and then the sockets still closing, may take once the
/// drain is over, before the process exits anyway. A socket blocked on a client that does
/// not read gives up after its send timeout (10 s) and then closes within its close grace,
/// so this covers every socket whose client is not stuck for good.
pub const FINISH_LIMIT: Duration = Duration::from_secs(15);

/// Which signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Terminate,
    Interrupt,
}

/// SIGTERM and SIGINT, listened to from the moment this is made: a signal that arrives
/// before the server first waits for one still stops it gracefully instead of killing it.
pub struct StopSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    #[cfg(unix)]
    pub fn listen() -> anyhow::Result<Self> {
        use anyhow::Context;
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals {
            terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    #[cfg(not(unix))]
    pub fn listen() -> anyhow::Result<Self> {
        Ok(StopSignals {})
    }

    /// The next signal.
    #[cfg(unix)]
    pub async fn next(&mut self) -> Stop {
        tokio::select! {
            Some(()) = self.terminate.recv() => Stop::Terminate,
            Some(()) = self.interrupt.recv() => Stop::Interrupt,
            else => std::future::pending().await,
        }
    }

    #[cfg(not(unix))]
    pub async fn next(&mut self) -> Stop {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Stop::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }

    /// The first signal, and what cuts the drain short after it: nothing more if it was
    /// SIGINT, a second signal if it was SIGTERM.
    pub fn stop_and_cut_short(
        mut self,
    ) -> (impl Future<Output = ()> + Send + 'static, impl Future<Output = ()> + Send + 'static) {
        let (hurry, hurried) = tokio::sync::oneshot::channel::<()>();
        let stop = async move {
            let first = self.next().await;
            tracing::info!(signal = ?first, "shutting down");
            tokio::spawn(async move {
                if first == Stop::Terminate {
                    self.next().await;
                    tracing::info!("a second signal: the drain is cut short");
                }
                let _ = hurry.send(());
            });
        };
        let cut_short = async move {
            if hurried.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        (stop, cut_short)
    }
}

/// The server's side of the stop sequence.
pub struct Drain {
    pub lifecycle: Lifecycle,
    pub sockets: Arc<SocketRegistry>,
    /// `SHUTDOWN_DRAIN_MS`.
    pub period: Duration,
    /// `SHUTDOWN_CLOSE_SPREAD_MS`.
    pub close_spread: Duration,
}

impl Drain {
    /// After `stop` (and `on_stop`): not ready, the drain period (which `cut_short` may
    /// end early), then the sockets are told to close. The HTTP server stops accepting
    /// connections when this resolves, so it is what its graceful shutdown waits for.
    pub fn until_closing(
        &self,
        stop: impl Future<Output = ()> + Send + 'static,
        cut_short: impl Future<Output = ()> + Send + 'static,
        on_stop: impl FnOnce() + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (lifecycle, sockets) = (self.lifecycle.clone(), self.sockets.clone());
        let (period, close_spread) = (self.period, self.close_spread);
        async move {
            stop.await;
            on_stop();
            lifecycle.advance(Phase::Draining);
            tracing::info!(drain_ms = period.as_millis() as u64, "draining: /readyz answers 503, all else is served");
            // No drain is no drain: not even a yield during which requests would still be
            // taken, which whoever asked for none (a test killing an instance) relies on.
            if !period.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(period) => {}
                    () = cut_short => {}
                }
            }
            lifecycle.advance(Phase::ClosingSockets);
            tracing::info!(
                sockets = sockets.open(),
                spread_ms = close_spread.as_millis() as u64,
                "closing every WebSocket (1001) and finishing the requests in flight"
            );
        }
    }

    /// Runs `serve`, the HTTP server, to its end (once [`Drain::until_closing`] resolved
    /// and the requests in flight are answered, or [`FINISH_LIMIT`] after that), then
    /// waits for the sockets to finish closing, as long as their spread and the limit.
    pub async fn finish(&self, serve: impl Future<Output = std::io::Result<()>>) -> std::io::Result<()> {
        let mut closing = self.lifecycle.watch();
        let served = tokio::select! {
            served = serve => served,
            () = async { closing.closing().await; tokio::time::sleep(FINISH_LIMIT).await } => {
                tracing::warn!("requests still in flight {FINISH_LIMIT:?} after the drain; exiting anyway");
                Ok(())
            }
        };
        if self.lifecycle.phase() == Phase::ClosingSockets
            && tokio::time::timeout(self.close_spread + FINISH_LIMIT, self.sockets.all_closed()).await.is_err()
        {
            tracing::warn!(sockets = self.sockets.open(), "WebSockets still open after their close; dropping them");
        }
        served
    }
}
