//! Logging: `tracing` to stdout, human-readable or JSON, filtered by `RUST_LOG`.
//!
//! Lines are written by a thread of their own, in batches: a request never waits for the
//! terminal or the log collector. Writing each line from the request's thread took a
//! sixth of the server's CPU under load (one `write` system call per line, measured with
//! `perf` on the `figurines` load). When the collector falls far behind, lines are dropped
//! rather than requests slowed.

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Bytes gathered before one write to stdout; the writer thread also writes whenever it
/// has no more lines waiting.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// Installs the global subscriber once; later calls (tests) are no-ops. `default_filter`
/// applies when `RUST_LOG` is not set. Keep the returned guard until the process ends:
/// dropping it writes out the lines still waiting.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat, default_filter: &str) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let stdout = std::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, std::io::stdout());
    let (writer, guard) = tracing_appender::non_blocking(stdout);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_span_events(FmtSpan::NONE).with_writer(writer);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    guard
}
