//! `GET /metrics`: the Prometheus text exposition, on the API's listener or, with
//! `METRICS_ADDR`, only on a listener of its own (see [`crate::metrics`] for what is in it).

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use minifig_common::metrics::CONTENT_TYPE as EXPOSITION;

use super::{HttpState, health};

/// Renders every metric, after reading the gauges that are sampled rather than counted.
pub async fn render(State(state): State<HttpState>) -> Response {
    let checked = health::check(&state).await;
    let ready = checked.as_ref().is_some_and(health::Checked::ready);
    crate::metrics::sample(&state.app.db, checked.as_ref().and_then(|c| c.backlog.as_ref()), ready);
    ([(CONTENT_TYPE, EXPOSITION)], state.metrics.render()).into_response()
}

/// Counts and times every request by route and status. The route is one of the router's
/// fixed paths (never the raw path, which any client can vary).
pub async fn count(request: Request, next: Next) -> Response {
    let route = route_of(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    crate::metrics::http_request(route, response.status().as_u16(), started.elapsed());
    response
}

/// Every path the routers serve; anything else is `unmatched`.
pub const ROUTES: &[&str] = &["/", "/playground", "/graphql", "/healthz", "/readyz", "/register", "/login", "/metrics"];

fn route_of(path: &str) -> &'static str {
    ROUTES.iter().find(|route| **route == path).copied().unwrap_or("unmatched")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_routers_paths_are_labels() {
        assert_eq!(route_of("/graphql"), "/graphql");
        assert_eq!(route_of("/graphql/"), "unmatched");
        assert_eq!(route_of("/wp-admin/a1b2c3"), "unmatched");
    }
}
