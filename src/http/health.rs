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
    let Some(checked) = check(&state).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "draining"})));
    };
    if !checked.ready() {
        tracing::warn!(checked.database, checked.redis, "readiness check failed");
    }
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let mut body = json!({"status": word(checked.ready()), "database": word(checked.database)});
    if let Some(redis) = checked.redis {
        body["redis"] = json!(word(redis));
    }
    if let Some(backlog) = &checked.backlog {
        body["outbox"] = json!({
            "waiting": backlog.waiting,
            "oldestAgeSeconds": backlog.oldest_age.map(|age| (age.as_secs_f64() * 1000.0).round() / 1000.0),
        });
    }
    (if checked.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body))
}

/// What the readiness check found.
pub struct Checked {
    pub database: bool,
    /// `None` without Redis.
    pub redis: Option<bool>,
    /// `None` when the database did not answer in time.
    pub backlog: Option<outbox::Backlog>,
}

impl Checked {
    pub fn ready(&self) -> bool {
        self.database && self.redis != Some(false)
    }
}

/// Pings the dependencies and reads the outbox's backlog; `None` once the instance drains.
pub async fn check(state: &HttpState) -> Option<Checked> {
    if state.lifecycle.phase() != Phase::Serving {
        return None;
    }
    let database = matches!(tokio::time::timeout(PING_TIMEOUT, state.app.db.ping()).await, Ok(Ok(())));
    let redis = match tokio::time::timeout(PING_TIMEOUT, state.app.bus.ping()).await {
        Ok(None) => None,
        Ok(Some(result)) => Some(result.is_ok()),
        Err(_) => Some(false),
    };
    // Shown, not judged: a backlog means events are late, not that this instance should
    // leave the load balancer (another instance would see the same table).
    let backlog = match database {
        true => tokio::time::timeout(PING_TIMEOUT, outbox::backlog(&state.app.db)).await.ok().and_then(Result::ok),
        false => None,
    };
    Some(Checked { database, redis, backlog })
}
