//! Prometheus metrics: the one recorder a process installs, and its text exposition.
//!
//! Both binaries record through the `metrics` facade and expose the same text format, with
//! the same buckets: every `_seconds` histogram is a real histogram (not a summary), so
//! that a fleet's instances can be summed and their quantiles computed by Prometheus.

use std::sync::OnceLock;
use std::time::Duration;

pub use metrics_exporter_prometheus::PrometheusHandle;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// The media type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds of every `_seconds` histogram: from a cached query (half a millisecond)
/// to a production step or a publish that waited out a Redis failover (30 s).
pub const SECONDS_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How often the recorder drains histogram samples that no scrape has collected, so that
/// a process nobody scrapes does not keep them all.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the process's recorder, once; later calls return the same handle (tests build
/// several servers in one process). An error when another recorder is installed.
pub fn install() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .map_err(|err| err.to_string())?
                .install_recorder()
                .map_err(|err| err.to_string())?;
            let upkept = handle.clone();
            // A thread rather than a task: the recorder outlives any one runtime (each test
            // has its own), and the work is a few microseconds every few seconds.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkept.run_upkeep();
                    }
                })
                .map_err(|err| err.to_string())?;
            Ok(handle)
        })
        .clone()
}

/// The label value of an outcome: `ok`, or the error's code.
pub const OK: &str = "ok";

/// A counter that starts at zero in the exposition instead of appearing at its first
/// increment, so that `rate()` and `increase()` see the first event too.
pub fn register_counter(name: &'static str, labels: &[(&'static str, &'static str)]) {
    let labels: Vec<metrics::Label> = labels.iter().map(|&(key, value)| metrics::Label::new(key, value)).collect();
    metrics::counter!(name, labels).increment(0);
}

/// One unit of a gauge for as long as it lives (an open socket, an order in the works):
/// whichever way its owner ends, a return, an error or a panic, the gauge comes back down.
pub struct Held(metrics::Gauge);

impl Held {
    pub fn one(gauge: metrics::Gauge) -> Self {
        gauge.increment(1);
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.decrement(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_histograms_have_buckets_and_install_is_idempotent() {
        let handle = install().expect("the recorder installs");
        let again = install().expect("a second call returns the same recorder");
        metrics::histogram!("test_step_duration_seconds").record(0.2);
        register_counter("test_things_total", &[("kind", "a")]);
        let text = again.render();
        assert!(text.contains("# TYPE test_step_duration_seconds histogram"), "{text}");
        assert!(text.contains("test_step_duration_seconds_bucket{le=\"0.25\"} 1"), "{text}");
        assert!(text.contains("test_step_duration_seconds_bucket{le=\"0.1\"} 0"), "{text}");
        assert!(text.contains("test_things_total{kind=\"a\"} 0"), "{text}");
        drop(handle);
    }
}
