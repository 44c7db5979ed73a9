//! `figurines`, `packages`, `quote`.

use async_graphql::{Context, Object, Result};

use super::context::state;
use super::inputs::{OrderInput, parse_cart};
use super::types::{Figurine, Package, Quote};
use crate::services::catalog;

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Every figurine on sale, by name.
    async fn figurines(&self, ctx: &Context<'_>) -> Result<Vec<Figurine>> {
        Ok(catalog::figurines(&state(ctx)?.db).await?.into_iter().map(Figurine).collect())
    }

    /// Every special package, by name.
    async fn packages(&self, ctx: &Context<'_>) -> Result<Vec<Package>> {
        Ok(catalog::packages(&state(ctx)?.db).await?.into_iter().map(Package).collect())
    }

    /// Prices a cart exactly as `placeOrder` would, without storing anything. Public.
    async fn quote(&self, ctx: &Context<'_>, input: OrderInput) -> Result<Quote> {
        let cart = parse_cart(&input.items, &input.packages)?;
        Ok(Quote(catalog::quote(&state(ctx)?.db, &cart).await?))
    }
}
