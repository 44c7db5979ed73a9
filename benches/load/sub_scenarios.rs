//! The subscription scenarios: `fanout` (and `fanout-2`), `idle-subs`, `storm`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::Ctx;
use crate::http::{self, OpenLoop, Reply};
use crate::http_scenarios::{side_p99, side_probe, with_stack};
use crate::report::{Figure, Outcome, Percentiles, histogram, record};
use crate::seed;
use crate::server::{CpuWindow, Stack};
use crate::ws::{self, Tracker};

const TRANSITIONS: [&str; 3] = ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"];
const UPDATE: &str = "mutation($input: UpdateOrderStatusInput!) { updateOrderStatus(input: $input) { version } }";
/// How long every socket may take to get its first event.
const FIRST_EVENT_LIMIT: Duration = Duration::from_secs(120);

/// A customer to own the seeded orders, and the FACTORY token the sockets use (staff may
/// subscribe to any order).
async fn owner_and_factory(stack: &Stack, tag: &str) -> anyhow::Result<(seed::Account, String)> {
    let owner = seed::register(stack.a(), tag, 1).await?.pop().context("one customer")?;
    Ok((owner, seed::factory_token(stack.a()).await?))
}

fn per_server_cpu(outcome: &mut Outcome, stack: &Stack, usage: &crate::server::CpuUsage) {
    if stack.servers.len() > 1 {
        for (server, cpu) in stack.servers.iter().zip(&usage.per_server) {
            outcome.extra(format!("CPU {}", server.label), *cpu, "%");
        }
    }
}

/// `fanout`: one `orderStatus` subscription per order on its own socket (on instance B
/// with two instances), then `updateOrderStatus` on A, open loop at `--rate`.
pub async fn fanout(ctx: &Ctx<'_>, instances: usize) -> anyhow::Result<Outcome> {
    let orders_wanted = ctx.options.sockets.unwrap_or(2_000);
    let name = if instances > 1 { format!("fanout-{instances}") } else { "fanout".to_owned() };
    with_stack(ctx, instances, async |stack: &Stack| {
        let catalog = seed::catalog(stack.a()).await?;
        let customers = seed::register(stack.a(), "load_fan", 8).await?;
        let factory = seed::factory_token(stack.a()).await?;
        let orders = seed::place_orders(stack.a(), &customers, catalog.figurine(0), orders_wanted, 64).await?;
        let n = orders.len();

        let tracker = Tracker::new(n, 4);
        let subscribe_from = Instant::now();
        let (stop, sockets) = ws::spawn_sockets(stack.b(), &factory, &orders, n, 1, &tracker, 256);
        let subscribed = tracker.wait_first(n, subscribe_from + FIRST_EVENT_LIMIT).await;
        let subscribe_secs = tracker.last_first.get().map_or(f64::NAN, |t| (t - subscribe_from).as_secs_f64());

        // The mutations: i-th is TRANSITIONS[i / n] of orders[i % n].
        let count = 3 * n;
        let answered: Rc<RefCell<Vec<Option<Instant>>>> = Rc::new(RefCell::new(vec![None; count]));
        let token = http::bearer(&factory);
        let make = {
            let orders = orders.clone();
            Rc::new(move |i: usize| {
                let input = json!({"input": {"orderId": orders[i % n], "status": TRANSITIONS[i / n]}});
                (http::body(UPDATE, input), Some(token.clone()))
            })
        };
        let check = {
            let answered = answered.clone();
            Rc::new(move |i: usize, reply: &Reply, at: Instant| {
                let version = serde_json::from_slice::<Value>(&reply.body)
                    .ok()
                    .and_then(|v| v["data"]["updateOrderStatus"]["version"].as_i64());
                let ok = reply.status == 200 && version == Some((i / n) as i64 + 2);
                if ok {
                    answered.borrow_mut()[i] = Some(at);
                }
                ok
            })
        };
        let start = Instant::now() + Duration::from_millis(100);
        let cpu = CpuWindow::start(&stack.pids());
        let (samples, mutation_errors) = OpenLoop {
            addr: stack.a(),
            connections: 64,
            start,
            rate: ctx.options.rate,
            count,
            stop: Rc::new(Cell::new(false)),
        }
        .run(make, check)
        .await?;
        let usage = cpu.finish();
        let rss = stack.rss_mib();
        let last_answer = samples.iter().map(|s| s.done).max().unwrap_or(start);
        let shipped = answered.borrow()[2 * n..].iter().filter(|a| a.is_some()).count();
        tracker.wait_final(shipped, last_answer + Duration::from_secs(10)).await;
        ws::close_all(stop, sockets).await;

        let mut mutation_latency = histogram();
        let mut failed = 0u64;
        for sample in &samples {
            if sample.ok {
                record(&mut mutation_latency, sample.latency());
            } else {
                failed += 1;
            }
        }
        let ok = samples.len() as u64 - failed;
        let achieved = ok as f64 / (last_answer - start).as_secs_f64().max(1e-3);

        // Event delay: subscriber's arrival minus the client's receipt of the answer.
        let answered = answered.borrow();
        let events = tracker.events.borrow();
        let (mut delay, mut early, mut lost, mut duplicated, mut out_of_order, mut bad_first) =
            (histogram(), 0u64, 0u64, 0u64, 0u64, 0u64);
        for (order, list) in events.iter().enumerate() {
            if list.first().is_some_and(|(v, _)| *v != 1) {
                bad_first += 1;
            }
            let mut seen = Vec::new();
            let mut highest = 0;
            for &(version, at) in list {
                if seen.contains(&version) {
                    duplicated += 1;
                    continue;
                }
                if version < highest {
                    out_of_order += 1;
                }
                highest = highest.max(version);
                seen.push(version);
                let Some(step) = usize::try_from(version - 2).ok().filter(|s| *s < 3) else { continue };
                if let Some(answer) = answered[step * n + order] {
                    if at >= answer {
                        record(&mut delay, at - answer);
                    } else {
                        early += 1;
                        delay.saturating_record(0);
                    }
                }
            }
            for step in 0..3 {
                if answered[step * n + order].is_some() && !seen.contains(&(step as i64 + 2)) {
                    lost += 1;
                }
            }
        }
        let delay = Percentiles::of(&delay);
        let p = |f: fn(&Percentiles) -> f64| delay.as_ref().map_or(f64::NAN, f);
        let mut outcome =
            Outcome::new(&name, Figure::new("event delay p99", p(|d| d.p99), "ms event delay p99"), false);
        outcome.latency = Percentiles::of(&mutation_latency);
        outcome.errors = failed + tracker.errors.get() + bad_first;
        outcome.cpu(&usage);
        outcome.server_rss_mib = rss;
        outcome.extra("mutations/s", achieved, "");
        outcome.extra("target/s", ctx.options.rate, "");
        outcome.extra("event p50", p(|d| d.p50), "ms");
        outcome.extra("event p90", p(|d| d.p90), "ms");
        outcome.extra("event max", p(|d| d.max), "ms");
        outcome.extra("events before answer", early as f64, "");
        outcome.extra("lost", lost as f64, "");
        outcome.extra("duplicated", duplicated as f64, "");
        outcome.extra("out of order", out_of_order as f64, "");
        outcome.extra("subscriptions", n as f64, "");
        outcome.extra("all subscribed in", subscribe_secs, "s");
        per_server_cpu(&mut outcome, stack, &usage);
        if !subscribed {
            outcome
                .notes
                .push(format!("only {} of {n} subscriptions got their first event", tracker.first_count.get()));
        }
        outcome.notes.extend(mutation_errors.into_iter().map(|e| format!("mutation error: {e}")));
        outcome.notes.extend(tracker.first_errors.borrow().iter().map(|e| format!("subscriber error: {e}")));
        Ok(outcome)
    })
    .await
}

