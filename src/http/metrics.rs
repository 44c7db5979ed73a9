//! `GET /metrics`: the Prometheus text exposition, on the API's listener or, with
//! `METRICS_ADDR`, only on a listener of its own (see [`crate::metrics`] for what is in it).

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, Response};
use axum::response::IntoResponse;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use crate::metrics::RouteSeries;
use minifig_common::metrics::CONTENT_TYPE as EXPOSITION;

use super::{HttpState, health};

/// Renders every metric, after reading the gauges that are sampled rather than counted.
pub async fn render(State(state): State<HttpState>) -> axum::response::Response {
    let checked = health::check(&state).await;
    let ready = checked.as_ref().is_some_and(health::Checked::ready);
    crate::metrics::sample(&state.app.db, checked.as_ref().and_then(|c| c.backlog.as_ref()), ready);
    ([(CONTENT_TYPE, EXPOSITION)], state.metrics.render()).into_response()
}

/// Counts and times every request by route and status. The route is one of the router's
/// fixed paths (never the raw path, which any client can vary).
///
/// A layer of its own rather than `axum::middleware::from_fn`, which boxes the rest of the
/// stack and its future on every request, and tower-http has no metrics layer: this one
/// wraps the inner future in place.
#[derive(Clone, Copy, Default)]
pub struct CountLayer;

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;

    fn layer(&self, inner: S) -> Count<S> {
        Count { inner }
    }
}

#[derive(Clone)]
pub struct Count<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for Count<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Counted<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let series = series_of(request.uri().path());
        Counted { inner: self.inner.call(request), series, started: Instant::now() }
    }
}

pin_project! {
    /// The inner response future, recorded when it answers.
    pub struct Counted<F> {
        #[pin]
        inner: F,
        series: &'static RouteSeries,
        started: Instant,
    }
}

impl<F, R, E> Future for Counted<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Ok(response) = &result {
            this.series.record(response.status().as_u16(), this.started.elapsed());
        }
        Poll::Ready(result)
    }
}

/// Every path the routers serve; anything else is `unmatched`.
pub const ROUTES: &[&str] = &["/", "/playground", "/graphql", "/healthz", "/readyz", "/register", "/login", "/metrics"];

/// The series of each of [`ROUTES`], in order, then of `unmatched`.
static SERIES: LazyLock<[RouteSeries; ROUTES.len() + 1]> =
    LazyLock::new(|| std::array::from_fn(|index| RouteSeries::new(ROUTES.get(index).copied().unwrap_or(UNMATCHED))));

const UNMATCHED: &str = "unmatched";

fn series_of(path: &str) -> &'static RouteSeries {
    let index = ROUTES.iter().position(|route| *route == path).unwrap_or(ROUTES.len());
    &SERIES[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_routers_paths_are_labels() {
        let route_of = |path| series_of(path).route();
        assert_eq!(route_of("/graphql"), "/graphql");
        assert_eq!(route_of("/graphql/"), UNMATCHED);
        assert_eq!(route_of("/wp-admin/a1b2c3"), UNMATCHED);
        assert_eq!(route_of("/metrics"), "/metrics", "the last route has its own series");
    }
}
