//! `trace_id` and `span_id` in JSON log lines, so that a log collector can jump from a line
//! to its trace. tracing-opentelemetry keeps a span's OpenTelemetry context to itself and
//! only hands it out through the dispatcher ([`tracing_opentelemetry::get_otel_context`]),
//! so this wraps the JSON formatter: it looks the ids up first (no span lock is held yet,
//! as that function requires), lets the JSON formatter write the line, and puts the two
//! fields at its front.

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub(super) struct WithTraceIds<F> {
    inner: F,
    /// Set once the subscriber is installed, and only when traces are on.
    dispatch: Arc<OnceLock<WeakDispatch>>,
}

impl<F> WithTraceIds<F> {
    pub(super) fn new(inner: F, dispatch: Arc<OnceLock<WeakDispatch>>) -> Self {
        WithTraceIds { inner, dispatch }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(ids) = self.ids(ctx) else { return self.inner.format_event(ctx, writer, event) };
        let mut line = String::with_capacity(256);
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => {
                let (trace_id, span_id) = ids;
                write!(writer, "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}")
            }
            // Not a JSON object after all: leave the line as it is.
            None => writer.write_str(&line),
        }
    }
}

impl<F> WithTraceIds<F> {
    /// The ids of the event's span, when it has a recorded OpenTelemetry context.
    fn ids<S, N>(&self, ctx: &FmtContext<'_, S, N>) -> Option<(String, String)>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
    {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let span_id = ctx.parent_span()?.id();
        let context = tracing_opentelemetry::get_otel_context(&span_id, &dispatch)?;
        let otel_span = context.span();
        let span_context = otel_span.span_context();
        span_context.is_valid().then(|| (span_context.trace_id().to_string(), span_context.span_id().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// The lines written, one `Vec` per write.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn json_lines(with_otel: bool, f: impl FnOnce()) -> Vec<serde_json::Value> {
        let lines = Lines::default();
        let writer = lines.clone();
        let dispatch = Arc::new(OnceLock::new());
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .json()
            .flatten_event(true)
            .map_event_format(|json| WithTraceIds::new(json, dispatch.clone()));
        let provider = SdkTracerProvider::builder().build();
        let otel = with_otel.then(|| tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let subscriber = tracing_subscriber::registry().with(otel).with(fmt);
        tracing::subscriber::with_default(subscriber, || {
            let _ = dispatch.set(tracing::dispatcher::get_default(|current| current.downgrade()));
            f();
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
    }

    #[test]
    fn lines_in_a_traced_span_carry_its_ids() {
        let mut expected = None;
        let lines = json_lines(true, || {
            let span = tracing::info_span!("work");
            let _entered = span.enter();
            let context = span.context();
            let otel = context.span();
            expected = Some((otel.span_context().trace_id().to_string(), otel.span_context().span_id().to_string()));
            tracing::info!(answer = 42, "inside");
        });
        let (trace_id, span_id) = expected.unwrap();
        assert_eq!(lines[0]["trace_id"], trace_id.as_str(), "{:?}", lines[0]);
        assert_eq!(lines[0]["span_id"], span_id.as_str());
        assert_eq!(lines[0]["answer"], 42, "the event's own fields stay");
    }

    #[test]
    fn lines_outside_a_span_or_without_traces_have_no_ids() {
        let outside = json_lines(true, || tracing::info!("outside"));
        assert!(outside[0].get("trace_id").is_none(), "{:?}", outside[0]);
        let untraced = json_lines(false, || {
            let _entered = tracing::info_span!("work").entered();
            tracing::info!("inside");
        });
        assert!(untraced[0].get("trace_id").is_none(), "{:?}", untraced[0]);
        assert_eq!(untraced[0]["message"], "inside");
    }
}
