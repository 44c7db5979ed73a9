//! The account's output types.

use async_graphql::{Enum, ID, Object, SimpleObject};

use crate::domain;
use crate::graphql::scalars::DateTime;
use crate::services::accounts;

/// What an account may do.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::Role")]
pub enum Role {
    /// A shopper: orders for themself and sees only their own orders.
    Customer,
    /// The factory worker: sees every order and moves it through production.
    Factory,
    /// Staff: may see and move any order.
    Admin,
}

pub struct User(pub accounts::Account);

/// An account. The password hash never leaves the server.
#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique, compared ignoring case.
    async fn username(&self) -> &str {
        &self.0.username
    }

    /// Unique; stored lowercased.
    async fn email(&self) -> &str {
        &self.0.email
    }

    /// The default shipping address of this account's orders.
    async fn address(&self) -> &str {
        &self.0.address
    }

    async fn role(&self) -> Role {
        self.0.role.into()
    }

    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }
}

/// A fresh access token and the account it is for.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send it as `Authorization: Bearer <token>` (HTTP) or in `connection_init` (WebSocket).
    pub token: String,
    /// When the token stops working; log in again before then.
    pub expires_at: DateTime,
    pub user: User,
}

impl From<accounts::Session> for AuthPayload {
    fn from(session: accounts::Session) -> Self {
        AuthPayload { token: session.token, expires_at: session.expires_at.into(), user: User(session.account) }
    }
}
