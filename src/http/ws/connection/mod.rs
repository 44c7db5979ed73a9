//! One socket, from the upgrade to the close: the connection state machine of both
//! subprotocols, its operations, its timers.
//!
//! Everything a socket does runs in the one task axum spawned for it: client messages,
//! results of its operations, its deadline (init, anonymous idleness, token expiry, the
//! instance's shutdown), keep-alives and the liveness check. Operations
//! are polled in place (a [`SelectAll`] of their result streams) rather than each in a
//! task of its own, so an idle subscription is a parked stream and nothing else, and a
//! socket that cannot send (its client is slow) stops pulling results instead of queueing
//! them: the event hub's bounded channels then overflow into a re-read from the database
//! for that subscription alone, and nobody else waits.
//!
//! - this module: the socket's task, its state and its timers (the deadline, keep-alives);
//! - [`messages`]: what the client sends (`connection_init`, operations, pings, leaving);
//! - [`operations`]: the running operations and their results.

mod messages;
mod operations;

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket};
use chrono::{DateTime, Utc};
use futures::stream::{BoxStream, SelectAll};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tracing::Instrument;

use self::operations::{Item, Running};
use super::close::{close, close_for};
use super::credentials::Credential;
use super::liveness::Liveness;
use super::protocol::{self, Fatal, Protocol, ServerMessage};
use super::registry::Admission;
use super::{CLOSE_GRACE, SEND_TIMEOUT};
use crate::auth::tokens::TokenKeys;
use crate::auth::{Caller, ClientAddress};
use crate::graphql::Engine;
use crate::http::lifecycle::PhaseWatch;

/// What a socket starts with, taken from the upgrade request and the settings.
pub struct Setup {
    pub protocol: Protocol,
    pub schema: Engine,
    /// To verify the token at `connection_init`; dropped once it is verified.
    pub keys: TokenKeys,
    /// The upgrade request's `Authorization` header, used when the init payload has none.
    pub header: Credential,
    /// Who is on the other end, for the operations' context (the login throttle).
    pub client: ClientAddress,
    /// Also how long an anonymous socket may have nothing running.
    pub init_timeout: Duration,
    pub keepalive: Duration,
    /// Tells when the instance closes its sockets.
    pub phase: PhaseWatch,
    /// The window within which this socket closes, at random, once told to.
    pub close_spread: Duration,
    /// The trace context of the upgrade request's span (which continued the client's
    /// `traceparent` header, if any), while traces are on.
    pub traceparent: Option<String>,
}

/// Serves one upgraded socket until it ends; its place in the registry goes with it.
pub async fn serve(mut socket: WebSocket, setup: Setup, admission: Admission) {
    let protocol = setup.protocol;
    let span = tracing::debug_span!("websocket", protocol = protocol.name());
    async move {
        let _admission = admission;
        let _open = crate::metrics::socket_open(protocol.name());
        let mut connection = Connection::new(setup);
        let end = connection.run(&mut socket).await;
        // Operations end with the socket, whatever the close handshake does.
        drop(connection);
        crate::metrics::socket_closed(match &end {
            End::Left | End::TooSlow => "1006",
            End::ClientClosed => "client",
            End::Terminated => protocol::code_label(protocol::NORMAL_CLOSURE_CODE),
            End::Fatal(fatal) => protocol::code_label(fatal.code()),
        });
        match end {
            End::Left => tracing::debug!("the client left"),
            End::ClientClosed => {
                // Lets tungstenite write its answer to the client's close frame.
                let _ = tokio::time::timeout(CLOSE_GRACE, socket.close()).await;
                tracing::debug!("the client closed the socket");
            }
            End::TooSlow => tracing::info!("closed a WebSocket whose client does not read what it is sent"),
            End::Terminated => {
                close(&mut socket, protocol::NORMAL_CLOSURE_CODE, protocol::NORMAL_CLOSURE_REASON, None).await
            }
            End::Fatal(fatal) => close_for(&mut socket, protocol, &fatal).await,
        }
    }
    .instrument(span)
    .await;
}

/// Why a socket ends.
#[derive(Debug)]
enum End {
    /// The connection is gone.
    Left,
    /// The legacy client said `connection_terminate`: a normal close.
    Terminated,
    /// The client sent a close frame.
    ClientClosed,
    /// A message could not be handed to the kernel within [`SEND_TIMEOUT`]: the client is
    /// not reading. Nothing more can be written, so the socket is just dropped.
    TooSlow,
    /// The server closes the socket with a code.
    Fatal(Fatal),
}

/// What the deadline timer means at the moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// `connection_init` must arrive before it.
    Init,
    /// An anonymous socket with nothing running is closed then.
    AnonymousIdle,
    /// The token expires then.
    TokenExpiry,
    /// The instance is stopping: this socket's moment to close.
    GoingAway,
}

impl Deadline {
    fn fatal(self) -> Fatal {
        match self {
            Deadline::Init => Fatal::InitTimeout,
            Deadline::AnonymousIdle => Fatal::AnonymousIdle,
            Deadline::TokenExpiry => Fatal::TokenExpired,
            Deadline::GoingAway => Fatal::GoingAway,
        }
    }
}

