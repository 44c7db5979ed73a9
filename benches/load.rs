//! The load suite: the real release binary as a child process on PostgreSQL + Redis, a
//! fresh database and key prefix per run, and a load generator on one thread.
//!
//! ```sh
//! cargo build --release && cargo bench --bench load -- <scenario>... [options]
//! cargo bench --bench load -- all --baseline /tmp/baseline/minifig --runs 3
//! ```
//!
//! Scenarios: `ceiling`, `figurines`, `quote`, `place-order`, `fanout` (`fanout-2`: two
//! instances), `idle-subs`, `storm`, `logins`, or `all`. README.md ("Performance") says
//! what each measures. Needs PostgreSQL (`TEST_POSTGRES_URL`) and Redis (`TEST_REDIS_URL`),
//! defaults as for the tests. Every loop is bounded in count and time, all on loopback.

#[path = "load/http.rs"]
mod http;
#[path = "load/http_scenarios.rs"]
mod http_scenarios;
#[path = "load/report.rs"]
mod report;
#[path = "load/seed.rs"]
mod seed;
#[path = "load/server.rs"]
mod server;
#[path = "load/sub_scenarios.rs"]
mod sub_scenarios;
#[path = "load/ws.rs"]
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use crate::report::Outcome;
use crate::server::{Launch, Services};

const SCENARIOS: &[&str] =
    &["ceiling", "figurines", "quote", "place-order", "fanout", "fanout-2", "idle-subs", "storm", "logins"];

/// Load scenarios against the release binary (see README.md, "Performance").
#[derive(Parser, Debug)]
#[command(name = "load", about)]
struct Cli {
    /// Scenarios to run, in order: ceiling, figurines, quote, place-order, fanout,
    /// fanout-2, idle-subs, storm, logins, or all.
    scenarios: Vec<String>,
    /// Measured seconds of the closed-loop scenarios (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds before the closed-loop scenarios measure.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// `fanout`: updateOrderStatus mutations per second (open loop).
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Runs of each scenario on each binary (default 1, or 3 with --baseline).
    #[arg(long)]
    runs: Option<usize>,
    /// The server binary under test.
    #[arg(long, default_value = "target/release/minifig")]
    binary: PathBuf,
    /// A second binary to run every scenario against too, alternating with --binary.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// API instances on one database and Redis prefix (fanout: mutations go to the first,
    /// subscribers to the last; idle-subs and storm: subscribers on the last).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=4))]
    instances: u64,
    /// RUST_LOG for the servers (default: theirs).
    #[arg(long)]
    server_log: Option<String>,
    /// Keep the servers' output (stdout and stderr) after each run and print where it is.
    #[arg(long)]
    keep_logs: bool,
    /// Sockets of fanout (2,000), idle-subs (10,000) and storm (10,000): smaller for a try.
    #[arg(long)]
    sockets: Option<usize>,
    /// Subscriptions per socket in storm (10).
    #[arg(long)]
    per_socket: Option<usize>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Internal: serve the ceiling server (PORT BODY_FILE CONTENT_TYPE).
    #[arg(long, hide = true, num_args = 3, value_names = ["PORT", "BODY_FILE", "CONTENT_TYPE"])]
    serve_ceiling: Option<Vec<String>>,
}

/// Options every scenario reads.
pub struct Options {
    pub duration: Duration,
    pub warmup: Duration,
    pub rate: f64,
    pub instances: usize,
    pub server_log: Option<String>,
    pub keep_logs: bool,
    pub sockets: Option<usize>,
    pub per_socket: Option<usize>,
}

/// What one run needs: where the services are, the options, and the binary under test.
pub struct Ctx<'a> {
    pub services: &'a Services,
    pub options: &'a Options,
    pub binary: PathBuf,
}

impl Ctx<'_> {
    pub fn launch(&self, instances: usize) -> Launch {
        Launch {
            binary: self.binary.clone(),
            instances,
            server_log: self.options.server_log.clone(),
            keep_logs: self.options.keep_logs,
        }
    }
}

async fn run_scenario(name: &str, ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    match name {
        "ceiling" => http_scenarios::ceiling(ctx).await,
        "figurines" => http_scenarios::figurines(ctx).await,
        "quote" => http_scenarios::quote(ctx).await,
        "place-order" => http_scenarios::place_order(ctx).await,
        "logins" => http_scenarios::logins(ctx).await,
        "fanout" => sub_scenarios::fanout(ctx, ctx.options.instances).await,
        "fanout-2" => sub_scenarios::fanout(ctx, 2).await,
        "idle-subs" => sub_scenarios::idle_subs(ctx).await,
        "storm" => sub_scenarios::storm(ctx).await,
        other => anyhow::bail!("unknown scenario {other}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(args) = &cli.serve_ceiling {
        return match server::serve_ceiling(&args[0], std::path::Path::new(&args[1]), &args[2]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("ceiling server: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let mut scenarios: Vec<&str> = Vec::new();
    for name in &cli.scenarios {
        match name.as_str() {
            "all" => scenarios.extend(SCENARIOS),
            known if SCENARIOS.contains(&known) => scenarios.push(known),
            unknown => {
                eprintln!("unknown scenario {unknown:?}; choose from {} or all", SCENARIOS.join(", "));
                return ExitCode::from(2);
            }
        }
    }
    if scenarios.is_empty() {
        eprintln!(
            "name a scenario: cargo bench --bench load -- <{}|all> [--duration S] [--rate N] [--runs N] [--binary PATH] [--baseline PATH] [--instances N]",
            SCENARIOS.join("|")
        );
        return ExitCode::from(2);
    }
    let options = Options {
        duration: Duration::from_secs_f64(cli.duration.max(0.1)),
        warmup: Duration::from_secs_f64(cli.warmup.max(0.0)),
        rate: cli.rate.max(1.0),
        instances: cli.instances as usize,
        server_log: cli.server_log.clone(),
        keep_logs: cli.keep_logs,
        sockets: cli.sockets,
        per_socket: cli.per_socket,
    };
    let runs = cli.runs.unwrap_or(if cli.baseline.is_some() { 3 } else { 1 }).max(1);
    let limit = server::raise_fd_limit();
    println!("open-file limit {limit}; {} run(s) per scenario and binary", runs);
    let mut binaries: Vec<(&'static str, PathBuf)> = Vec::new();
    if let Some(baseline) = &cli.baseline {
        binaries.push(("baseline", baseline.clone()));
    }
    binaries.push(("candidate", cli.binary.clone()));
    for (label, path) in &binaries {
        println!("{label}: {}", path.display());
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let local = tokio::task::LocalSet::new();
    let services = Services::from_env();
    let (outcomes, failures) = local.block_on(&runtime, async {
        let mut outcomes = Vec::new();
        let mut failures = Vec::new();
        for scenario in &scenarios {
            for run in 1..=runs {
                for (label, binary) in &binaries {
                    println!("### {scenario}, run {run}/{runs}, {label}");
                    let ctx = Ctx { services: &services, options: &options, binary: binary.clone() };
                    match run_scenario(scenario, &ctx).await {
                        Ok(mut outcome) => {
                            outcome.binary = label;
                            report::print_outcome(&outcome);
                            outcomes.push(outcome);
                        }
                        Err(err) => {
                            eprintln!("{scenario} on {label} failed: {err:#}\n");
                            failures.push(format!("{scenario}, run {run}, {label}: {err:#}"));
                        }
                    }
                    // Let sockets in TIME_WAIT and the database settle between runs.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        (outcomes, failures)
    });
    report::print_summary(&outcomes, &failures);
    if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
