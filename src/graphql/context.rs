//! Typed access to what a resolver may read from the request context. Everything here is
//! put there by the server itself (the schema's data, or every transport for each
//! request), so a missing item is a server fault, `INTERNAL_SERVER_ERROR`, never a client
//! to be treated as nobody.

use std::sync::Arc;

use async_graphql::Context;

use crate::auth::{Caller, ClientAddress, Principal};
use crate::error::AppError;
use crate::services::catalog::Snapshot;
use crate::state::AppState;

pub fn state<'a>(ctx: &Context<'a>) -> Result<&'a AppState, AppError> {
    ctx.data::<AppState>().map_err(|_| AppError::Internal(anyhow::anyhow!("AppState missing from the schema")))
}

/// The caller, as the transport authenticated it. Every transport inserts one, anonymous
/// included (`http::graphql`, `http::ws::connection`); falling back to anonymous here would
/// hide a transport that forgot, and fail open for any rule that anonymous passes.
pub fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller, AppError> {
    ctx.data_opt::<Caller>().ok_or_else(|| AppError::Internal(anyhow::anyhow!("Caller missing from the request")))
}

/// The authenticated principal: for resolvers that act on the caller's own records. Fields
/// that need one also carry [`super::guards::AuthenticatedGuard`] or
/// [`super::guards::StaffGuard`], which fail first with the same error.
pub fn principal(ctx: &Context<'_>) -> Result<Principal, AppError> {
    caller(ctx)?.require()
}

/// The client's address. Every front door puts it in the request; a request built without
/// one is a server fault, not a client that may be counted as nobody.
pub fn client_address(ctx: &Context<'_>) -> Result<ClientAddress, AppError> {
    ctx.data_opt::<ClientAddress>()
        .copied()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("ClientAddress missing from the request")))
}

/// The catalog as it is now (served from memory, see [`crate::services::catalog`]).
pub async fn catalog(ctx: &Context<'_>) -> Result<Arc<Snapshot>, AppError> {
    let state = state(ctx)?;
    state.catalog.current(&state.db).await
}
