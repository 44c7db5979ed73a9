//! GraphQL over WebSocket on `/graphql` (contract sections 1 and 4): subscriptions, and
//! any other operation a client chooses to send this way.
//!
//! Both subprotocols are spoken, chosen from the upgrade's `Sec-WebSocket-Protocol`:
//! `graphql-transport-ws` (graphql-ws: GraphiQL, Apollo Client, urql) and the legacy
//! `graphql-ws` (subscriptions-transport-ws: GraphQL Playground). When a client offers
//! both, `graphql-transport-ws` wins. A client that names no subprotocol at all (a
//! hand-rolled one, `websocat`) gets `graphql-transport-ws`; one that names only others is
//! refused with 400 before the upgrade: browsers (and tungstenite) fail a handshake whose
//! answer names none of the subprotocols they offered anyway, and a 400 says why.
//!
//! The protocols are implemented here rather than with async-graphql's handler, whose
//! close codes differ from the graphql-transport-ws specification (it closes a missing
//! `connection_init` with 3008 and a refused one with 1002, where the specification says
//! 4408 and 4403) and which does not close a socket when its token expires.
//!
//! # Layout
//!
//! - [`protocol`]: what both subprotocols send: their messages, parsed strictly and
//!   rendered, and the close codes with their reasons (the whole table).
//! - [`credentials`]: the token from the `connection_init` payload or the upgrade header.
//! - [`connection`]: one socket's state machine, the client's messages, its operations and
//!   its timers.
//! - [`liveness`]: whether the client still answers (WebSocket pings, two intervals).
//! - [`close`]: the closing handshake.
//! - [`registry`]: how many sockets are open, in total and per client address, and the caps.
//! - [`runtime`]: the runtime sockets run on, apart from HTTP requests.
//!
//! # What ends a socket
//!
//! Every socket ends by itself if its client does not use it: no `connection_init` within
//! `WS_INIT_TIMEOUT_MS` (4408); anonymous with nothing running for as long again (4408:
//! every subscription needs a token, so it has nothing to wait for); nothing at all
//! received for two `WS_KEEPALIVE_MS` intervals, not even the automatic answer to a ping
//! frame (4408); its token expiring (4403). After SIGTERM and the drain every socket is
//! closed with 1001 (see [`crate::http::lifecycle`]). [`protocol`] has the whole table.
//!
//! # What a socket costs, and the limits
//!
//! The goal is tens of thousands of open subscriptions per instance, most of them idle
//! for minutes: an idle socket must hold little more than its kernel buffers. axum's
//! defaults (tungstenite's) allocate a 128 KiB read buffer up front per socket (1.3 GB
//! for 10,000 sockets, zero-filled at the first read) and let the write buffer grow
//! without bound. With the figures below, an idle socket holds its 1 KiB read buffer,
//! one task (its future is 3.5 KiB in a debug build) with two timers, and per
//! subscription a parked stream with a broadcast receiver.
//!
//! Measured (resident memory of the server, sockets opened by a separate process, each
//! acknowledged; release build, 5,000 sockets): about 17 KiB per idle socket, and 7 KiB
//! more per `myOrderEvents` subscription, so 10,000 sockets with one subscription each
//! take about 240 MB. The same load with axum's defaults took about 150 KiB per socket
//! (debug build, 3,000 sockets, where these settings took 26 KiB): 1.5 GB for 10,000.

mod close;
mod connection;
mod credentials;
mod liveness;
mod protocol;
mod registry;
mod runtime;

pub use registry::SocketRegistry;
pub use runtime::SocketRuntime;

use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State, WebSocketUpgrade};
use axum::handler::Handler;
use axum::http::header::UPGRADE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minifig_common::telemetry::propagation;

use self::connection::Setup;
use self::credentials::Credential;
use self::protocol::Protocol;
use super::{HttpState, MAX_BODY_BYTES, graphql, rest};
use crate::auth::ClientAddress;

