//! HTTP: the routes of contract section 1 and the layers every request passes through.

mod auth;
mod body_limit;
mod client_address;
mod content_type;
mod graphql;
mod health;
pub mod lifecycle;
mod metrics;
mod rest;
mod trace_context;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::{GraphQLPlaygroundConfig, GraphiQLSource, playground_source};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

pub use auth::caller_from_headers;
pub use client_address::{TrustedProxies, parse_trusted_proxy};
pub use ws::{SocketRegistry, SocketRuntime};

use self::lifecycle::Lifecycle;
use crate::graphql::Engine;
use crate::state::AppState;

/// Largest request body accepted. A GraphQL document of the real schema, even a batch of
/// ten, is a few KiB; anything near this limit is abuse.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share: the service state and the schema built from it, behind one
/// `Arc`. Every request's `State` extractor clones it: field by field, that was a reference
/// count on each of more than a dozen shared handles, bumped and dropped by every worker
/// thread.
#[derive(Clone)]
pub struct HttpState(Arc<Shared>);

impl HttpState {
    pub fn new(shared: Shared) -> Self {
        HttpState(Arc::new(shared))
    }
}

impl std::ops::Deref for HttpState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`HttpState`].
pub struct Shared {
    pub app: AppState,
    pub schema: Engine,
    /// Where upgraded WebSockets run (see [`ws::SocketRuntime`]).
    pub sockets: Arc<SocketRuntime>,
    /// The open WebSockets, counted against their caps.
    pub socket_registry: Arc<SocketRegistry>,
    /// Serving, draining or stopping: what `/readyz` says and when sockets close.
    pub lifecycle: Lifecycle,
    /// Renders `/metrics`.
    pub metrics: minifig_common::metrics::PrometheusHandle,
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API's routes. `/metrics` is among them unless `METRICS_ADDR` gives it a listener of
/// its own ([`metrics_router`]).
pub fn router(state: HttpState) -> Router {
    let trusted_proxies = TrustedProxies::new(state.app.settings.trusted_proxies.clone());
    let mut routes = Router::new();
    if state.app.settings.metrics_addr.is_none() {
        routes = routes.route("/metrics", get(metrics::render));
    }
    routes
        .route("/", get(graphiql))
        .route("/playground", get(playground))
        .route("/graphql", get(ws::get).post(graphql::post))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/register", post(rest::register))
        .route("/login", post(rest::login))
        .fallback(not_found)
        .with_state(state)
        // The body is already whole and within the limit (below); the extractors' own
        // limit would only repeat it.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(body_limit::limit))
        .layer(axum::middleware::from_fn_with_state(trusted_proxies, client_address::resolve))
        .layer(CatchPanicLayer::custom(|_| {
            rest::error_response(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", "internal server error")
        }))
        .layer(metrics::CountLayer)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    // The path only: query strings can carry GraphQL variables, including passwords.
                    let span = tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = request.uri().path(),
                        request_id,
                        status = tracing::field::Empty,
                        latency_ms = tracing::field::Empty,
                    );
                    // A client's W3C trace context makes this request part of its trace (a
                    // WebSocket's too: this is its upgrade request). Malformed: ignored.
                    trace_context::continue_from(&span, request.headers());
                    span
                })
                .on_request(())
                .on_response(|response: &Response, latency: Duration, span: &Span| {
                    span.record("status", response.status().as_u16());
                    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
                    tracing::info!("request completed");
                })
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The listener of `METRICS_ADDR`: `/metrics` and the probes, nothing of the API.
pub fn metrics_router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .fallback(not_found)
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("MiniFigurine GraphiQL")
            .finish(),
    )
}

async fn playground() -> Html<String> {
    Html(playground_source(
        GraphQLPlaygroundConfig::new("/graphql").subscription_endpoint("/graphql").title("MiniFigurine Playground"),
    ))
}

async fn not_found() -> impl IntoResponse {
    rest::error_response(StatusCode::NOT_FOUND, "NOT_FOUND", "no such route; the API is at /graphql")
}
