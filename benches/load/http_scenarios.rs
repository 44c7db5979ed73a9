//! The request/response scenarios: `ceiling`, `figurines`, `quote`, `place-order`, `logins`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::Ctx;
use crate::http::{self, ClosedLoop, Conn, LoopStats, OpenLoop, Reply};
use crate::report::{Figure, Outcome, Percentiles};
use crate::seed;
use crate::server::{self, Stack};

pub const FIGURINES: &str = "{ figurines { id name unitPrice { cents } } }";
const CONNECTIONS: usize = 64;

/// The side query of `storm` and `logins`: `figurines`, open loop at this rate.
pub const SIDE_RATE: f64 = 20.0;
const SIDE_CONNECTIONS: usize = 4;

fn figurines_body() -> Bytes {
    http::body(FIGURINES, json!({}))
}

/// The figures every closed-loop scenario prints.
fn closed_outcome(name: &str, unit: &'static str, stats: &LoopStats) -> Outcome {
    let mut outcome = Outcome::new(name, Figure::new("throughput", stats.per_second(), unit), true);
    outcome.latency = Percentiles::of(&stats.latency);
    outcome.errors = stats.errors;
    outcome.cpu(&stats.usage);
    outcome.server_rss_mib = stats.rss_mib;
    outcome.extra("requests", stats.ok as f64, "");
    outcome.notes.extend(stats.first_errors.iter().map(|e| format!("first errors: {e}")));
    outcome
}

fn closed_loop(ctx: &Ctx<'_>, addr: std::net::SocketAddr, connections: usize) -> ClosedLoop {
    ClosedLoop { addr, connections, warmup: ctx.options.warmup, duration: ctx.options.duration }
}

/// Runs `body` against a fresh stack, then removes the stack whatever happened.
pub async fn with_stack<T>(
    ctx: &Ctx<'_>,
    instances: usize,
    body: impl AsyncFnOnce(&Stack) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let stack = Stack::start(ctx.services, &ctx.launch(instances)).await?;
    let result = body(&stack).await;
    if result.is_err() {
        for server in &stack.servers {
            eprintln!("--- last lines of {}:\n{}", server.label, server.log_tail());
        }
    }
    stack.cleanup().await;
    result
}

/// `ceiling`: the same client and load as `figurines`, against a trivial server that
/// answers the bytes the real server answered.
pub async fn ceiling(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    let reply = with_stack(ctx, 1, async |stack: &Stack| {
        let mut conn = Conn::connect(stack.a()).await?;
        let reply = conn.post(figurines_body(), None).await?;
        if !reply.ok() {
            bail!("figurines failed: {}", reply.excerpt());
        }
        Ok(reply)
    })
    .await?;
    let content_type =
        reply.content_type.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("application/json").to_owned();
    let (mut ceiling, body_file) = server::start_ceiling(&reply.body, &content_type).await?;
    let expected = reply.body.clone();
    let body = figurines_body();
    let stats = closed_loop(ctx, ceiling.addr, CONNECTIONS)
        .run(
            &[ceiling.pid],
            &|| ceiling.rss_mib(),
            Rc::new(move |_, _| (body.clone(), None)),
            Rc::new(move |reply: &Reply| reply.status == 200 && reply.body == expected),
        )
        .await;
    ceiling.stop().await;
    let _ = std::fs::remove_file(&body_file);
    let _ = std::fs::remove_file(&ceiling.log);
    let stats = stats?;
    let mut outcome = closed_outcome("ceiling", "req/s", &stats);
    outcome.extra("body bytes", reply.body.len() as f64, "B");
    Ok(outcome)
}

/// `figurines`: the catalog query, 64 keep-alive connections, closed loop.
pub async fn figurines(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    with_stack(ctx, 1, async |stack: &Stack| {
        let body = figurines_body();
        let stats = closed_loop(ctx, stack.a(), CONNECTIONS)
            .run(&stack.pids(), &|| stack.rss_mib(), Rc::new(move |_, _| (body.clone(), None)), Rc::new(Reply::ok))
            .await?;
        Ok(closed_outcome("figurines", "req/s", &stats))
    })
    .await
}

