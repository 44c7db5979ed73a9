//! Subscribers: GraphQL over WebSocket (`graphql-transport-ws`), one task per socket,
//! each with one or more `orderStatus` subscriptions, recording every event it receives
//! on the client's monotonic clock.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub const ORDER_STATUS: &str = "subscription($o: ID!) { orderStatus(orderId: $o) { orderId status version } }";

/// How many loopback source addresses the sockets are spread over (127.0.0.2 and up), so
/// that ten thousand sockets never run short of ephemeral ports.
const SOURCE_ADDRESSES: usize = 16;

/// How long a socket waits for `connection_ack`.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

pub fn source_address(socket: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (socket % SOURCE_ADDRESSES) as u8))
}

/// What every subscriber saw, by subscription index.
pub struct Tracker {
    /// Every `next` of each subscription: (version, when it arrived).
    pub events: RefCell<Vec<Vec<(i64, Instant)>>>,
    /// When each subscription's socket started connecting.
    pub started: RefCell<Vec<Option<Instant>>>,
    /// Subscriptions that got at least one event, and when the last of those first events came.
    pub first_count: Cell<usize>,
    pub last_first: Cell<Option<Instant>>,
    /// Subscriptions that got `final_version`.
    pub final_count: Cell<usize>,
    final_version: i64,
    /// `error` messages, GraphQL errors in `next`, sockets that failed or closed early.
    pub errors: Cell<u64>,
    pub first_errors: RefCell<Vec<String>>,
    /// Sockets acknowledged by the server.
    pub acked: Cell<usize>,
}

impl Tracker {
    pub fn new(subscriptions: usize, final_version: i64) -> Rc<Tracker> {
        Rc::new(Tracker {
            events: RefCell::new(vec![Vec::new(); subscriptions]),
            started: RefCell::new(vec![None; subscriptions]),
            first_count: Cell::new(0),
            last_first: Cell::new(None),
            final_count: Cell::new(0),
            final_version,
            errors: Cell::new(0),
            first_errors: RefCell::new(Vec::new()),
            acked: Cell::new(0),
        })
    }

    fn error(&self, message: String) {
        self.errors.set(self.errors.get() + 1);
        let mut first = self.first_errors.borrow_mut();
        if first.len() < 5 {
            first.push(message);
        }
    }

    fn event(&self, subscription: usize, version: i64, at: Instant) {
        let mut events = self.events.borrow_mut();
        let Some(list) = events.get_mut(subscription) else { return };
        if list.is_empty() {
            self.first_count.set(self.first_count.get() + 1);
            self.last_first.set(Some(at));
        }
        if version == self.final_version && !list.iter().any(|(v, _)| *v == version) {
            self.final_count.set(self.final_count.get() + 1);
        }
        list.push((version, at));
    }

    /// Time from each subscription's socket start to its first event.
    pub fn first_event_latencies(&self) -> hdrhistogram::Histogram<u64> {
        let mut histogram = crate::report::histogram();
        let (events, started) = (self.events.borrow(), self.started.borrow());
        for (list, started) in events.iter().zip(started.iter()) {
            if let (Some((_, at)), Some(started)) = (list.first(), started) {
                crate::report::record(&mut histogram, at.saturating_duration_since(*started));
            }
        }
        histogram
    }

    /// Waits until `count` subscriptions got their first event, or until `deadline`.
    /// Returns whether they all did.
    pub async fn wait_first(&self, count: usize, deadline: Instant) -> bool {
        wait_for(|| self.first_count.get() >= count, deadline).await
    }

    /// Waits until `count` subscriptions got the final version, or until `deadline`.
    pub async fn wait_final(&self, count: usize, deadline: Instant) -> bool {
        wait_for(|| self.final_count.get() >= count, deadline).await
    }
}

async fn wait_for(done: impl Fn() -> bool, deadline: Instant) -> bool {
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Connects a socket from `source`, negotiates graphql-transport-ws and waits for the ack.
async fn open(addr: SocketAddr, source: IpAddr, token: &str) -> anyhow::Result<WebSocketStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0)).with_context(|| format!("bind {source}"))?;
    let stream = socket.connect(addr).await.with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    let mut request = format!("ws://{addr}/graphql").into_client_request()?;
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    // Small buffers: ten thousand sockets with tungstenite's 128 KiB read buffers would
    // cost the client over a gigabyte.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(0);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .context("WebSocket upgrade")?;
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::text(init.to_string())).await?;
    let ack = tokio::time::timeout(ACK_TIMEOUT, async {
        loop {
            let message = ws.next().await.context("closed before connection_ack")??;
            let Message::Text(text) = message else {
                if let Message::Close(frame) = message {
                    bail!("closed before connection_ack: {frame:?}");
                }
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match value["type"].as_str() {
                Some("connection_ack") => return Ok(()),
                Some("ping") => ws.send(Message::text(json!({"type": "pong"}).to_string())).await?,
                _ => bail!("unexpected message before connection_ack: {text}"),
            }
        }
    })
    .await;
    match ack {
        Ok(result) => result.map(|()| ws),
        Err(_) => bail!("no connection_ack within {ACK_TIMEOUT:?}"),
    }
}

