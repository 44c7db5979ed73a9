//! Why the server closes a socket, with which close code, and the closing handshake.
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

use axum::extract::ws::{CloseFrame, Message, WebSocket};

use super::CLOSE_GRACE;
use super::protocol::{Protocol, ServerMessage};
use crate::auth::tokens::TokenError;

/// The reasons the server closes a socket, each with its close code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fatal {
    /// 4400: a message the subprotocol does not define, or not well-formed.
    Malformed(String),
    /// 4401: an operation before `connection_init`.
    Unauthorized,
    /// 4403: the token at `connection_init` is bad.
    Forbidden(TokenError),
    /// 4403: the socket's token has expired; the client logs in again, reconnects and
    /// resumes with `afterVersion`.
    TokenExpired,
    /// 4408: no `connection_init` in time.
    InitTimeout,
    /// 4408: an anonymous socket with nothing running for the init timeout. Every
    /// subscription needs a token, so such a socket has nothing to wait for; it would only
    /// hold a place.
    AnonymousIdle,
    /// 4408: nothing received for two keep-alive intervals (see [`super::liveness`]).
    KeepAliveTimeout,
    /// 4409: an operation id that is already running.
    DuplicateId(String),
    /// 4429: a second `connection_init`.
    TooManyInits,
    /// 1001: the instance is stopping.
    GoingAway,
    /// 1009: a message over the size limit.
    MessageTooBig,
    /// 1002: broken WebSocket framing (unmasked frames, bad UTF-8 in a text frame, …).
    FramingError,
}

impl Fatal {
    pub fn code(&self) -> u16 {
        match self {
            Fatal::Malformed(_) => 4400,
            Fatal::Unauthorized => 4401,
            Fatal::Forbidden(_) | Fatal::TokenExpired => 4403,
            Fatal::InitTimeout | Fatal::AnonymousIdle | Fatal::KeepAliveTimeout => 4408,
            Fatal::DuplicateId(_) => 4409,
            Fatal::TooManyInits => 4429,
            Fatal::GoingAway => 1001,
            Fatal::MessageTooBig => 1009,
            Fatal::FramingError => 1002,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Fatal::Malformed(why) => why.clone(),
            Fatal::Unauthorized => "Unauthorized".into(),
            Fatal::Forbidden(TokenError::Expired) => "Forbidden: token expired".into(),
            Fatal::Forbidden(TokenError::Invalid) => "Forbidden: token invalid".into(),
            Fatal::TokenExpired => "Token expired".into(),
            Fatal::InitTimeout => "Connection initialisation timeout".into(),
            Fatal::AnonymousIdle => "Anonymous connection idle".into(),
            Fatal::KeepAliveTimeout => "Keep-alive timeout".into(),
            Fatal::DuplicateId(id) => format!("Subscriber for {id} already exists"),
            Fatal::TooManyInits => "Too many initialisation requests".into(),
            Fatal::GoingAway => "Server shutting down".into(),
            Fatal::MessageTooBig => "Message too big".into(),
            Fatal::FramingError => "WebSocket protocol error".into(),
        }
    }

    /// Whether a legacy client is told the reason in a `connection_error` first: for what
    /// its user did with GraphQL, not for framing, silence or a restart.
    fn tells_legacy_client(&self) -> bool {
        !matches!(self, Fatal::MessageTooBig | Fatal::FramingError | Fatal::KeepAliveTimeout | Fatal::GoingAway)
    }
}

/// Closes the socket for `fatal`, the way `protocol` expects.
pub async fn close_for(socket: &mut WebSocket, protocol: Protocol, fatal: &Fatal) {
    let reason = fatal.reason();
    tracing::debug!(code = fatal.code(), %reason, "closing the socket");
    let tell = (protocol == Protocol::LegacyWs && fatal.tells_legacy_client())
        .then(|| ServerMessage::ConnectionError { message: &reason }.render(protocol));
    close(socket, fatal.code(), &reason, tell).await;
}

/// Sends `first` if any, then closes with `code`, then waits briefly for the client's close
/// frame: dropping the connection at once could reset it before the client has read ours.
pub async fn close(socket: &mut WebSocket, code: u16, reason: &str, first: Option<String>) {
    if let Some(message) = first
        && !matches!(tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Text(message.into()))).await, Ok(Ok(())))
    {
        return;
    }
    let frame = CloseFrame { code, reason: close_reason(reason).into() };
    if let Ok(Ok(())) = tokio::time::timeout(CLOSE_GRACE, socket.send(Message::Close(Some(frame)))).await {
        let _ = tokio::time::timeout(CLOSE_GRACE, async { while let Some(Ok(_)) = socket.recv().await {} }).await;
    }
}

/// A close frame's reason is at most 123 bytes (RFC 6455 section 5.5: 125 with the code).
fn close_reason(reason: &str) -> &str {
    const MAX: usize = 123;
    if reason.len() <= MAX {
        return reason;
    }
    let mut end = MAX;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_follow_graphql_transport_ws() {
        assert_eq!(Fatal::Malformed("x".into()).code(), 4400);
        assert_eq!(Fatal::Unauthorized.code(), 4401);
        assert_eq!(Fatal::Forbidden(TokenError::Invalid).code(), 4403);
        assert_eq!(Fatal::TokenExpired.code(), 4403);
        assert_eq!(Fatal::InitTimeout.code(), 4408);
        assert_eq!(Fatal::DuplicateId("a".into()).reason(), "Subscriber for a already exists");
        assert_eq!(Fatal::DuplicateId("a".into()).code(), 4409);
        assert_eq!(Fatal::TooManyInits.code(), 4429);
    }

    #[test]
    fn the_server_side_ends_are_codes_clients_reconnect_after() {
        for fatal in [Fatal::AnonymousIdle, Fatal::KeepAliveTimeout] {
            assert_eq!(fatal.code(), 4408, "{fatal:?}");
        }
        assert_eq!(Fatal::GoingAway.code(), 1001);
        assert!(!Fatal::GoingAway.tells_legacy_client() && !Fatal::KeepAliveTimeout.tells_legacy_client());
        assert!(Fatal::AnonymousIdle.tells_legacy_client());
    }

    #[test]
    fn close_reasons_fit_a_close_frame() {
        assert_eq!(close_reason("short"), "short");
        let long = "é".repeat(100);
        let cut = close_reason(&long);
        assert!(cut.len() <= 123 && long.starts_with(cut) && cut.len() >= 121);
    }
}
