//! Liveness and readiness probes.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::HttpState;

/// How long the database may take to answer a readiness ping.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up and serving HTTP.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The process can do its work: the database answers. 503 otherwise, so a load balancer
/// sends traffic elsewhere.
pub async fn ready(State(state): State<HttpState>) -> (StatusCode, Json<Value>) {
    let database = matches!(tokio::time::timeout(PING_TIMEOUT, state.app.db.ping()).await, Ok(Ok(())));
    if !database {
        tracing::warn!("readiness check failed: the database did not answer");
    }
    let status = if database { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (status, Json(json!({"status": word(database), "database": word(database)})))
}
