//! Logging and traces, set up the same way by both binaries.
//!
//! Logs: `tracing` to stdout, human-readable or JSON, filtered by `RUST_LOG`. Lines are
//! written by a thread of their own, in batches: a request never waits for the terminal
//! or the log collector. Writing each line from the request's thread took a sixth of the
//! server's CPU under load (one `write` system call per line, measured with `perf` on the
//! `figurines` load). When the collector falls far behind, lines are dropped rather than
//! requests slowed.
//!
//! Traces: off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set ([`otel`]); then the spans that
//! pass `RUST_LOG` also go to an OTLP collector, JSON log lines carry the `trace_id` and
//! `span_id` of their span ([`trace_ids`]), and [`propagation`] carries the W3C trace
//! context across HTTP, Redis and the in-process queue. Off, nothing is added to any path:
//! no layer, and the propagation helpers answer `None` at once.

mod otel;
pub mod propagation;
mod trace_ids;

use std::sync::Arc;

use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use otel::{Protocol, protocol_from};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Bytes gathered before one write to stdout; the writer thread also writes whenever it
/// has no more lines waiting.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// What [`init`] set up; keep it until the process ends. Dropping it first sends the spans
/// still waiting in the batch processor (a process that exits right after its last order
/// would lose them otherwise), then writes out the log lines still waiting.
#[must_use = "dropping the guard stops the log writer and the trace exporter"]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    _log_writer: WorkerGuard,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.tracer.take()
            && let Err(err) = provider.shutdown()
        {
            // The log writer is still alive here (fields drop after this), so this is seen.
            tracing::warn!(error = %err, "could not send the last spans to the trace collector");
        }
    }
}

/// Installs the global subscriber once; later calls (tests) install nothing, but still
/// hand back a guard. `default_filter` applies when `RUST_LOG` is not set.
/// `service_name` names this process's spans unless `OTEL_SERVICE_NAME` is set. With
/// `grpc` export this must run inside the Tokio runtime (the gRPC client lives on it).
pub fn init(format: LogFormat, default_filter: &str, service_name: &str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let stdout = std::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, std::io::stdout());
    let (writer, log_writer) = tracing_appender::non_blocking(stdout);
    let (tracer, otel_error) = match otel::provider(service_name) {
        Ok(provider) => (provider, None),
        Err(err) => (None, Some(err)),
    };
    let otel_layer = tracer.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(provider.tracer("minifig"))
    });
    let fmt = tracing_subscriber::fmt::layer().with_span_events(FmtSpan::NONE).with_writer(writer);
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    let dispatch = Arc::new(std::sync::OnceLock::new());
    let installed = match format {
        LogFormat::Pretty => registry.with(fmt).try_init(),
        LogFormat::Json => registry
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .map_event_format(|json| trace_ids::WithTraceIds::new(json, dispatch.clone())),
            )
            .try_init(),
    };
    if installed.is_ok() && tracer.is_some() {
        propagation::enable();
        // The formatter needs the dispatcher to ask the OpenTelemetry layer for a span's
        // ids; it only exists now that the subscriber is installed.
        let _ = dispatch.set(tracing::dispatcher::get_default(|current| current.downgrade()));
        tracing::info!(service = service_name, "sending traces to the OTLP collector");
    }
    if let Some(err) = otel_error {
        tracing::error!(error = format!("{err:#}"), "traces are off: the OTLP exporter could not be set up");
    }
    Telemetry { tracer: tracer.filter(|_| installed.is_ok()), _log_writer: log_writer }
}
