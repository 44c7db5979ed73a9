//! The account's input objects.

use async_graphql::InputObject;

use crate::error::AppError;
use crate::services::accounts::NewAccount;

/// A new customer account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 3-32 characters of letters, digits, `_`, `.` and `-`; unique ignoring case.
    pub username: String,
    /// A valid address; stored lowercased; unique.
    pub email: String,
    /// 8-128 characters with a lower-case letter, an upper-case letter, a digit and a symbol.
    pub password: String,
    /// Postal address, 1-200 characters; the default shipping address.
    pub address: String,
}

impl RegisterInput {
    pub fn parse(self) -> Result<NewAccount, AppError> {
        NewAccount::parse(&self.username, &self.email, &self.password, &self.address)
    }
}

#[derive(InputObject)]
pub struct LoginInput {
    /// The username (any letter case) or the email address.
    pub username: String,
    pub password: String,
}
