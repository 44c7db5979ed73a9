//! Typed access to what a resolver may read from the request context.

use std::sync::Arc;

use async_graphql::Context;

use crate::auth::{Caller, ClientAddress};
use crate::error::AppError;
use crate::services::catalog::Snapshot;
use crate::state::AppState;

pub fn state<'a>(ctx: &Context<'a>) -> Result<&'a AppState, AppError> {
    ctx.data::<AppState>().map_err(|_| AppError::Internal(anyhow::anyhow!("AppState missing from the schema")))
}

/// The caller; a request built without one (the in-process schema tests) is anonymous.
pub fn caller<'a>(ctx: &Context<'a>) -> &'a Caller {
    ctx.data_opt::<Caller>().unwrap_or(&Caller::Anonymous)
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
