//! `figurines`, `packages`, `quote`.

use async_graphql::{Context, Object, Result};

use super::context::catalog;
use super::inputs::{OrderInput, parse_cart};
use super::types::{Figurine, Package, Quote};

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Every figurine on sale, by name.
    async fn figurines(&self, ctx: &Context<'_>) -> Result<Vec<Figurine>> {
        Ok(catalog(ctx).await?.figurines().iter().cloned().map(Figurine).collect())
    }

    /// Every special package, by name.
    async fn packages(&self, ctx: &Context<'_>) -> Result<Vec<Package>> {
        Ok(catalog(ctx).await?.packages().iter().cloned().map(Package).collect())
    }

    /// Prices a cart exactly as `placeOrder` would, without storing anything. Public.
    async fn quote(&self, ctx: &Context<'_>, input: OrderInput) -> Result<Quote> {
        let cart = parse_cart(&input.items, &input.packages)?;
        Ok(Quote(catalog(ctx).await?.quote(&cart)?))
    }
}
