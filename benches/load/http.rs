//! The HTTP load generator: persistent HTTP/1.1 connections (hyper's client connection
//! over a TcpStream, one task per connection), a closed loop and an open loop.
//!
//! Everything runs on the bench's single-threaded runtime inside a `LocalSet`, so the
//! client uses at most one core and its tasks share state through `Rc`.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::report::{histogram, record};
use crate::server::{CpuUsage, CpuWindow};

/// An answer: status, content type and the whole body.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

impl Reply {
    /// 200 and no `errors` member: what a client counts as success.
    pub fn ok(&self) -> bool {
        self.status == StatusCode::OK && !contains(&self.body, b"\"errors\"")
    }

    /// The start of the body, for error reports.
    pub fn excerpt(&self) -> String {
        let end = self.body.len().min(300);
        format!("HTTP {}: {}", self.status.as_u16(), String::from_utf8_lossy(&self.body[..end]))
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::task::spawn_local(async move {
            let _ = connection.await;
        });
        Ok(Conn { sender, host: HeaderValue::from_str(&addr.to_string())? })
    }

    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
        token: Option<&HeaderValue>,
    ) -> anyhow::Result<Reply> {
        let mut builder = Request::builder().method(method.clone()).uri(path).header(HOST, self.host.clone());
        if method == Method::POST {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(token) = token {
            builder = builder.header(AUTHORIZATION, token.clone());
        }
        let request = builder.body(Full::new(body))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply { status: parts.status, content_type: parts.headers.get(CONTENT_TYPE).cloned(), body })
    }

    pub async fn post(&mut self, body: Bytes, token: Option<&HeaderValue>) -> anyhow::Result<Reply> {
        self.request(Method::POST, "/graphql", body, token).await
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        self.request(Method::GET, path, Bytes::new(), None).await
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

/// A connection that reconnects after a failure (the failure itself is the caller's error).
pub struct Client {
    addr: SocketAddr,
    conn: Option<Conn>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr, conn: None }
    }

    pub async fn connected(addr: SocketAddr) -> anyhow::Result<Client> {
        Ok(Client { addr, conn: Some(Conn::connect(addr).await?) })
    }

    pub async fn post(&mut self, body: Bytes, token: Option<&HeaderValue>) -> anyhow::Result<Reply> {
        if self.conn.as_ref().is_none_or(Conn::is_closed) {
            self.conn = Some(Conn::connect(self.addr).await?);
        }
        let conn = self.conn.as_mut().context("a connection")?;
        match conn.post(body, token).await {
            Ok(reply) => Ok(reply),
            Err(err) => {
                self.conn = None;
                Err(err)
            }
        }
    }

    /// A GraphQL request whose answer must be 200 and JSON; returns the JSON (errors and all).
    pub async fn graphql(
        &mut self,
        token: Option<&HeaderValue>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let reply = self.post(body(query, variables), token).await?;
        if reply.status != StatusCode::OK {
            bail!("{}", reply.excerpt());
        }
        serde_json::from_slice(&reply.body).with_context(|| reply.excerpt())
    }
}

/// The JSON body of a GraphQL request.
pub fn body(query: &str, variables: Value) -> Bytes {
    Bytes::from(json!({"query": query, "variables": variables}).to_string())
}

pub fn bearer(token: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {token}")).expect("a token is a valid header value")
}

/// Builds request `seq` of worker `worker`: the body and the Authorization header.
pub type MakeRequest = Rc<dyn Fn(usize, u64) -> (Bytes, Option<HeaderValue>)>;

/// What a closed loop measured in its window (after the warm-up).
pub struct LoopStats {
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    pub window: Duration,
    /// The measured window, on the client's clock.
    pub from: Instant,
    pub to: Instant,
    pub usage: CpuUsage,
    /// Server RSS at the end of the window, MiB.
    pub rss_mib: f64,
}

impl LoopStats {
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
}

