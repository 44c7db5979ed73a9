//! Authorization of fields, declared where the field is (`#[graphql(guard = "…")]`) rather
//! than repeated at the top of each resolver. Both guards answer with the caller's own
//! reason: `UNAUTHENTICATED` saying what is wrong with the token (or that there is none),
//! `FORBIDDEN` for a customer on a staff-only field.

use async_graphql::{Context, Guard, Result};

use super::context::caller;

/// The field needs a logged-in account, of any role.
pub struct AuthenticatedGuard;

impl Guard for AuthenticatedGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        caller(ctx)?.require()?;
        Ok(())
    }
}

/// The field is for FACTORY and ADMIN accounts only.
pub struct StaffGuard;

impl Guard for StaffGuard {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        caller(ctx)?.require_staff()?;
        Ok(())
    }
}
