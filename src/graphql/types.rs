//! Output types. Each wraps a domain or service value; none is derived on a database entity.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};

use std::sync::Arc;

use super::context::catalog;
use super::loaders::{DiscountsLoader, HistoryLoader, LinesLoader, UserLoader};
use super::scalars::DateTime;
use crate::domain::{self, money::CURRENCY};
use crate::error::AppError;
use crate::services::order_feed::EventCursor;
use crate::services::{accounts, catalog, orders};

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

/// Where an order is in its life. SHIPPED, CANCELLED and FAILED are final.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::OrderStatus")]
pub enum OrderStatus {
    /// Placed and paid for; waiting for the factory.
    Pending,
    /// The factory took it on.
    Accepted,
    /// Being made.
    InProduction,
    /// On its way to the shipping address. Final.
    Shipped,
    /// Cancelled before production started. Final.
    Cancelled,
    /// The factory could not make it; the event's note says why. Final.
    Failed,
}

/// What an order line is for.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "domain::LineKind")]
pub enum LineKind {
    /// A single figurine, in some quantity.
    Figurine,
    /// A special package of several figurines at a package price.
    Package,
}

pub struct Money(pub domain::Money);

/// An amount of money. Compute with `cents`; show `amount` and `currency`.
#[Object]
impl Money {
    /// The amount in cents (integer, exact).
    async fn cents(&self) -> Result<i32> {
        i32::try_from(self.0.cents())
            .map_err(|_| AppError::Internal(anyhow::anyhow!("amount exceeds Int: {}", self.0.cents())).into())
    }

    /// The amount as a decimal string with two digits after the point, e.g. "12.50".
    async fn amount(&self) -> String {
        self.0.amount()
    }

    /// ISO 4217 currency code; always "EUR".
    async fn currency(&self) -> &'static str {
        CURRENCY
    }
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

/// One step of an order's history.
#[derive(SimpleObject)]
pub struct OrderStatusEvent {
    pub order_id: ID,
    pub status: OrderStatus,
    /// 1 for PENDING, then one more per transition: no gaps, no repeats.
    pub version: i32,
    /// When the change happened; never before the previous event's `at`.
    pub at: DateTime,
    /// Why, when someone said (always for FAILED).
    pub note: Option<String>,
    /// Opaque. `myOrderEvents(after:)` with this cursor replays every event of the same
    /// customer's orders committed after this one.
    pub cursor: String,
}

impl From<domain::StatusEvent> for OrderStatusEvent {
    fn from(e: domain::StatusEvent) -> Self {
        OrderStatusEvent {
            order_id: ID(e.order_id.to_string()),
            status: e.status.into(),
            version: e.version,
            at: e.at.into(),
            note: e.note,
            cursor: EventCursor(e.seq).encode(),
        }
    }
}

pub struct Order {
    pub inner: orders::Order,
}

/// An order, with prices frozen when it was placed.
#[Object]
impl Order {
    async fn id(&self) -> ID {
        ID(self.inner.id.to_string())
    }

    async fn status(&self) -> OrderStatus {
        self.inner.status.into()
    }

    /// Bumped by one on every status change; PENDING is version 1.
    async fn version(&self) -> i32 {
        self.inner.version
    }

    async fn customer(&self, ctx: &Context<'_>) -> Result<User> {
        let account = ctx.data::<DataLoader<UserLoader>>()?.load_one(self.inner.customer_id).await?;
        Ok(User(account.ok_or_else(|| AppError::Internal(anyhow::anyhow!("order without customer")))?))
    }

    async fn lines(&self, ctx: &Context<'_>) -> Result<Vec<OrderLine>> {
        let lines = ctx.data::<DataLoader<LinesLoader>>()?.load_one(self.inner.id).await?;
        Ok(lines.unwrap_or_default().into_iter().map(OrderLine).collect())
    }

    async fn subtotal(&self) -> Money {
        Money(self.inner.subtotal)
    }

    async fn discount(&self) -> Money {
        Money(self.inner.discount)
    }

    async fn total(&self) -> Money {
        Money(self.inner.total)
    }

    async fn applied_discounts(&self, ctx: &Context<'_>) -> Result<Vec<AppliedDiscount>> {
        let discounts = ctx.data::<DataLoader<DiscountsLoader>>()?.load_one(self.inner.id).await?;
        Ok(discounts.unwrap_or_default().into_iter().map(AppliedDiscount).collect())
    }

    async fn shipping_address(&self) -> &str {
        &self.inner.shipping_address
    }

    async fn created_at(&self) -> DateTime {
        self.inner.created_at.into()
    }

    async fn updated_at(&self) -> DateTime {
        self.inner.updated_at.into()
    }

    /// Every status change so far, version ascending.
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<OrderStatusEvent>> {
        let events = ctx.data::<DataLoader<HistoryLoader>>()?.load_one(self.inner.id).await?;
        Ok(events.unwrap_or_default().into_iter().map(OrderStatusEvent::from).collect())
    }
}

impl From<orders::Order> for Order {
    fn from(inner: orders::Order) -> Self {
        Order { inner }
    }
}

async fn load_figurine(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Figurine> {
    let figurine = catalog(ctx).await?.figurine(id).cloned();
    Ok(Figurine(figurine.ok_or_else(|| AppError::Internal(anyhow::anyhow!("missing figurine {id}")))?))
}