/// `idle-subs`: 10,000 sockets with one `orderStatus` subscription each; the servers'
/// memory before, with them open, and 5 s after they closed.
pub async fn idle_subs(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let sockets = ctx.options.sockets.unwrap_or(10_000);
    with_stack(ctx, ctx.options.instances, async |stack: &Stack| {
        let catalog = seed::catalog(stack.a()).await?;
        let (owner, factory) = owner_and_factory(stack, "load_idle").await?;
        let (_, figurine, cents) = &catalog.figurines[0];
        let orders = seed::sql_orders(&stack.database_url, &owner.id, figurine, *cents, sockets).await?;

        // Warm-up: a few hundred requests and sockets, so that lazy allocations are made.
        let warm = Tracker::new(200, -1);
        let (stop, tasks) = ws::spawn_sockets(stack.b(), &factory, &orders[..200.min(sockets)], 200, 1, &warm, 200);
        warm.wait_first(200, Instant::now() + Duration::from_secs(30)).await;
        ws::close_all(stop, tasks).await;
        let mut client = http::Client::connected(stack.a()).await?;
        for _ in 0..200 {
            client.graphql(None, crate::http_scenarios::FIGURINES, json!({})).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = stack.rss_mib();

        let tracker = Tracker::new(sockets, -1);
        let cpu = CpuWindow::start(&stack.pids());
        let from = Instant::now();
        let (stop, tasks) = ws::spawn_sockets(stack.b(), &factory, &orders, sockets, 1, &tracker, 512);
        let all = tracker.wait_first(sockets, from + FIRST_EVENT_LIMIT).await;
        let usage = cpu.finish();
        let open_secs = tracker.last_first.get().map_or(f64::NAN, |t| (t - from).as_secs_f64());
        let after = stack.rss_mib();
        ws::close_all(stop, tasks).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let closed = stack.rss_mib();

        let per_sub = (after - before) * 1024.0 / sockets as f64;
        let mut outcome = Outcome::new("idle-subs", Figure::new("memory", per_sub, "KiB per subscription"), false);
        outcome.latency = Percentiles::of(&tracker.first_event_latencies());
        outcome.errors = tracker.errors.get();
        outcome.cpu(&usage);
        outcome.server_rss_mib = after;
        outcome.extra("RSS before", before, "MiB");
        outcome.extra("RSS open", after, "MiB");
        outcome.extra("RSS 5 s after close", closed, "MiB");
        outcome.extra("first events", tracker.first_count.get() as f64, "");
        outcome.extra("all open in", open_secs, "s");
        per_server_cpu(&mut outcome, stack, &usage);
        if !all {
            outcome
                .notes
                .push(format!("only {} of {sockets} subscriptions got their first event", tracker.first_count.get()));
        }
        outcome.notes.extend(tracker.first_errors.borrow().iter().map(|e| format!("subscriber error: {e}")));
        Ok(outcome)
    })
    .await
}

/// `storm`: 10,000 sockets with 10 `orderStatus` subscriptions each, on distinct orders,
/// opened at once (at most 1,000 handshakes in flight); the side query's p99 before and
/// during, and the servers' peak memory.
pub async fn storm(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    const ALONE: Duration = Duration::from_secs(5);
    let sockets = ctx.options.sockets.unwrap_or(10_000);
    let per_socket = ctx.options.per_socket.unwrap_or(10);
    let subscriptions = sockets * per_socket;
    with_stack(ctx, ctx.options.instances, async |stack: &Stack| {
        let catalog = seed::catalog(stack.a()).await?;
        let (owner, factory) = owner_and_factory(stack, "load_storm").await?;
        let (_, figurine, cents) = &catalog.figurines[0];
        let seeding = Instant::now();
        let orders = seed::sql_orders(&stack.database_url, &owner.id, figurine, *cents, subscriptions).await?;
        let seed_secs = seeding.elapsed().as_secs_f64();

        let stop_probe = Rc::new(Cell::new(false));
        let probe = side_probe(stack.a(), stop_probe.clone(), ALONE + FIRST_EVENT_LIMIT + Duration::from_secs(30));
        let alone_from = Instant::now();
        tokio::time::sleep(ALONE).await;

        let peak = Rc::new(Cell::new(stack.rss_mib()));
        let sampling = Rc::new(Cell::new(true));
        let sampler = {
            let (peak, sampling, pids) = (peak.clone(), sampling.clone(), stack.pids());
            tokio::task::spawn_local(async move {
                while sampling.get() {
                    let rss: f64 =
                        pids.iter().map(|&pid| crate::server::rss_kib(pid).unwrap_or(0) as f64 / 1024.0).sum();
                    peak.set(peak.get().max(rss));
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            })
        };
        let tracker = Tracker::new(subscriptions, -1);
        let cpu = CpuWindow::start(&stack.pids());
        let storm_from = Instant::now();
        let (stop, tasks) = ws::spawn_sockets(stack.b(), &factory, &orders, sockets, per_socket, &tracker, 1_000);
        let all = tracker.wait_first(subscriptions, storm_from + FIRST_EVENT_LIMIT).await;
        let storm_to = Instant::now();
        let usage = cpu.finish();
        sampling.set(false);
        let _ = sampler.await;
        stop_probe.set(true);
        let (samples, side_errors) = probe.await.context("the side probe panicked")??;
        let acked = tracker.acked.get();
        ws::close_all(stop, tasks).await;

        let (alone, alone_failed) = side_p99(&samples, alone_from, storm_from);
        let (during, during_failed) = side_p99(&samples, storm_from, storm_to);
        let took = match (all, tracker.last_first.get()) {
            (true, Some(last)) => (last - storm_from).as_secs_f64(),
            _ => FIRST_EVENT_LIMIT.as_secs_f64(),
        };
        let mut outcome = Outcome::new("storm", Figure::new("time", took, "s until all first events"), false);
        outcome.latency = Percentiles::of(&tracker.first_event_latencies());
        outcome.errors = tracker.errors.get() + alone_failed + during_failed;
        outcome.cpu(&usage);
        outcome.server_rss_mib = peak.get();
        outcome.extra("first events", tracker.first_count.get() as f64, "");
        outcome.extra("subscriptions", subscriptions as f64, "");
        outcome.extra("sockets acked", acked as f64, "");
        outcome.extra("peak RSS", peak.get(), "MiB");
        outcome.extra("side p99 before", alone, "ms");
        outcome.extra("side p99 during", during, "ms");
        outcome.extra("side ratio", during / alone, "x");
        outcome.extra("SQL seed", seed_secs, "s");
        per_server_cpu(&mut outcome, stack, &usage);
        if !all {
            outcome.notes.push(format!(
                "only {} of {subscriptions} subscriptions got their first event within {FIRST_EVENT_LIMIT:?}",
                tracker.first_count.get()
            ));
        }
        outcome.notes.extend(tracker.first_errors.borrow().iter().map(|e| format!("subscriber error: {e}")));
        outcome.notes.extend(side_errors.into_iter().map(|e| format!("side query error: {e}")));
        Ok(outcome)
    })
    .await
}
