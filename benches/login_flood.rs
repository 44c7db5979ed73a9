//! Does a login flood stall other requests or grow memory without limit?
//!
//! Runs the real server in-process on a temporary SQLite database, measures the latency of a
//! cheap query (`figurines`) alone, then again while a flood of concurrent failing logins
//! (each a full argon2id verification) hits the same server. Prints medians, p99s, their
//! ratio, how the flood was answered (wrong password vs RATE_LIMITED for a full hashing
//! queue) and the process's resident memory after one and after four floods.
//!
//! `cargo bench --bench login_flood` (bounded: a fixed number of requests, all on loopback).

use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use minifig::config::Settings;
use minifig::startup::Application;
use serde_json::{Value, json};

const PROBES: usize = 300;
const PROBE_CONCURRENCY: usize = 4;
/// Override with `FLOOD_REQUESTS=…` to check that peak memory does not grow with the flood.
fn flood_requests() -> usize {
    std::env::var("FLOOD_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000)
}
const FLOOD_CONCURRENCY: usize = 256;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    let settings =
        Cli::try_parse_from(["bench", "--database-url", &url, "--port", "0", "--jwt-secret", &"b".repeat(40)])
            .expect("settings")
            .settings;
    let app = Application::build(settings).await.expect("server");
    let base = format!("http://127.0.0.1:{}/graphql", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::builder().pool_max_idle_per_host(512).build().expect("client");

    let alone = probe(&client, &base).await;
    report("figurines alone", &alone);

    let flood_task = {
        let base = base.clone();
        tokio::spawn(async move { flood(&base).await })
    };
    // Let the flood fill the hashing queue before probing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = probe(&client, &base).await;
    let (wrong, limited, other, flood_elapsed) = flood_task.await.expect("flood task");
    report("figurines during the login flood", &during);
    println!(
        "flood: {} failing logins, {FLOOD_CONCURRENCY} at a time, in {:.1} s: {wrong} wrong-password answers (hashed), {limited} RATE_LIMITED (queue full), {other} other",
        flood_requests(),
        flood_elapsed.as_secs_f64()
    );
    println!(
        "ratio during/alone: median {:.2}x, p99 {:.2}x",
        during.value_at_quantile(0.5) as f64 / alone.value_at_quantile(0.5).max(1) as f64,
        during.value_at_quantile(0.99) as f64 / alone.value_at_quantile(0.99).max(1) as f64
    );
    println!(
        "resident memory after one flood: {} MiB (peak {} MiB)",
        status_kib("VmRSS:") / 1024,
        status_kib("VmHWM:") / 1024
    );
    // Bounded memory means more floods do not add more: run three more and compare.
    for round in 2..=4 {
        flood(&base).await;
        println!(
            "resident memory after flood {round}: {} MiB (peak {} MiB)",
            status_kib("VmRSS:") / 1024,
            status_kib("VmHWM:") / 1024
        );
    }
}

async fn probe(client: &reqwest::Client, base: &str) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    let mut remaining = PROBES;
    while remaining > 0 {
        let batch = remaining.min(PROBE_CONCURRENCY);
        let timings = futures::future::join_all((0..batch).map(|_| async {
            let start = Instant::now();
            let body: Value = client
                .post(base)
                .json(&json!({"query": "{ figurines { id name unitPrice { cents } } }"}))
                .send()
                .await
                .expect("probe sent")
                .json()
                .await
                .expect("probe body");
            assert!(body["data"]["figurines"].is_array(), "{body}");
            start.elapsed()
        }))
        .await;
        for elapsed in timings {
            histogram.record(elapsed.as_micros() as u64).expect("record");
        }
        remaining -= batch;
    }
    histogram
}

/// The flood comes from many addresses, as a botnet's would: from one address the throttle
/// (100 failures per address) would refuse most of it before hashing, and the hashing
/// threads, whose saturation this measures, would idle.
const FLOOD_ADDRESSES: u8 = 250;

async fn flood(base: &str) -> (usize, usize, usize, Duration) {
    use futures::StreamExt;
    let clients: Vec<reqwest::Client> = (0..FLOOD_ADDRESSES)
        .map(|n| {
            let address = std::net::IpAddr::from([127, 0, 1, n]);
            reqwest::Client::builder().local_address(address).build().expect("client")
        })
        .collect();
    let clients = &clients;
    let start = Instant::now();
    let codes: Vec<String> = futures::stream::iter(0..flood_requests())
        .map(|i| async move {
            let body: Value = clients[i % clients.len()]
                .post(base)
                .json(&json!({
                    "query": "mutation($u: String!) { login(input: {username: $u, password: \"Wrong-Pass-1\"}) { token } }",
                    "variables": {"u": format!("nobody{i}")}
                }))
                .send()
                .await
                .expect("login sent")
                .json()
                .await
                .expect("login body");
            body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none").to_owned()
        })
        .buffer_unordered(FLOOD_CONCURRENCY)
        .collect()
        .await;
    let count = |code: &str| codes.iter().filter(|c| *c == code).count();
    let (wrong, limited) = (count("UNAUTHENTICATED"), count("RATE_LIMITED"));
    (wrong, limited, codes.len() - wrong - limited, start.elapsed())
}

fn report(label: &str, h: &Histogram<u64>) {
    println!(
        "{label}: n={} median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        h.len(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.9) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

/// A memory figure of this process from `/proc/self/status` (`VmRSS:` now, `VmHWM:` peak).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status.lines().find(|l| l.starts_with(field)).map(str::to_owned))
        .and_then(|line| line.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}