/// `quote`: three figurine lines, 30 figurines in all (BULK_10).
pub async fn quote(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    with_stack(ctx, 1, async |stack: &Stack| {
        let catalog = seed::catalog(stack.a()).await?;
        let quantities = [12, 10, 8];
        let items: Vec<Value> =
            (0..3).map(|i| json!({"figurineId": catalog.figurine(i), "quantity": quantities[i]})).collect();
        let body = http::body(
            "query($input: OrderInput!) { quote(input: $input) { total { cents } discount { cents } lines { total { cents } } } }",
            json!({"input": {"items": items}}),
        );
        // The discount must be there: a quote without it priced the wrong tier.
        let check = Rc::new(|reply: &Reply| reply.ok() && !http::contains(&reply.body, b"\"discount\":{\"cents\":0}"));
        let stats = closed_loop(ctx, stack.a(), CONNECTIONS)
            .run(&stack.pids(), &|| stack.rss_mib(), Rc::new(move |_, _| (body.clone(), None)), check)
            .await?;
        Ok(closed_outcome("quote", "req/s", &stats))
    })
    .await
}

/// Lines of a cart: (catalog index, quantity).
type Lines = &'static [(usize, i64)];

/// Carts of `place-order`: figurine lines and package lines. Figurine totals 3, 12, 30
/// and 60 hit no tier, BULK_5, BULK_10 and BULK_15.
const CARTS: &[(Lines, Lines)] = &[
    (&[(0, 3)], &[]),
    (&[(1, 8), (2, 4)], &[]),
    (&[(0, 10), (3, 10), (4, 10)], &[]),
    (&[(5, 20), (6, 20), (7, 10), (8, 10)], &[]),
    (&[(2, 2), (4, 1)], &[(0, 1)]),
    (&[(1, 12)], &[(1, 2)]),
    (&[], &[(2, 1)]),
    (&[(3, 30)], &[(0, 1), (2, 1)]),
    (&[(6, 25), (7, 25), (9, 10)], &[(1, 1)]),
];

const PLACE_ORDER: &str =
    "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status version total { cents } } }";

/// `place-order`: 50 customers, 32 workers with a connection each, closed loop.
pub async fn place_order(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    const CUSTOMERS: usize = 50;
    const WORKERS: usize = 32;
    with_stack(ctx, 1, async |stack: &Stack| {
        let catalog = seed::catalog(stack.a()).await?;
        let customers = seed::register(stack.a(), "load_buyer", CUSTOMERS).await?;
        let tokens: Vec<_> = customers.iter().map(seed::Account::bearer).collect();
        let carts: Vec<Value> = CARTS
            .iter()
            .map(|(items, packages)| {
                let items: Vec<Value> =
                    items.iter().map(|(f, q)| json!({"figurineId": catalog.figurine(*f), "quantity": q})).collect();
                let packages: Vec<Value> =
                    packages.iter().map(|(p, q)| json!({"packageId": catalog.package(*p), "quantity": q})).collect();
                json!({"items": items, "packages": packages})
            })
            .collect();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let make = Rc::new(move |worker: usize, seq: u64| {
            let seq = seq as usize;
            let mut input = carts[(worker * 7 + seq) % carts.len()].clone();
            if (worker + seq) % 2 == 0 {
                input["idempotencyKey"] = json!(format!("{}-{worker}-{seq}", &run[..12]));
            }
            let token = tokens[(worker + seq * WORKERS) % tokens.len()].clone();
            (http::body(PLACE_ORDER, json!({"input": input})), Some(token))
        });
        let stats = closed_loop(ctx, stack.a(), WORKERS)
            .run(
                &stack.pids(),
                &|| stack.rss_mib(),
                make,
                Rc::new(|reply: &Reply| reply.ok() && http::contains(&reply.body, b"\"PENDING\"")),
            )
            .await?;
        let mut outcome = closed_outcome("place-order", "orders/s", &stats);
        outcome.extra("customers", CUSTOMERS as f64, "");
        Ok(outcome)
    })
    .await
}

