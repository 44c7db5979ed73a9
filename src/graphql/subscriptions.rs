//! `orderStatus`, `myOrderEvents`.

use async_graphql::{Context, ID, Result, Subscription};
use futures::{Stream, StreamExt};

use super::context::{caller, state};
use super::inputs::parse_record_id;
use super::types::OrderStatusEvent;
use crate::error::AppError;
use crate::services::{order_feed, orders};

#[derive(Default)]
pub struct OrderSubscription;

#[Subscription]
impl OrderSubscription {
    /// One order's status, live: the current state first (or, with `afterVersion`, every
    /// event after that version, to resume after a reconnect), then each change as it
    /// happens. Versions strictly increase with no gap; the stream completes after a final
    /// status. The owner, FACTORY or ADMIN only (NOT_FOUND otherwise).
    async fn order_status(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        after_version: Option<i32>,
    ) -> Result<impl Stream<Item = Result<OrderStatusEvent>> + use<>> {
        let principal = caller(ctx).require()?;
        if after_version.is_some_and(|v| v < 0) {
            return Err(AppError::bad_input("afterVersion", "must not be negative").into());
        }
        let id = parse_record_id(&order_id, "order")?;
        let state = state(ctx)?;
        // Subscribe before reading, so that nothing committed in between is missed.
        let live = state.hub.subscribe_order(id);
        let history = state.feed_reads.history(id, after_version.unwrap_or(0)).await?;
        let history = history.filter(|h| orders::is_visible(principal, &h.order)).ok_or(AppError::NotFound("order"))?;
        Ok(order_feed::order_status(state.feed_reads.clone(), live, history, after_version)
            .map(|event| event.map(OrderStatusEvent::from).map_err(Into::into)))
    }

    /// Every status event of the caller's orders from now on, including PENDING when an
    /// order is placed.
    async fn my_order_events(&self, ctx: &Context<'_>) -> Result<impl Stream<Item = Result<OrderStatusEvent>> + use<>> {
        let principal = caller(ctx).require()?;
        let state = state(ctx)?;
        Ok(order_feed::user_events(state.db.clone(), state.hub.clone(), principal.user_id)
            .map(|event| event.map(OrderStatusEvent::from).map_err(Into::into)))
    }
}
