//! The order's output type.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object, Result};

use super::status::OrderStatusEvent;
use crate::domain::OrderStatus;
use crate::error::AppError;
use crate::graphql::account::types::User;
use crate::graphql::catalog::types::{AppliedDiscount, OrderLine};
use crate::graphql::loaders::{DiscountsLoader, HistoryLoader, LinesLoader, UserLoader};
use crate::graphql::money::Money;
use crate::graphql::scalars::DateTime;
use crate::services::orders;

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
        self.inner.status
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