/// The side query, `figurines` at [`SIDE_RATE`], open loop, until `stop` (bounded to
/// `max` in time). It runs on a client thread of its own: during `storm` the main client
/// thread is busy with 10,000 sockets, and a probe sharing that thread measured its own
/// queueing (p99 near 700 ms while the server logged under 40 ms for the same requests).
/// At 20 requests a second it adds nothing measurable to the client's CPU.
pub fn side_probe(
    addr: std::net::SocketAddr,
    stop: Rc<Cell<bool>>,
    max: Duration,
) -> tokio::task::JoinHandle<anyhow::Result<(Vec<http::Sample>, Vec<String>)>> {
    let stopped = Arc::new(AtomicBool::new(false));
    let (done, result) = tokio::sync::oneshot::channel();
    let flag = stopped.clone();
    let start = Instant::now();
    let spawned = std::thread::Builder::new().name("side-probe".into()).spawn(move || {
        let outcome = tokio::runtime::Builder::new_current_thread().enable_all().build().map(|runtime| {
            tokio::task::LocalSet::new().block_on(&runtime, async move {
                let stop = Rc::new(Cell::new(false));
                let watch = stop.clone();
                tokio::task::spawn_local(async move {
                    while !flag.load(Ordering::Acquire) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    watch.set(true);
                });
                let body = figurines_body();
                let probe = OpenLoop {
                    addr,
                    connections: SIDE_CONNECTIONS,
                    start,
                    rate: SIDE_RATE,
                    count: (SIDE_RATE * max.as_secs_f64()) as usize,
                    stop,
                };
                probe.run(Rc::new(move |_| (body.clone(), None)), Rc::new(|_, reply: &Reply, _| reply.ok())).await
            })
        });
        let _ = done.send(outcome.map_err(anyhow::Error::from).and_then(|result| result));
    });
    tokio::task::spawn_local(async move {
        spawned.context("starting the side probe's thread")?;
        while !stop.get() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stopped.store(true, Ordering::Release);
        result.await.context("the side probe's thread ended early")?
    })
}

/// p99 of the side query scheduled in `[from, to)`, and its failures.
pub fn side_p99(samples: &[http::Sample], from: Instant, to: Instant) -> (f64, u64) {
    let (histogram, failed) = http::window(samples, from, to);
    (Percentiles::of(&histogram).map_or(f64::NAN, |p| p.p99), failed)
}

/// `logins`: 16 closed-loop `login` mutations with the right password over a few
/// accounts; the side query's p99 alone (5 s) and during them.
pub async fn logins(ctx: &Ctx<'_>) -> anyhow::Result<Outcome> {
    const ACCOUNTS: usize = 4;
    const WORKERS: usize = 16;
    const ALONE: Duration = Duration::from_secs(5);
    with_stack(ctx, 1, async |stack: &Stack| {
        let accounts = seed::register(stack.a(), "load_login", ACCOUNTS).await?;
        let bodies: Vec<Bytes> = accounts
            .iter()
            .map(|a| http::body(seed::LOGIN, json!({"input": {"username": a.username, "password": seed::PASSWORD}})))
            .collect();
        let stop = Rc::new(Cell::new(false));
        let total = ALONE + ctx.options.warmup + ctx.options.duration + Duration::from_secs(30);
        let probe = side_probe(stack.a(), stop.clone(), total);
        let alone_from = Instant::now();
        tokio::time::sleep(ALONE).await;
        let alone_to = Instant::now();
        let make =
            Rc::new(move |worker: usize, seq: u64| (bodies[(worker + seq as usize) % bodies.len()].clone(), None));
        let stats = closed_loop(ctx, stack.a(), WORKERS)
            .run(
                &stack.pids(),
                &|| stack.rss_mib(),
                make,
                Rc::new(|reply: &Reply| reply.ok() && http::contains(&reply.body, b"\"token\"")),
            )
            .await;
        stop.set(true);
        let (samples, side_errors) = probe.await.context("the side probe panicked")??;
        let stats = stats?;
        let (alone, alone_failed) = side_p99(&samples, alone_from, alone_to);
        let (during, during_failed) = side_p99(&samples, stats.from, stats.to);
        let mut outcome = closed_outcome("logins", "logins/s", &stats);
        outcome.errors += alone_failed + during_failed;
        outcome.extra("side p99 alone", alone, "ms");
        outcome.extra("side p99 during", during, "ms");
        outcome.extra("side ratio", during / alone, "x");
        outcome.extra("accounts", ACCOUNTS as f64, "");
        outcome.notes.extend(side_errors.into_iter().map(|e| format!("side query error: {e}")));
        Ok(outcome)
    })
    .await
}