/// Read buffer of a socket, allocated up front. Client messages are small
/// (`connection_init`, `subscribe` with a query of a few hundred bytes, `pong`), so 1 KiB
/// holds any usual one in a single read; a larger message grows the buffer on demand, up
/// to [`MAX_MESSAGE_BYTES`]. Every idle socket holds this buffer, so it is kept small.
pub const READ_BUFFER_BYTES: usize = 1024;

/// How much tungstenite gathers before writing to the kernel. Zero: every message is
/// written at once (each is flushed anyway, and a live event should not wait for others).
pub const WRITE_BUFFER_BYTES: usize = 0;

/// Largest message the server sends. An order event is about 200 bytes; only a large query
/// sent over the socket instead of HTTP could come near this, and it gets an error that
/// says so instead of an unbounded buffer.
pub const MAX_OUTGOING_MESSAGE_BYTES: usize = 256 * 1024;

/// Ceiling of a socket's write buffer: one message of [`MAX_OUTGOING_MESSAGE_BYTES`] plus
/// room for the control frames (pongs, close) tungstenite queues on its own. Messages are
/// sent one at a time and each waits until the kernel takes it, so only a client that
/// stops reading while flooding pings can reach this; its socket then fails and closes.
pub const MAX_WRITE_BUFFER_BYTES: usize = MAX_OUTGOING_MESSAGE_BYTES + 64 * 1024;

/// Largest message (and frame) accepted from a client: the same 64 KiB as an HTTP body,
/// since a `subscribe` carries the same GraphQL request. Larger closes the socket (1009).
pub const MAX_MESSAGE_BYTES: usize = MAX_BODY_BYTES;

/// Operations one socket may run at once. A page shows a handful of live orders; a
/// client with more opens another socket, since connections are otherwise unlimited.
pub const MAX_OPERATIONS_PER_SOCKET: usize = 100;

/// How long one message may take to reach the kernel. A client that reads nothing for this
/// long while the server has results for it is not keeping up: its socket is dropped
/// rather than buffered for, and it reconnects and resumes with `afterVersion`.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing socket waits for the client's close frame, or to send its own.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// `GET /graphql`: a WebSocket upgrade is served here, any other GET is GraphQL over HTTP.
pub async fn get(State(state): State<HttpState>, request: Request) -> Response {
    if !is_websocket_upgrade(request.headers()) {
        return graphql::get.call(request, state).await;
    }
    let (mut parts, _body) = request.into_parts();
    let Some(&client) = parts.extensions.get::<ClientAddress>() else {
        return rest::error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_SERVER_ERROR",
            "internal server error",
        );
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let offered_any = upgrade.requested_protocols().any(|name| !name.is_empty());
    let upgrade = upgrade.protocols(Protocol::NAMES);
    let protocol = match upgrade.selected_protocol() {
        Some(name) => name.to_str().ok().and_then(Protocol::from_name),
        None if !offered_any => Some(Protocol::TransportWs),
        None => None,
    };
    let Some(protocol) = protocol else {
        return rest::error_response(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            "unsupported WebSocket subprotocol: offer graphql-transport-ws or graphql-ws in Sec-WebSocket-Protocol",
        );
    };
    let admission = match state.socket_registry.admit(client) {
        Ok(admission) => admission,
        Err(refusal) => {
            tracing::debug!(?refusal, client = %client.0, "refused a WebSocket upgrade");
            return refusal.into_response();
        }
    };
    let settings = &state.app.settings;
    let setup = Setup {
        protocol,
        schema: state.schema.clone(),
        keys: state.app.tokens.clone(),
        header: Credential::from_headers(&parts.headers),
        client,
        init_timeout: Duration::from_millis(settings.ws_init_timeout_ms),
        keepalive: Duration::from_millis(settings.ws_keepalive_ms),
        phase: state.lifecycle.watch(),
        close_spread: Duration::from_millis(settings.shutdown_close_spread_ms),
        traceparent: propagation::current_traceparent(),
    };
    upgrade
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move { state.sockets.spawn(connection::serve(socket, setup, admission)) })
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers.get(UPGRADE).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"websocket"))
}
