//! Authentication at the HTTP edge: `Authorization: Bearer <token>` to a [`Caller`].

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::auth::tokens::{TokenError, TokenKeys};
use crate::auth::{Caller, bearer_token};

/// No header is anonymous; a header that is not a valid bearer token is `Rejected`, never
/// silently anonymous (see [`crate::auth`]).
pub fn caller_from_headers(headers: &HeaderMap, keys: &TokenKeys) -> Caller {
    let Some(value) = headers.get(AUTHORIZATION) else { return Caller::Anonymous };
    let Some(token) = value.to_str().ok().and_then(bearer_token) else { return Caller::Rejected(TokenError::Invalid) };
    match keys.verify(token) {
        Ok((principal, _expires_at)) => Caller::Authenticated(principal),
        Err(err) => Caller::Rejected(err),
    }
}
