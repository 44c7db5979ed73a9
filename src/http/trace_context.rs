//! The W3C Trace Context a client sends (`traceparent`, `tracestate` headers), made the
//! parent of the request's span; see `minifig_common::telemetry::propagation`.

use axum::http::HeaderMap;
use minifig_common::telemetry::propagation::{self, TRACEPARENT, TRACESTATE};

/// Makes the trace context in `headers` the parent of `span` (not yet entered). Headers
/// that are absent, repeated, not text, or malformed are ignored: the span starts a trace
/// of its own. Nothing is done while traces are off.
pub fn continue_from(span: &tracing::Span, headers: &HeaderMap) {
    if !propagation::is_enabled() {
        return;
    }
    propagation::set_parent(span, single(headers, TRACEPARENT), single(headers, TRACESTATE));
}

/// The header's value when it is sent once, as text. W3C allows `tracestate` to be split
/// over several headers; joining them is not worth it here, so a split one is dropped.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn only_a_header_sent_once_as_text_is_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(single(&headers, TRACEPARENT), None);
        headers.insert(TRACEPARENT, HeaderValue::from_static("00-abc"));
        assert_eq!(single(&headers, TRACEPARENT), Some("00-abc"));
        headers.append(TRACEPARENT, HeaderValue::from_static("00-def"));
        assert_eq!(single(&headers, TRACEPARENT), None, "two parents: neither");
        headers.insert(TRACESTATE, HeaderValue::from_bytes(b"a=\xff").unwrap());
        assert_eq!(single(&headers, TRACESTATE), None, "not text");
    }
}
