//! Why the server closes a socket, and with which close code and reason (the table is in
//! [`super`]).

use crate::auth::tokens::TokenError;

/// 1000, the normal close: the answer to the legacy client's `connection_terminate`.
pub const NORMAL_CLOSURE_CODE: u16 = 1000;
pub const NORMAL_CLOSURE_REASON: &str = "Normal Closure";

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
    /// 4408: nothing received for two keep-alive intervals (see [`crate::http::ws::liveness`]).
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
    pub fn tells_legacy_client(&self) -> bool {
        !matches!(self, Fatal::MessageTooBig | Fatal::FramingError | Fatal::KeepAliveTimeout | Fatal::GoingAway)
    }
}

/// A close code the server sends, as a metric label.
pub fn code_label(code: u16) -> &'static str {
    match code {
        1000 => "1000",
        1001 => "1001",
        1002 => "1002",
        1009 => "1009",
        4400 => "4400",
        4401 => "4401",
        4403 => "4403",
        4408 => "4408",
        4409 => "4409",
        4429 => "4429",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_close_code_has_a_label_of_its_own() {
        let all = [
            Fatal::Malformed(String::new()),
            Fatal::Unauthorized,
            Fatal::Forbidden(TokenError::Invalid),
            Fatal::TokenExpired,
            Fatal::InitTimeout,
            Fatal::AnonymousIdle,
            Fatal::KeepAliveTimeout,
            Fatal::DuplicateId(String::new()),
            Fatal::TooManyInits,
            Fatal::GoingAway,
            Fatal::MessageTooBig,
            Fatal::FramingError,
        ];
        for fatal in all.iter() {
            assert_eq!(code_label(fatal.code()), fatal.code().to_string(), "{fatal:?}");
        }
        assert_eq!(code_label(NORMAL_CLOSURE_CODE), "1000");
    }

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
}
