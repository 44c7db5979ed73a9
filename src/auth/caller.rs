//! The caller of one request, as authentication left it, and the two questions
//! authorization asks of it.
//!
//! A bad token is kept as [`Caller::Rejected`] rather than dropped to anonymous: an operation
//! that needs a user then fails with the precise reason ("token expired"), while public
//! operations such as `login` still work for a client holding a stale header (GraphiQL users
//! keep theirs across sessions), which is the only way for them to get a new token.

use super::principal::Principal;
use super::tokens::TokenError;
use crate::error::AppError;

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

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::domain::Role;

    #[test]
    fn customers_are_not_staff() {
        let customer = Caller::Authenticated(Principal { user_id: Uuid::nil(), role: Role::Customer });
        assert_eq!(customer.require_staff().unwrap_err().code(), "FORBIDDEN");
        assert_eq!(Caller::Anonymous.require_staff().unwrap_err().code(), "UNAUTHENTICATED");
        assert_eq!(Caller::Rejected(TokenError::Expired).require().unwrap_err().code(), "UNAUTHENTICATED");
    }
}
