//! What the two subprotocols send, in one place: the messages (what a client may send,
//! parsed strictly in [`client`], and what the server sends, rendered per subprotocol in
//! [`server`]), and the close codes with their reasons ([`close`]).
//!
//! # Messages
//!
//! | meaning | `graphql-transport-ws` | legacy `graphql-ws` |
//! | --- | --- | --- |
//! | client opens the connection | `connection_init` | `connection_init` |
//! | server accepts it | `connection_ack` | `connection_ack` |
//! | server refuses it / a fatal error | close code (4400, 4401, 4403, …) | `connection_error`, then the same close code |
//! | client starts an operation | `subscribe` | `start` |
//! | a result | `next` | `data` |
//! | the operation failed before producing a result | `error` (GraphQL errors array) | `error` (GraphQL errors array) |
//! | the operation is over (server) | `complete` | `complete` |
//! | client stops an operation | `complete` | `stop` |
//! | keep-alive from the server | `ping` (client answers `pong`) | `ka` |
//! | client heartbeat | `ping` -> `pong` | none |
//! | client leaves | close frame | `connection_terminate` |
//!
//! # Close codes
//!
//! | code | reason | when |
//! | --- | --- | --- |
//! | 1000 | `Normal Closure` | the legacy client sent `connection_terminate` |
//! | 1001 | `Server shutting down` | the instance is stopping (after SIGTERM and its drain); reconnect and resume |
//! | 1002 | `WebSocket protocol error` | broken framing (unmasked frames, bad UTF-8 in a text frame, …) |
//! | 1009 | `Message too big` | a message over 64 KiB |
//! | 4400 | `Invalid message: …` | a message the subprotocol does not define, or not well-formed |
//! | 4401 | `Unauthorized` | an operation before `connection_init` |
//! | 4403 | `Forbidden: token …`, `Token expired` | a bad token at `connection_init`; the socket's token expired |
//! | 4408 | `Connection initialisation timeout` | no `connection_init` within `WS_INIT_TIMEOUT_MS` |
//! | 4408 | `Anonymous connection idle` | a socket without a token ran nothing for `WS_INIT_TIMEOUT_MS` |
//! | 4408 | `Keep-alive timeout` | nothing at all received for two `WS_KEEPALIVE_MS` intervals |
//! | 4409 | `Subscriber for <id> already exists` | an operation id that is already running |
//! | 4429 | `Too many initialisation requests` | a second `connection_init` |
//!
//! The 44xx codes are graphql-transport-ws's; the legacy protocol has none of its own, so
//! it gets the same codes, after a `connection_error` message that its clients understand
//! when the reason is about how the client uses GraphQL. The timeouts share 4408 rather than
//! 1011 or a code of their own because clients must reconnect after them: the graphql-ws
//! client retries 4408 and 1001 but gives up on 1011, 4400, 4401, 4409 and 4429.

mod client;
mod close;
mod server;

pub use self::client::{ClientMessage, Malformed};
pub use self::close::{Fatal, NORMAL_CLOSURE_CODE, NORMAL_CLOSURE_REASON, code_label};
pub use self::server::ServerMessage;

/// The subprotocol a socket speaks, chosen from `Sec-WebSocket-Protocol` at the upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`: the graphql-ws library's protocol (GraphiQL, Apollo Client,
    /// urql). <https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>
    TransportWs,
    /// `graphql-ws`: the legacy subscriptions-transport-ws protocol (GraphQL Playground).
    LegacyWs,
}

impl Protocol {
    pub const TRANSPORT_WS: &'static str = "graphql-transport-ws";
    pub const LEGACY_WS: &'static str = "graphql-ws";

    /// The subprotocol names, in the order of preference used when a client offers both.
    pub const NAMES: [&'static str; 2] = [Self::TRANSPORT_WS, Self::LEGACY_WS];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            Self::TRANSPORT_WS => Some(Protocol::TransportWs),
            Self::LEGACY_WS => Some(Protocol::LegacyWs),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => Self::TRANSPORT_WS,
            Protocol::LegacyWs => Self::LEGACY_WS,
        }
    }
}