/// A closed loop: `connections` workers, each with its own keep-alive connection, each
/// sending its next request as soon as the previous answer arrived, for `warmup +
/// duration`. Only requests sent after the warm-up and answered before the end count.
#[derive(Clone, Copy)]
pub struct ClosedLoop {
    pub addr: SocketAddr,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

impl ClosedLoop {
    /// Runs it; measures the CPU of `pids` over the window and `rss` at its end.
    pub async fn run(
        &self,
        pids: &[u32],
        rss: &dyn Fn() -> f64,
        make: MakeRequest,
        check: Rc<dyn Fn(&Reply) -> bool>,
    ) -> anyhow::Result<LoopStats> {
        let ClosedLoop { addr, connections, warmup, duration } = *self;
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            clients.push(Client::connected(addr).await?);
        }
        let start = Instant::now();
        let warm_end = start + warmup;
        let end = warm_end + duration;
        let mut workers = Vec::with_capacity(connections);
        for (worker, mut client) in clients.into_iter().enumerate() {
            let (make, check) = (make.clone(), check.clone());
            workers.push(tokio::task::spawn_local(async move {
                let mut latency = histogram();
                let (mut ok, mut errors, mut first_errors) = (0u64, 0u64, Vec::new());
                let mut seq = 0u64;
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let (body, token) = make(worker, seq);
                    seq += 1;
                    let result = client.post(body, token.as_ref()).await;
                    let done = Instant::now();
                    let counted = sent >= warm_end && done <= end;
                    let failure = match result {
                        Ok(reply) if check(&reply) => {
                            if counted {
                                ok += 1;
                                record(&mut latency, done - sent);
                            }
                            None
                        }
                        Ok(reply) => Some(reply.excerpt()),
                        Err(err) => {
                            // Do not spin on a refused connection.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            Some(format!("{err:#}"))
                        }
                    };
                    if let Some(message) = failure {
                        if counted {
                            errors += 1;
                            if first_errors.len() < 3 {
                                first_errors.push(message);
                            }
                        }
                    }
                }
                (latency, ok, errors, first_errors)
            }));
        }
        tokio::time::sleep_until(warm_end.into()).await;
        let cpu = CpuWindow::start(pids);
        tokio::time::sleep_until(end.into()).await;
        let usage = cpu.finish();
        let rss_mib = rss();
        let mut stats = LoopStats {
            latency: histogram(),
            ok: 0,
            errors: 0,
            first_errors: Vec::new(),
            window: duration,
            from: warm_end,
            to: end,
            usage,
            rss_mib,
        };
        for worker in workers {
            let (latency, ok, errors, first_errors) = worker.await.context("a load worker panicked")?;
            stats.latency.add(&latency).context("merge histograms")?;
            stats.ok += ok;
            stats.errors += errors;
            stats.first_errors.extend(first_errors.into_iter().take(3usize.saturating_sub(stats.first_errors.len())));
        }
        Ok(stats)
    }
}

/// One request of an open loop.
#[derive(Clone, Debug)]
pub struct Sample {
    pub index: usize,
    pub scheduled: Instant,
    pub done: Instant,
    pub ok: bool,
}

impl Sample {
    /// From the scheduled send time to the answer (no coordinated omission).
    pub fn latency(&self) -> Duration {
        self.done.saturating_duration_since(self.scheduled)
    }
}

/// Checks answer `index` received at the given instant; true if it is a success.
pub type CheckReply = Rc<dyn Fn(usize, &Reply, Instant) -> bool>;

/// An open loop: request `i` is due at `start + i / rate`, whether or not earlier ones
/// were answered; a due request waits for the first of `connections` connections that is
/// free (in order of the schedule). Stops after `count` requests or when `stop` is set.
pub struct OpenLoop {
    pub addr: SocketAddr,
    pub connections: usize,
    pub start: Instant,
    pub rate: f64,
    pub count: usize,
    pub stop: Rc<Cell<bool>>,
}

impl OpenLoop {
    pub async fn run(
        self,
        make: Rc<dyn Fn(usize) -> (Bytes, Option<HeaderValue>)>,
        check: CheckReply,
    ) -> anyhow::Result<(Vec<Sample>, Vec<String>)> {
        let OpenLoop { addr, connections, start, rate, count, stop } = self;
        let mut clients = Vec::with_capacity(connections);
        for _ in 0..connections {
            clients.push(Client::connected(addr).await?);
        }
        let next = Rc::new(Cell::new(0usize));
        let mut workers = Vec::with_capacity(connections);
        for mut client in clients {
            let (next, stop, make, check) = (next.clone(), stop.clone(), make.clone(), check.clone());
            workers.push(tokio::task::spawn_local(async move {
                let (mut samples, mut errors) = (Vec::new(), Vec::new());
                loop {
                    let index = next.get();
                    if index >= count || stop.get() {
                        break;
                    }
                    next.set(index + 1);
                    let scheduled = start + Duration::from_secs_f64(index as f64 / rate);
                    tokio::time::sleep_until(scheduled.into()).await;
                    if stop.get() {
                        break;
                    }
                    let (body, token) = make(index);
                    let result = client.post(body, token.as_ref()).await;
                    let done = Instant::now();
                    let ok = match result {
                        Ok(reply) => {
                            let ok = check(index, &reply, done);
                            if !ok && errors.len() < 3 {
                                errors.push(reply.excerpt());
                            }
                            ok
                        }
                        Err(err) => {
                            if errors.len() < 3 {
                                errors.push(format!("{err:#}"));
                            }
                            false
                        }
                    };
                    samples.push(Sample { index, scheduled, done, ok });
                }
                (samples, errors)
            }));
        }
        let (mut samples, mut errors) = (Vec::new(), Vec::new());
        for worker in workers {
            let (s, e) = worker.await.context("an open-loop worker panicked")?;
            samples.extend(s);
            errors.extend(e);
        }
        samples.sort_by_key(|s| s.index);
        errors.truncate(5);
        Ok((samples, errors))
    }
}

/// The latencies of the samples scheduled in `[from, to)`, and how many of them failed.
pub fn window(samples: &[Sample], from: Instant, to: Instant) -> (Histogram<u64>, u64) {
    let mut latency = histogram();
    let mut failed = 0;
    for sample in samples.iter().filter(|s| s.scheduled >= from && s.scheduled < to) {
        if sample.ok {
            record(&mut latency, sample.latency());
        } else {
            failed += 1;
        }
    }
    (latency, failed)
}
