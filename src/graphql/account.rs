//! `me`, `register`, `login`.

use async_graphql::{Context, Object, Result};

use super::context::{caller, client_address, state};
use super::inputs::{LoginInput, RegisterInput};
use super::types::{AuthPayload, User};
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::AppError;
use crate::services::accounts::{self, Account};
use crate::state::AppState;

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The logged-in account.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        let principal = caller(ctx).require()?;
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
        let account = accounts::register(&state.db, &state.hasher, input.parse()?, Role::Customer).await?;
        Ok(auth_payload(state, account)?)
    }

    /// Exchanges a username (or email) and password for a token. Repeated failures for one
    /// username from one client address are throttled with RATE_LIMITED and
    /// `extensions.retryAfter` seconds; the same name from another address is not.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let state = state(ctx)?;
        let client = client_address(ctx)?.group();
        let account =
            accounts::authenticate(&state.db, &state.hasher, &state.throttle, &input.username, &input.password, client)
                .await?;
        Ok(auth_payload(state, account)?)
    }
}

pub fn auth_payload(state: &AppState, account: Account) -> Result<AuthPayload, AppError> {
    let issued = state
        .tokens
        .issue(Principal { user_id: account.id, role: account.role })
        .map_err(AppError::internal("signing a token"))?;
    Ok(AuthPayload { token: issued.token, expires_at: issued.expires_at.into(), user: User(account) })
}
