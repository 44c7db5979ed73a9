//! `me`, `register`, `login`.

pub mod inputs;
pub mod types;

use async_graphql::{Context, Object, Result};

use self::inputs::{LoginInput, RegisterInput};
use self::types::{AuthPayload, User};
use super::context::{client_address, principal, state};
use super::guards::AuthenticatedGuard;
use crate::error::AppError;
use crate::services::accounts;

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The logged-in account.
    #[graphql(guard = "AuthenticatedGuard")]
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let principal = principal(ctx)?;
        let account = accounts::find(&state(ctx)?.db, principal.user_id)
            .await?
            .ok_or(AppError::Unauthenticated("your account no longer exists"))?;
        Ok(User(account))
    }
}

#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates a CUSTOMER account and returns a token for it at once.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let state = state(ctx)?;
        let session = accounts::sign_up(&state.db, &state.hasher, &state.tokens, input.parse()?).await?;
        Ok(session.into())
    }

    /// Exchanges a username (or email) and password for a token. Repeated failures for one
    /// username from one client address are throttled with RATE_LIMITED and
    /// `extensions.retryAfter` seconds; the same name from another address is not.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let state = state(ctx)?;
        let client = client_address(ctx)?.group();
        let session = accounts::log_in(
            &state.db,
            &state.hasher,
            &state.throttle,
            &state.tokens,
            &input.username,
            &input.password,
            client,
        )
        .await?;
        Ok(session.into())
    }
}
