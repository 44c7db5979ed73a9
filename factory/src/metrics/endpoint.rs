//! The factory's own HTTP listener (`FACTORY_METRICS_ADDR`): `GET /metrics` in the
//! Prometheus text format and `GET /healthz`. It serves nothing else: the factory takes no
//! requests, it only makes them.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minifig_common::metrics::{CONTENT_TYPE as EXPOSITION, PrometheusHandle};
use tokio::net::TcpListener;

use crate::RedisStreamSource;

#[derive(Clone)]
struct Endpoint {
    metrics: PrometheusHandle,
    source: Arc<RedisStreamSource>,
}

/// Installs the recorder. Before anything records: a handle taken earlier (the Redis
/// connections' reconnection counters) would count into nothing.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let metrics =
        minifig_common::metrics::install().map_err(|err| anyhow::anyhow!("installing the metrics recorder: {err}"))?;
    super::describe();
    Ok(metrics)
}

/// Binds `address` and serves until the process ends. Binding happens before this
/// returns, so a port in use stops the factory at start.
pub async fn serve(address: &str, metrics: PrometheusHandle, source: Arc<RedisStreamSource>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address).await.map_err(|err| {
        anyhow::Error::new(err).context(format!("failed to listen on FACTORY_METRICS_ADDR {address}"))
    })?;
    if let Ok(bound) = listener.local_addr() {
        tracing::info!("metrics at http://{bound}/metrics");
    }
    let router = Router::new()
        .route("/metrics", get(render))
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(Endpoint { metrics, source });
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(error = %err, "the metrics listener failed");
        }
    });
    Ok(())
}

async fn render(State(endpoint): State<Endpoint>) -> Response {
    // A failed read leaves the gauge at its last value, as Prometheus expects.
    match endpoint.source.pending_entries().await {
        Ok(entries) => super::stream_pending(entries),
        Err(err) => tracing::debug!(error = format!("{err:#}"), "could not read the group's pending entries"),
    }
    ([(CONTENT_TYPE, EXPOSITION)], endpoint.metrics.render()).into_response()
}