/// One socket of subscribers.
pub struct Socket {
    pub addr: SocketAddr,
    pub source: IpAddr,
    pub token: Rc<str>,
    /// (subscription index in the tracker, order id); the operation id is the position.
    pub subscriptions: Vec<(usize, String)>,
    pub tracker: Rc<Tracker>,
    /// Set to true: close the socket.
    pub stop: watch::Receiver<bool>,
    /// Limits the handshakes in flight (connect, upgrade, ack).
    pub gate: Rc<Semaphore>,
}

impl Socket {
    /// Connects, subscribes and records events until told to stop. Every failure is an
    /// error in the tracker; a socket closed by the server before `stop` is one too.
    pub async fn run(mut self) {
        let permit = self.gate.acquire().await;
        let started = Instant::now();
        {
            let mut starts = self.tracker.started.borrow_mut();
            for (index, _) in &self.subscriptions {
                if let Some(slot) = starts.get_mut(*index) {
                    *slot = Some(started);
                }
            }
        }
        let mut ws = match open(self.addr, self.source, &self.token).await {
            Ok(ws) => ws,
            Err(err) => {
                self.tracker.error(format!("socket: {err:#}"));
                return;
            }
        };
        drop(permit);
        self.tracker.acked.set(self.tracker.acked.get() + 1);
        for (operation, (_, order)) in self.subscriptions.iter().enumerate() {
            let subscribe = json!({"id": operation.to_string(), "type": "subscribe", "payload": {"query": ORDER_STATUS, "variables": {"o": order}}});
            if let Err(err) = ws.feed(Message::text(subscribe.to_string())).await {
                self.tracker.error(format!("subscribe: {err}"));
                return;
            }
        }
        if let Err(err) = ws.flush().await {
            self.tracker.error(format!("subscribe: {err}"));
            return;
        }
        let mut stopped = *self.stop.borrow();
        while !stopped {
            tokio::select! {
                message = ws.next() => match message {
                    Some(Ok(Message::Text(text))) => self.handle(&mut ws, &text).await,
                    Some(Ok(Message::Close(frame))) => {
                        self.tracker.error(format!("socket closed by the server: {frame:?}"));
                        return;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        self.tracker.error(format!("socket: {err}"));
                        return;
                    }
                    None => {
                        self.tracker.error("socket closed by the server".into());
                        return;
                    }
                },
                changed = self.stop.changed() => stopped = changed.is_err() || *self.stop.borrow(),
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }

    async fn handle(&self, ws: &mut WebSocketStream<TcpStream>, text: &str) {
        let at = Instant::now();
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(_) => return self.tracker.error(format!("not JSON: {text}")),
        };
        let operation = value["id"].as_str().and_then(|id| id.parse::<usize>().ok());
        let subscription = operation.and_then(|op| self.subscriptions.get(op)).map(|(index, _)| *index);
        match value["type"].as_str() {
            Some("next") => {
                if value["payload"]["errors"].is_array() {
                    return self.tracker.error(format!("GraphQL error: {}", value["payload"]["errors"]));
                }
                match (subscription, value["payload"]["data"]["orderStatus"]["version"].as_i64()) {
                    (Some(index), Some(version)) => self.tracker.event(index, version, at),
                    _ => self.tracker.error(format!("unexpected next: {text}")),
                }
            }
            Some("error") => self.tracker.error(format!("error message: {text}")),
            Some("ping") => {
                let _ = ws.send(Message::text(json!({"type": "pong"}).to_string())).await;
            }
            _ => {}
        }
    }
}

/// Opens `sockets` sockets from varied source addresses, subscription `i` of socket `s`
/// being subscription `s * per_socket + i` on `orders[(s * per_socket + i) % orders.len()]`.
/// Returns the stop switch and the socket tasks.
pub fn spawn_sockets(
    addr: SocketAddr,
    token: &str,
    orders: &[String],
    sockets: usize,
    per_socket: usize,
    tracker: &Rc<Tracker>,
    handshakes_in_flight: usize,
) -> (watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>) {
    let (stop, stopped) = watch::channel(false);
    let token: Rc<str> = Rc::from(token);
    let gate = Rc::new(Semaphore::new(handshakes_in_flight));
    let tasks = (0..sockets)
        .map(|socket| {
            let subscriptions = (0..per_socket)
                .map(|i| {
                    let index = socket * per_socket + i;
                    (index, orders[index % orders.len()].clone())
                })
                .collect();
            let socket = Socket {
                addr,
                source: source_address(socket),
                token: token.clone(),
                subscriptions,
                tracker: tracker.clone(),
                stop: stopped.clone(),
                gate: gate.clone(),
            };
            tokio::task::spawn_local(socket.run())
        })
        .collect();
    (stop, tasks)
}

/// Tells every socket to close and waits (bounded) for them to finish.
pub async fn close_all(stop: watch::Sender<bool>, tasks: Vec<tokio::task::JoinHandle<()>>) {
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), futures::future::join_all(tasks)).await;
}
