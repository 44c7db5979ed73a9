//! The W3C Trace Context (<https://www.w3.org/TR/trace-context/>) across process
//! boundaries: a span's `traceparent` (and `tracestate`) to send along, and a received one
//! made the parent of a span. Everything here answers `None` or does nothing while traces
//! are off, at the cost of one atomic load, so callers need not check.
//!
//! A received value is never trusted: a malformed `traceparent` (wrong length, version
//! `ff`, an all-zero id, a client's garbage) is ignored and the span starts a trace of its
//! own. It is never an error, since tracing must not change what a request does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (and Redis field, and JSON key) names of the W3C Trace Context.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` the specification allows is 32 members of about 256 bytes;
/// anything longer is not passed on.
const MAX_TRACESTATE_BYTES: usize = 8 * 1024;
/// A version-00 `traceparent` is exactly 55 characters; later versions may append fields.
const MAX_TRACEPARENT_BYTES: usize = 512;

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Called once the OpenTelemetry layer is installed.
pub(super) fn enable() {
    ENABLED.store(true, Ordering::Release);
}

/// Whether spans are exported (and so worth propagating).
pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// The `traceparent` that makes a receiver's span a child of `span`; `None` when traces
/// are off or `span` is not recorded.
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    headers_of(span).into_iter().find(|(name, _)| *name == TRACEPARENT).map(|(_, value)| value)
}

/// [`traceparent_of`] the current span.
pub fn current_traceparent() -> Option<String> {
    if !is_enabled() {
        return None;
    }
    traceparent_of(&tracing::Span::current())
}

/// The headers that carry `span`'s context (`traceparent`, and `tracestate` when it has
/// one); empty when traces are off.
pub fn headers_of(span: &tracing::Span) -> Vec<(&'static str, String)> {
    if !is_enabled() {
        return Vec::new();
    }
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return Vec::new();
    }
    let mut carrier = Carrier::default();
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut carrier));
    [TRACEPARENT, TRACESTATE]
        .into_iter()
        .filter_map(|name| carrier.0.remove(name).filter(|value| !value.is_empty()).map(|value| (name, value)))
        .collect()
}

/// Makes the context in `traceparent` (and `tracestate`) the parent of `span`, which must
/// not have been entered yet. Ignores an absent or malformed value.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    if !is_enabled() {
        return;
    }
    let Some(traceparent) = traceparent.filter(|value| value.len() <= MAX_TRACEPARENT_BYTES) else { return };
    let received = Received { traceparent, tracestate: tracestate.filter(|value| value.len() <= MAX_TRACESTATE_BYTES) };
    let context = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&received));
    if context.span().span_context().is_valid() {
        // Fails only when the span was already started; the span then keeps its own trace.
        let _ = span.set_parent(context);
    }
}

#[derive(Default)]
struct Carrier(HashMap<&'static str, String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        let name = match key {
            TRACEPARENT => TRACEPARENT,
            TRACESTATE => TRACESTATE,
            // Only the trace context is configured; anything else is not ours to carry.
            _ => return,
        };
        self.0.insert(name, value);
    }
}

struct Received<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Received<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => Some(self.traceparent),
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// Runs `f` with spans recorded by an OpenTelemetry layer (nothing exported).
    fn traced<T>(f: impl FnOnce() -> T) -> T {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        enable();
        let provider = SdkTracerProvider::builder().build();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, f)
    }

    fn trace_id(span: &tracing::Span) -> String {
        span.context().span().span_context().trace_id().to_string()
    }

    #[test]
    fn a_received_traceparent_becomes_the_parent() {
        traced(|| {
            let span = tracing::info_span!("child");
            set_parent(&span, Some(PARENT), Some("vendor=1"));
            assert_eq!(trace_id(&span), TRACE_ID);
            let sent = traceparent_of(&span).expect("a traceparent");
            assert!(sent.starts_with(&format!("00-{TRACE_ID}-")), "{sent}");
            assert_ne!(sent, PARENT, "the child's own span id is sent, not the parent's");
            assert_eq!(headers_of(&span).iter().find(|(name, _)| *name == TRACESTATE).unwrap().1, "vendor=1");
        });
    }

    #[test]
    fn a_malformed_traceparent_starts_a_trace_of_its_own() {
        traced(|| {
            for bad in [
                "",
                "garbage",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
                &format!("{PARENT}{}", "-x".repeat(1000)),
            ] {
                let span = tracing::info_span!("child");
                set_parent(&span, Some(bad), None);
                let id = trace_id(&span);
                assert_ne!(id, TRACE_ID, "{bad:?} was taken");
                assert!(traceparent_of(&span).is_some(), "the span still has a trace of its own");
            }
        });
    }

    #[test]
    fn a_span_without_a_received_context_sends_its_own() {
        traced(|| {
            let span = tracing::info_span!("root");
            set_parent(&span, None, None);
            let sent = traceparent_of(&span).expect("a traceparent");
            assert_eq!(sent.len(), 55, "{sent}");
            assert!(sent.starts_with("00-") && sent.ends_with("-01"), "{sent}");
        });
    }
}
