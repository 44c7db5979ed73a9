//! Figures of one run, their markdown rows, and the medians over runs.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// A histogram of latencies in microseconds, up to an hour.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds")
}

/// Records `elapsed` (saturating at the histogram's bounds).
pub fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.saturating_record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1));
}

/// p50, p90, p99 and max of a histogram, in milliseconds (None when it is empty).
#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub count: u64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Option<Percentiles> {
        if histogram.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            p50: ms(histogram.value_at_quantile(0.5)),
            p90: ms(histogram.value_at_quantile(0.9)),
            p99: ms(histogram.value_at_quantile(0.99)),
            max: ms(histogram.max()),
            count: histogram.len(),
        })
    }
}

/// One named number of a run.
#[derive(Clone, Debug)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
}

impl Figure {
    pub fn new(name: impl Into<String>, value: f64, unit: &'static str) -> Figure {
        Figure { name: name.into(), value, unit }
    }

    fn show(&self) -> String {
        if self.unit.is_empty() {
            format!("{} {}", self.name, number(self.value))
        } else {
            format!("{} {} {}", self.name, number(self.value), self.unit)
        }
    }
}

/// What one run of one scenario measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub scenario: String,
    /// `candidate` or `baseline`.
    pub binary: &'static str,
    pub headline: Figure,
    /// Whether a larger headline is better (throughput) or worse (latency, memory).
    pub higher_is_better: bool,
    pub latency: Option<Percentiles>,
    pub errors: u64,
    pub server_cpu_percent: f64,
    pub server_rss_mib: f64,
    pub client_cpu_percent: f64,
    /// The whole machine's busy time, % of all cores.
    pub machine_cpu_percent: f64,
    pub extras: Vec<Figure>,
    /// Free text: the first error messages and the like (printed, not tabulated).
    pub notes: Vec<String>,
}

impl Outcome {
    pub fn new(scenario: &str, headline: Figure, higher_is_better: bool) -> Outcome {
        Outcome {
            scenario: scenario.to_owned(),
            binary: "candidate",
            headline,
            higher_is_better,
            latency: None,
            errors: 0,
            server_cpu_percent: 0.0,
            server_rss_mib: 0.0,
            client_cpu_percent: 0.0,
            machine_cpu_percent: f64::NAN,
            extras: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The CPU figures of the measured window.
    pub fn cpu(&mut self, usage: &crate::server::CpuUsage) {
        self.server_cpu_percent = usage.server_percent;
        self.client_cpu_percent = usage.client_percent;
        self.machine_cpu_percent = usage.machine_percent;
    }

    pub fn extra(&mut self, name: impl Into<String>, value: f64, unit: &'static str) {
        self.extras.push(Figure::new(name, value, unit));
    }
}

pub const HEADER: &str = "| scenario | binary | headline | p50 ms | p90 ms | p99 ms | errors | server CPU % | machine CPU % | server RSS MiB | client CPU % | details |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |";

pub fn row(outcome: &Outcome) -> String {
    let cell = |f: Option<f64>| f.map_or_else(|| "-".to_owned(), number);
    let details: Vec<String> = outcome.extras.iter().map(Figure::show).collect();
    format!(
        "| {} | {} | {} {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
        outcome.scenario,
        outcome.binary,
        number(outcome.headline.value),
        outcome.headline.unit,
        cell(outcome.latency.map(|l| l.p50)),
        cell(outcome.latency.map(|l| l.p90)),
        cell(outcome.latency.map(|l| l.p99)),
        outcome.errors,
        outcome.server_cpu_percent,
        outcome.machine_cpu_percent,
        outcome.server_rss_mib,
        outcome.client_cpu_percent,
        details.join("; ")
    )
}

/// Prints a run's outcome: its notes, then the table row.
pub fn print_outcome(outcome: &Outcome) {
    for note in &outcome.notes {
        println!("  note: {note}");
    }
    println!("{HEADER}");
    println!("{}", row(outcome));
    println!();
}

/// A number with as many decimals as its size calls for.
pub fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 || value == value.trunc() {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The median of every figure over the runs of one scenario on one binary.
fn median_outcome(runs: &[&Outcome]) -> Outcome {
    let first = runs[0];
    let pick = |f: &dyn Fn(&Outcome) -> f64| median(&mut runs.iter().map(|o| f(o)).collect::<Vec<_>>());
    let mut out = Outcome::new(&first.scenario, first.headline.clone(), first.higher_is_better);
    out.binary = first.binary;
    out.headline.value = pick(&|o| o.headline.value);
    if runs.iter().all(|o| o.latency.is_some()) {
        let lat = |f: fn(&Percentiles) -> f64| pick(&|o: &Outcome| o.latency.as_ref().map_or(f64::NAN, f));
        out.latency = Some(Percentiles {
            p50: lat(|l| l.p50),
            p90: lat(|l| l.p90),
            p99: lat(|l| l.p99),
            max: lat(|l| l.max),
            count: runs.iter().map(|o| o.latency.map_or(0, |l| l.count)).sum(),
        });
    }
    out.errors = pick(&|o| o.errors as f64) as u64;
    out.server_cpu_percent = pick(&|o| o.server_cpu_percent);
    out.server_rss_mib = pick(&|o| o.server_rss_mib);
    out.client_cpu_percent = pick(&|o| o.client_cpu_percent);
    out.machine_cpu_percent = pick(&|o| o.machine_cpu_percent);
    for (i, figure) in first.extras.iter().enumerate() {
        let value = pick(&|o| o.extras.get(i).filter(|f| f.name == figure.name).map_or(f64::NAN, |f| f.value));
        out.extras.push(Figure { value, ..figure.clone() });
    }
    out
}

/// The summary: per scenario and binary, the medians; with a baseline, the ratio of the
/// headline (candidate / baseline).
pub fn print_summary(outcomes: &[Outcome], failures: &[String]) {
    let mut groups: BTreeMap<(usize, &'static str), Vec<&Outcome>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for outcome in outcomes {
        let index = order.iter().position(|s| *s == outcome.scenario).unwrap_or_else(|| {
            order.push(&outcome.scenario);
            order.len() - 1
        });
        groups.entry((index, outcome.binary)).or_default().push(outcome);
    }
    println!("## Summary (medians over runs)\n");
    println!("{HEADER}");
    for runs in groups.values() {
        let mut median = median_outcome(runs);
        median.binary = if runs.len() > 1 {
            if median.binary == "baseline" { "baseline (median)" } else { "candidate (median)" }
        } else {
            median.binary
        };
        println!("{}", row(&median));
    }
    let has_baseline = outcomes.iter().any(|o| o.binary == "baseline");
    if has_baseline {
        println!(
            "\n| scenario | headline | baseline | candidate | candidate / baseline | better is |\n| --- | --- | ---: | ---: | ---: | --- |"
        );
        for (index, scenario) in order.iter().enumerate() {
            let (Some(base), Some(cand)) = (groups.get(&(index, "baseline")), groups.get(&(index, "candidate"))) else {
                continue;
            };
            let (base, cand) = (median_outcome(base), median_outcome(cand));
            let ratio = cand.headline.value / base.headline.value;
            println!(
                "| {scenario} | {} | {} | {} | {:.2} | {} |",
                cand.headline.unit,
                number(base.headline.value),
                number(cand.headline.value),
                ratio,
                if cand.higher_is_better { "higher" } else { "lower" }
            );
        }
    }
    if !failures.is_empty() {
        println!("\nRuns that failed:");
        for failure in failures {
            println!("- {failure}");
        }
    }
}
