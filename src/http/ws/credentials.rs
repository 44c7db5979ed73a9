//! Who is on a socket: the bearer token of the `connection_init` payload, or else of the
//! upgrade request's `Authorization` header (contract section 4, Accounts).
//!
//! Browsers cannot set headers on a WebSocket, so GraphiQL and Playground send their
//! headers editor's content as the `connection_init` payload; that is why the payload
//! wins over the header. A token that is present but bad refuses the connection (4403):
//! unlike HTTP, where a public operation still runs for a stale header, a socket lives
//! on, and keeping a known-bad credential open for its lifetime helps nobody.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::auth::tokens::{TokenError, TokenKeys};
use crate::auth::{Caller, bearer_token};

/// What the client presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Nothing: the socket is anonymous, and operations that need a user fail with
    /// `UNAUTHENTICATED`.
    Absent,
    /// A token to verify.
    Token(String),
    /// Something that is not a bearer token (`Basic …`, a number, an empty string).
    Malformed,
}

impl Credential {
    /// The upgrade request's `Authorization: Bearer <token>` header.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        match headers.get(AUTHORIZATION) {
            None => Credential::Absent,
            Some(value) => value.to_str().ok().and_then(bearer_token).map_or(Credential::Malformed, Credential::token),
        }
    }

    /// The `connection_init` payload's `Authorization` or `authorization` ("Bearer <token>")
    /// or `token` (the token, with or without "Bearer "); the first of them present wins.
    /// A key set to `null` counts as absent.
    pub fn from_init_payload(payload: Option<&Map<String, Value>>) -> Self {
        let Some(payload) = payload else { return Credential::Absent };
        for key in ["Authorization", "authorization"] {
            match payload.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::String(value)) => {
                    return bearer_token(value).map_or(Credential::Malformed, Credential::token);
                }
                Some(_) => return Credential::Malformed,
            }
        }
        match payload.get("token") {
            None | Some(Value::Null) => Credential::Absent,
            Some(Value::String(value)) => match bearer_token(value) {
                Some(token) => Credential::token(token),
                None if !value.trim().is_empty() && !value.trim().contains(' ') => Credential::token(value.trim()),
                None => Credential::Malformed,
            },
            Some(_) => Credential::Malformed,
        }
    }

    /// `self`, or `fallback` when nothing was presented here.
    pub fn or(self, fallback: Credential) -> Credential {
        match self {
            Credential::Absent => fallback,
            presented => presented,
        }
    }

    fn token(token: &str) -> Self {
        Credential::Token(token.to_owned())
    }

    /// The caller this credential makes, with the moment the socket must close (the
    /// token's expiry; `None` for an anonymous socket).
    pub fn authenticate(&self, keys: &TokenKeys) -> Result<(Caller, Option<DateTime<Utc>>), TokenError> {
        match self {
            Credential::Absent => Ok((Caller::Anonymous, None)),
            Credential::Malformed => Err(TokenError::Invalid),
            Credential::Token(token) => {
                keys.verify(token).map(|(principal, expires_at)| (Caller::Authenticated(principal), Some(expires_at)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use secrecy::SecretString;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::auth::Principal;
    use crate::domain::Role;

    fn payload(value: Value) -> Credential {
        Credential::from_init_payload(value.as_object())
    }

    #[test]
    fn the_payload_accepts_three_keys() {
        let token = || Credential::Token("abc.def.ghi".into());
        assert_eq!(payload(json!({"Authorization": "Bearer abc.def.ghi"})), token());
        assert_eq!(payload(json!({"authorization": "bearer abc.def.ghi"})), token());
        assert_eq!(payload(json!({"token": "abc.def.ghi"})), token());
        assert_eq!(payload(json!({"token": "Bearer abc.def.ghi"})), token());
        assert_eq!(payload(json!({"Authorization": null, "token": "abc.def.ghi"})), token());
        assert_eq!(payload(json!({"Authorization": "Bearer abc.def.ghi", "token": "other"})), token());
    }

    #[test]
    fn nothing_is_absent_and_anything_else_is_malformed() {
        assert_eq!(Credential::from_init_payload(None), Credential::Absent);
        assert_eq!(payload(json!({})), Credential::Absent);
        assert_eq!(payload(json!({"X-Other": "1"})), Credential::Absent);
        assert_eq!(payload(json!({"Authorization": "abc.def.ghi"})), Credential::Malformed);
        assert_eq!(payload(json!({"Authorization": "Basic abc"})), Credential::Malformed);
        assert_eq!(payload(json!({"Authorization": 42})), Credential::Malformed);
        assert_eq!(payload(json!({"token": ""})), Credential::Malformed);
        assert_eq!(payload(json!({"token": "Basic abc"})), Credential::Malformed);
    }

    #[test]
    fn the_payload_wins_over_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(Credential::from_headers(&headers), Credential::Absent);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer from.the.header"));
        let header = Credential::from_headers(&headers);
        assert_eq!(header, Credential::Token("from.the.header".into()));
        assert_eq!(payload(json!({})).or(header.clone()), header);
        assert_eq!(payload(json!({"token": "x.y.z"})).or(header), Credential::Token("x.y.z".into()));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Token nope"));
        assert_eq!(Credential::from_headers(&headers), Credential::Malformed);
    }

    #[test]
    fn authentication_yields_the_caller_and_the_expiry() {
        let keys = TokenKeys::new(&SecretString::from("k".repeat(32)), 60);
        let principal = Principal { user_id: Uuid::now_v7(), role: Role::Customer };
        let issued = keys.issue(principal).unwrap();
        let (caller, expires_at) = Credential::Token(issued.token).authenticate(&keys).unwrap();
        assert_eq!(caller, Caller::Authenticated(principal));
        assert_eq!(expires_at, Some(issued.expires_at));
        assert_eq!(Credential::Absent.authenticate(&keys).unwrap(), (Caller::Anonymous, None));
        assert_eq!(Credential::Malformed.authenticate(&keys).unwrap_err(), TokenError::Invalid);
        assert_eq!(Credential::Token("x".into()).authenticate(&keys).unwrap_err(), TokenError::Invalid);
    }
}