struct Connection {
    protocol: Protocol,
    schema: Engine,
    /// Until `connection_init`: the keys and the header's credential. `None` once the
    /// connection is acknowledged.
    pending: Option<(TokenKeys, Credential)>,
    caller: Caller,
    client: ClientAddress,
    operations: HashMap<String, Running>,
    results: SelectAll<BoxStream<'static, Item>>,
    next_generation: u64,
    /// One timer per socket for whichever [`Deadline`] is next.
    deadline: Pin<Box<Sleep>>,
    deadline_means: Option<Deadline>,
    init_timeout: Duration,
    keepalive: Interval,
    liveness: Liveness,
    phase: PhaseWatch,
    close_spread: Duration,
    /// Whether the socket knows that the instance is stopping (its deadline says when).
    going_away: bool,
    /// The trace context the socket's operations continue unless they bring their own:
    /// the `connection_init` payload's `traceparent`, else the upgrade request's.
    traceparent: Option<String>,
}

impl Connection {
    fn new(setup: Setup) -> Self {
        let mut keepalive = tokio::time::interval_at(Instant::now() + setup.keepalive, setup.keepalive);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Connection {
            protocol: setup.protocol,
            schema: setup.schema,
            pending: Some((setup.keys, setup.header)),
            caller: Caller::Anonymous,
            client: setup.client,
            operations: HashMap::new(),
            results: SelectAll::new(),
            next_generation: 0,
            deadline: Box::pin(tokio::time::sleep(setup.init_timeout)),
            deadline_means: Some(Deadline::Init),
            init_timeout: setup.init_timeout,
            keepalive,
            liveness: Liveness::at_init(),
            phase: setup.phase,
            close_spread: setup.close_spread,
            going_away: false,
            traceparent: setup.traceparent,
        }
    }

    /// Serves the socket until it ends. The order of the branches is deliberate: the
    /// deadline (init timeout, token expiry, …) is never postponed, and results go before
    /// new client messages, so that a new operation is polled before anything the client
    /// sent after it is handled. An operation that registers with the event hub without
    /// waiting on the database (`myOrderEvents`) is therefore live once the client has the
    /// result of any operation it sent afterwards; the tests use that as a barrier.
    async fn run(&mut self, socket: &mut WebSocket) -> End {
        loop {
            let acknowledged = self.pending.is_none();
            let step = tokio::select! {
                biased;
                () = &mut self.deadline, if self.deadline_means.is_some() => {
                    Err(End::Fatal(self.deadline_means.map_or(Fatal::InitTimeout, Deadline::fatal)))
                }
                () = self.phase.closing(), if !self.going_away => {
                    self.go_away();
                    Ok(())
                }
                Some((id, generation, result)) = self.results.next() => {
                    self.on_result(socket, id, generation, result).await
                }
                message = socket.recv() => {
                    self.liveness.heard();
                    self.on_client(socket, message).await
                }
                _ = self.keepalive.tick(), if acknowledged => self.keep_alive(socket).await,
            };
            self.watch_idleness();
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Closes a silent socket; otherwise pings it twice over: the subprotocol's keep-alive
    /// for the client's own watch, a WebSocket ping frame for the liveness check.
    async fn keep_alive(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        if self.liveness.silent_too_long() {
            return Err(End::Fatal(Fatal::KeepAliveTimeout));
        }
        send_frame(socket, Message::Ping(Bytes::new())).await?;
        send(socket, self.protocol, ServerMessage::KeepAlive).await
    }

    /// Picks this socket's moment to close within the spread, so that the instance's
    /// clients reconnect over the whole window rather than all at once. A token expiring
    /// sooner still closes the socket first, with its own code.
    fn go_away(&mut self) {
        self.going_away = true;
        let spread_ms = u64::try_from(self.close_spread.as_millis()).unwrap_or(u64::MAX);
        let at = Instant::now() + Duration::from_millis(rand::thread_rng().gen_range(0..=spread_ms));
        let expires_sooner = self.deadline_means == Some(Deadline::TokenExpiry) && self.deadline.deadline() <= at;
        if !expires_sooner {
            self.deadline.as_mut().reset(at);
            self.deadline_means = Some(Deadline::GoingAway);
        }
    }

    /// An anonymous socket may stay while it runs something, and for the init timeout after
    /// its last operation ends: all it can do is public queries and mutations, each over
    /// at once, and a client that means to subscribe must come with a token anyway.
    fn watch_idleness(&mut self) {
        if self.pending.is_some() || self.caller != Caller::Anonymous {
            return;
        }
        match (self.deadline_means, self.operations.is_empty()) {
            (None, true) => {
                self.deadline.as_mut().reset(Instant::now() + self.init_timeout);
                self.deadline_means = Some(Deadline::AnonymousIdle);
            }
            (Some(Deadline::AnonymousIdle), false) => self.deadline_means = None,
            _ => {}
        }
    }

    /// Closes the socket when the token expires, whatever the client is doing (or when the
    /// instance closes it, if that comes first).
    fn arm_expiry(&mut self, expires_at: Option<DateTime<Utc>>) {
        match expires_at {
            Some(at) => {
                let at = Instant::now() + (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                if !(self.going_away && self.deadline.deadline() <= at) {
                    self.deadline.as_mut().reset(at);
                    self.deadline_means = Some(Deadline::TokenExpiry);
                }
            }
            None if self.going_away => {}
            None => self.deadline_means = None,
        }
    }
}

async fn send(socket: &mut WebSocket, protocol: Protocol, message: ServerMessage<'_>) -> Result<(), End> {
    send_text(socket, message.render(protocol)).await
}

/// Sends one message and waits until the kernel has it: at most one message per socket is
/// ever buffered in user space. A client that reads nothing for [`SEND_TIMEOUT`] is
/// dropped rather than buffered for.
async fn send_text(socket: &mut WebSocket, text: String) -> Result<(), End> {
    send_frame(socket, Message::Text(text.into())).await
}

async fn send_frame(socket: &mut WebSocket, message: Message) -> Result<(), End> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Left),
        Err(_) => Err(End::TooSlow),
    }
}
