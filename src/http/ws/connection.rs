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

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Request, Response, ServerError};
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket};
use chrono::{DateTime, Utc};
use futures::stream::{self, AbortHandle, BoxStream, SelectAll};
use futures::{SinkExt, StreamExt};
use rand::Rng;
use tokio::time::{Instant, Interval, MissedTickBehavior, Sleep};
use tracing::Instrument;

use super::close::{Fatal, close, close_for};
use super::credentials::Credential;
use super::liveness::Liveness;
use super::protocol::{ClientMessage, Malformed, Protocol, ServerMessage};
use super::registry::Admission;
use super::{CLOSE_GRACE, MAX_OPERATIONS_PER_SOCKET, MAX_OUTGOING_MESSAGE_BYTES, SEND_TIMEOUT};
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
}

/// Serves one upgraded socket until it ends; its place in the registry goes with it.
pub async fn serve(mut socket: WebSocket, setup: Setup, admission: Admission) {
    let protocol = setup.protocol;
    let span = tracing::debug_span!("websocket", protocol = protocol.name());
    async move {
        let _admission = admission;
        let mut connection = Connection::new(setup);
        let end = connection.run(&mut socket).await;
        // Operations end with the socket, whatever the close handshake does.
        drop(connection);
        match end {
            End::Left => tracing::debug!("the client left"),
            End::ClientClosed => {
                // Lets tungstenite write its answer to the client's close frame.
                let _ = tokio::time::timeout(CLOSE_GRACE, socket.close()).await;
                tracing::debug!("the client closed the socket");
            }
            End::TooSlow => tracing::info!("closed a WebSocket whose client does not read what it is sent"),
            End::Terminated => close(&mut socket, 1000, "Normal Closure", None).await,
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

/// One running operation.
struct Running {
    /// Tells this operation's results from those of an earlier one under the same id.
    generation: u64,
    abort: AbortHandle,
    /// Whether a result was sent: an error before any is sent as `error`, not `next`.
    answered: bool,
}

/// What an operation's stream yields: `(id, generation, Some(result))`, then once
/// `(id, generation, None)` when it ends by itself.
type Item = (Arc<str>, u64, Option<Response>);

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

    async fn on_client(
        &mut self,
        socket: &mut WebSocket,
        message: Option<Result<Message, axum::Error>>,
    ) -> Result<(), End> {
        match message {
            None => Err(End::Left),
            Some(Err(err)) => Err(read_error(&err)),
            Some(Ok(Message::Text(text))) => match ClientMessage::parse(self.protocol, text.as_str()) {
                Ok(message) => self.on_message(socket, message).await,
                Err(Malformed(why)) => Err(End::Fatal(Fatal::Malformed(why))),
            },
            Some(Ok(Message::Binary(_))) => {
                Err(End::Fatal(Fatal::Malformed("Invalid message: binary frames are not part of the protocol".into())))
            }
            // WebSocket-level pings are answered by tungstenite itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
            Some(Ok(Message::Close(_))) => Err(End::ClientClosed),
        }
    }

    async fn on_message(&mut self, socket: &mut WebSocket, message: ClientMessage) -> Result<(), End> {
        match message {
            ClientMessage::ConnectionInit { payload } => {
                let Some((keys, header)) = self.pending.take() else {
                    return Err(End::Fatal(Fatal::TooManyInits));
                };
                let credential = Credential::from_init_payload(payload.as_ref()).or(header);
                let (caller, expires_at) =
                    credential.authenticate(&keys).map_err(|err| End::Fatal(Fatal::Forbidden(err)))?;
                self.caller = caller;
                self.arm_expiry(expires_at);
                self.keepalive.reset();
                send(socket, self.protocol, ServerMessage::ConnectionAck).await?;
                if self.protocol == Protocol::LegacyWs {
                    // subscriptions-transport-ws clients start their keep-alive watch on
                    // the first `ka`, so it follows the ack at once.
                    send(socket, self.protocol, ServerMessage::KeepAlive).await?;
                }
                Ok(())
            }
            ClientMessage::Ping { payload } => {
                send(socket, self.protocol, ServerMessage::Pong { payload: payload.as_ref() }).await
            }
            ClientMessage::Pong => Ok(()),
            ClientMessage::Subscribe { id, request } => {
                if self.pending.is_some() {
                    return Err(End::Fatal(Fatal::Unauthorized));
                }
                if self.operations.contains_key(&id) {
                    return Err(End::Fatal(Fatal::DuplicateId(id)));
                }
                if self.operations.len() >= MAX_OPERATIONS_PER_SOCKET {
                    let error = bad_input(format!(
                        "too many operations on one connection (at most {MAX_OPERATIONS_PER_SOCKET}); complete some first or open another connection"
                    ));
                    return send(socket, self.protocol, ServerMessage::Error { id: &id, errors: &[error] }).await;
                }
                self.start(id, *request);
                Ok(())
            }
            ClientMessage::Complete { id } => {
                if let Some(operation) = self.operations.remove(&id) {
                    operation.abort.abort();
                }
                Ok(())
            }
            ClientMessage::Terminate => Err(End::Terminated),
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

    fn start(&mut self, id: String, request: Request) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let key: Arc<str> = Arc::from(id.as_str());
        let end = (key.clone(), generation, None);
        let results = self
            .schema
            .execute_stream(request.data(self.caller.clone()).data(self.client))
            .map(move |result| (key.clone(), generation, Some(result)))
            .chain(stream::once(futures::future::ready(end)));
        let (results, abort) = stream::abortable(results);
        self.results.push(results.boxed());
        self.operations.insert(id, Running { generation, abort, answered: false });
    }

    async fn on_result(
        &mut self,
        socket: &mut WebSocket,
        id: Arc<str>,
        generation: u64,
        result: Option<Response>,
    ) -> Result<(), End> {
        let Some(operation) = self.operations.get_mut(&*id).filter(|op| op.generation == generation) else {
            // Stopped by the client meanwhile.
            return Ok(());
        };
        let Some(response) = result else {
            self.operations.remove(&*id);
            return send(socket, self.protocol, ServerMessage::Complete { id: &id }).await;
        };
        // Failed before producing anything (parse, validation, NOT_FOUND at subscribe…):
        // one `error` message, and no `complete` after it.
        let failed_before_any_result =
            !operation.answered && response.data == async_graphql::Value::Null && !response.errors.is_empty();
        operation.answered = true;
        let text = if failed_before_any_result {
            None
        } else {
            Some(ServerMessage::Next { id: &id, payload: &response }.render(self.protocol))
                .filter(|text| text.len() <= MAX_OUTGOING_MESSAGE_BYTES)
        };
        match text {
            Some(text) => send_text(socket, text).await,
            None => {
                if let Some(operation) = self.operations.remove(&*id) {
                    operation.abort.abort();
                }
                let too_large;
                let errors = if failed_before_any_result {
                    &response.errors[..]
                } else {
                    too_large = [bad_input(format!(
                        "the result is larger than {} KiB, too large to send over the WebSocket; run this operation over HTTP",
                        MAX_OUTGOING_MESSAGE_BYTES / 1024
                    ))];
                    &too_large[..]
                };
                send(socket, self.protocol, ServerMessage::Error { id: &id, errors }).await
            }
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

/// A `BAD_USER_INPUT` error not tied to a field.
fn bad_input(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
    error
}

/// What a failed read means. axum hides tungstenite's error type (of a version this crate
/// does not depend on), so its message is what tells them apart; the tests pin both.
fn read_error(err: &axum::Error) -> End {
    let text = err.to_string();
    if text.starts_with("Space limit exceeded") {
        End::Fatal(Fatal::MessageTooBig)
    } else if text.starts_with("WebSocket protocol error") || text.starts_with("UTF-8 encoding error") {
        End::Fatal(Fatal::FramingError)
    } else {
        End::Left
    }
}
