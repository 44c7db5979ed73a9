//! Liveness and readiness probes.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::HttpState;
use super::lifecycle::Phase;
use crate::bus::outbox;

/// How long the database may take to answer a readiness ping.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving HTTP.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can do its work: the database answers, and Redis when configured. 503
/// otherwise, so a load balancer sends traffic elsewhere, and from SIGTERM on (`"status":
/// "draining"`), while everything is still served. The body also shows the outbox's
/// backlog (rows waiting, age of the oldest).
pub async fn ready(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    if state.lifecycle.phase() != Phase::Serving {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "draining"})));
    }
    let database = matches!(tokio::time::timeout(PING_TIMEOUT, state.app.db.ping()).await, Ok(Ok(())));
    let redis = match tokio::time::timeout(PING_TIMEOUT, state.app.bus.ping()).await {
        Ok(None) => None,
        Ok(Some(result)) => Some(result.is_ok()),
        Err(_) => Some(false),
    };
    let ready = database && redis != Some(false);
    if !ready {
        tracing::warn!(database, redis, "readiness check failed");
    }
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let mut body = json!({"status": word(ready), "database": word(database)});
    if let Some(redis) = redis {
        body["redis"] = json!(word(redis));
    }
    // Shown, not judged: a backlog means events are late, not that this instance should
    // leave the load balancer (another instance would see the same table).
    if database && let Ok(Ok(backlog)) = tokio::time::timeout(PING_TIMEOUT, outbox::backlog(&state.app.db)).await {
        body["outbox"] = json!({
            "waiting": backlog.waiting,
            "oldestAgeSeconds": backlog.oldest_age.map(|age| (age.as_secs_f64() * 1000.0).round() / 1000.0),
        });
    }
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}
