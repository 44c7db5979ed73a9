//! `figurines`, `packages`, `quote`.

pub mod inputs;
pub mod types;

use async_graphql::{Context, Object, Result};

use self::inputs::{OrderInput, parse_cart};
use self::types::{Figurine, Package, Quote};
use super::context::catalog;

/// What a catalog list costs in query complexity per field selected in it: about the
/// catalog's size, so that a query selecting `figurines` under a thousand aliases is
/// refused before it runs rather than answering the catalog a thousand times.
const CATALOG_LIST_COST: usize = 25;

#[derive(Default)]
pub struct CatalogQuery;

#[Object]
impl CatalogQuery {
    /// Every figurine on sale, by name.
    #[graphql(complexity = "CATALOG_LIST_COST * child_complexity.max(1)")]
    async fn figurines(&self, ctx: &Context<'_>) -> Result<Vec<Figurine>> {
        Ok(catalog(ctx).await?.figurines().iter().cloned().map(Figurine).collect())
    }

    /// Every special package, by name.
    #[graphql(complexity = "CATALOG_LIST_COST * child_complexity.max(1)")]
    async fn packages(&self, ctx: &Context<'_>) -> Result<Vec<Package>> {
        Ok(catalog(ctx).await?.packages().iter().cloned().map(Package).collect())
    }

    /// Prices a cart exactly as `placeOrder` would, without storing anything. Public.
    async fn quote(&self, ctx: &Context<'_>, input: OrderInput) -> Result<Quote> {
        let cart = parse_cart(&input.items, &input.packages)?;
        Ok(Quote(catalog(ctx).await?.quote(&cart)?))
    }
}
