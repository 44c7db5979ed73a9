//! Who is calling. The HTTP and WebSocket layers authenticate (turn a bearer token into a
//! [`Caller`]); resolvers authorize (ask the caller for what they need).
//!
//! A bad token is kept as [`Caller::Rejected`] rather than dropped to anonymous: an operation
//! that needs a user then fails with the precise reason ("token expired"), while public
//! operations such as `login` still work for a client holding a stale header (GraphiQL users
//! keep theirs across sessions), which is the only way for them to get a new token.

use std::net::{IpAddr, Ipv6Addr};

use uuid::Uuid;

use crate::domain::Role;
use crate::error::AppError;
use crate::services::tokens::TokenError;

/// An authenticated account, as its token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Authenticated(Principal),
    Rejected(TokenError),
}

impl Caller {
    /// The principal, or `UNAUTHENTICATED` saying why there is none.
    pub fn require(&self) -> Result<Principal, AppError> {
        match self {
            Caller::Authenticated(principal) => Ok(*principal),
            Caller::Anonymous => {
                Err(AppError::Unauthenticated("you must be logged in: send Authorization: Bearer <token>"))
            }
            Caller::Rejected(TokenError::Expired) => {
                Err(AppError::Unauthenticated("your token has expired; log in again"))
            }
            Caller::Rejected(TokenError::Invalid) => {
                Err(AppError::Unauthenticated("your token is invalid; log in again"))
            }
        }
    }

    /// The principal if it is FACTORY or ADMIN, `FORBIDDEN` for customers.
    pub fn require_staff(&self) -> Result<Principal, AppError> {
        let principal = self.require()?;
        if principal.role.is_staff() {
            Ok(principal)
        } else {
            Err(AppError::Forbidden("only the factory or an administrator may do that"))
        }
    }
}

/// Extracts the token from an `Authorization` header value: `Bearer <token>`, scheme in any case.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The client's address, as the HTTP layer works it out (`TRUSTED_PROXIES` decides
/// whether `X-Forwarded-For` counts): what the login throttle and the socket caps count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    /// The unit a limit counts: an IPv4 address, or the /64 network of an IPv6 one (a
    /// single host is routinely given a whole /64, so counting its addresses one by one
    /// would count nothing). IPv4-mapped IPv6 addresses count as their IPv4 address.
    pub fn group(self) -> IpAddr {
        match self.0 {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let [a, b, c, d, ..] = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_extracted_whatever_the_scheme_case() {
        assert_eq!(bearer_token("Bearer abc.def"), Some("abc.def"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn customers_are_not_staff() {
        let customer = Caller::Authenticated(Principal { user_id: Uuid::nil(), role: Role::Customer });
        assert_eq!(customer.require_staff().unwrap_err().code(), "FORBIDDEN");
        assert_eq!(Caller::Anonymous.require_staff().unwrap_err().code(), "UNAUTHENTICATED");
        assert_eq!(Caller::Rejected(TokenError::Expired).require().unwrap_err().code(), "UNAUTHENTICATED");
    }
}
