//! The catalog's output types, and the priced lines a quote and an order share.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object, Result};

use crate::domain;
use crate::error::AppError;
use crate::graphql::context::catalog;
use crate::graphql::money::Money;
use crate::services::catalog;

/// What an order line is for.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::LineKind")]
pub enum LineKind {
    /// A single figurine, in some quantity.
    Figurine,
    /// A special package of several figurines at a package price.
    Package,
}

pub struct Figurine(pub Arc<catalog::Figurine>);

/// A figurine of the catalog.
#[Object]
impl Figurine {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Stock-keeping unit, stable across environments, e.g. "FIG-KNIGHT".
    async fn sku(&self) -> &str {
        &self.0.sku
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The price of one, before any bulk discount.
    async fn unit_price(&self) -> Money {
        Money(self.0.unit_price)
    }
}

pub struct PackageItem(pub catalog::PackageItem);

/// One kind of figurine in a package, and how many of it.
#[Object]
impl PackageItem {
    async fn figurine(&self, ctx: &Context<'_>) -> Result<Figurine> {
        load_figurine(ctx, self.0.figurine_id).await
    }

    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
}

pub struct Package(pub Arc<catalog::Package>);

/// A special package: several figurines for less than their unit prices.
#[Object]
impl Package {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Stable code, e.g. "PKG-PARTY".
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The special price of the whole package.
    async fn price(&self) -> Money {
        Money(self.0.price)
    }

    /// What the items would cost at their unit prices.
    async fn regular_price(&self) -> Money {
        Money(self.0.regular_price)
    }

    /// `regularPrice - price`: what the package saves.
    async fn savings(&self) -> Money {
        Money(domain::Money::from_cents(self.0.regular_price.cents() - self.0.price.cents()))
    }

    async fn items(&self) -> Vec<PackageItem> {
        self.0.items.iter().copied().map(PackageItem).collect()
    }
}

pub struct OrderLine(pub domain::PricedLine);

/// A priced line of a quote or an order. On an order, prices are those of the moment it
/// was placed.
#[Object]
impl OrderLine {
    async fn kind(&self) -> LineKind {
        self.0.kind.into()
    }

    /// The figurine, when `kind` is FIGURINE.
    async fn figurine(&self, ctx: &Context<'_>) -> Result<Option<Figurine>> {
        match self.0.kind {
            domain::LineKind::Figurine => load_figurine(ctx, self.0.item_id).await.map(Some),
            domain::LineKind::Package => Ok(None),
        }
    }

    /// The package, when `kind` is PACKAGE.
    #[graphql(name = "package")]
    async fn package_(&self, ctx: &Context<'_>) -> Result<Option<Package>> {
        match self.0.kind {
            domain::LineKind::Package => {
                let package = catalog(ctx).await?.package(self.0.item_id).cloned();
                Ok(Some(Package(
                    package.ok_or_else(|| AppError::Internal(anyhow::anyhow!("missing package {}", self.0.item_id)))?,
                )))
            }
            domain::LineKind::Figurine => Ok(None),
        }
    }

    async fn quantity(&self) -> i32 {
        self.0.quantity as i32
    }

    async fn unit_price(&self) -> Money {
        Money(self.0.unit_price)
    }

    /// `unitPrice x quantity`.
    async fn subtotal(&self) -> Money {
        Money(self.0.subtotal)
    }

    /// The bulk discount on this line (figurine lines only), rounded down to the cent.
    async fn discount(&self) -> Money {
        Money(self.0.discount)
    }

    /// `subtotal - discount`.
    async fn total(&self) -> Money {
        Money(self.0.total)
    }
}

pub struct AppliedDiscount(pub domain::AppliedDiscount);

/// A discount that applied, e.g. BULK_10.
#[Object]
impl AppliedDiscount {
    /// `BULK_5`, `BULK_10` or `BULK_15`.
    async fn code(&self) -> &str {
        &self.0.code
    }

    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The sum of this discount over the lines it applied to.
    async fn amount(&self) -> Money {
        Money(self.0.amount)
    }
}

pub struct Quote(pub domain::Quote);

/// A price preview: exactly what `placeOrder` would charge now for the same input.
#[Object]
impl Quote {
    /// Figurine lines first, then package lines, duplicates merged.
    async fn lines(&self) -> Vec<OrderLine> {
        self.0.lines.iter().copied().map(OrderLine).collect()
    }

    async fn subtotal(&self) -> Money {
        Money(self.0.subtotal)
    }

    async fn discount(&self) -> Money {
        Money(self.0.discount)
    }

    /// `subtotal - discount`: what the order would cost.
    async fn total(&self) -> Money {
        Money(self.0.total)
    }

    async fn applied_discounts(&self) -> Vec<AppliedDiscount> {
        self.0.applied_discounts.iter().cloned().map(AppliedDiscount).collect()
    }
}

pub(crate) async fn load_figurine(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Figurine> {
    let figurine = catalog(ctx).await?.figurine(id).cloned();
    Ok(Figurine(figurine.ok_or_else(|| AppError::Internal(anyhow::anyhow!("missing figurine {id}")))?))
}
