//! `orderStatus`, `myOrderEvents`.

use async_graphql::{Context, ID, Result, Subscription};
use futures::{Stream, StreamExt};

use super::inputs::parse_record_id;
use super::status::OrderStatusEvent;
use crate::error::AppError;
use crate::graphql::context::{principal, state};
use crate::graphql::guards::AuthenticatedGuard;
use crate::metrics;
use crate::services::order_feed::{self, EventCursor};
use crate::services::orders;

#[derive(Default)]
pub struct OrderSubscription;

#[Subscription]
impl OrderSubscription {
    /// One order's status, live: the current state first (or, with `afterVersion`, every
    /// event after that version, to resume after a reconnect), then each change as it
    /// happens. Versions strictly increase with no gap; the stream completes after a final
    /// status. The owner, FACTORY or ADMIN only (NOT_FOUND otherwise).
    #[graphql(guard = "AuthenticatedGuard")]
    async fn order_status(
        &self,
        ctx: &Context<'_>,
        order_id: ID,
        after_version: Option<i32>,
    ) -> Result<impl Stream<Item = Result<OrderStatusEvent>> + use<>> {
        let principal = principal(ctx)?;
        if after_version.is_some_and(|v| v < 0) {
            return Err(AppError::bad_input("afterVersion", "must not be negative").into());
        }
        let id = parse_record_id(&order_id, "order")?;
        let state = state(ctx)?;
        // Subscribe before reading, so that nothing committed in between is missed.
        let live = state.hub.subscribe_order(id);
        let history = state.feed_reads.history(id, after_version.unwrap_or(0)).await?;
        let history = history.filter(|h| orders::is_visible(principal, &h.order)).ok_or(AppError::NotFound("order"))?;
        // A version the order has not reached would wait, silently, for events that may
        // never come.
        if let Some(after) = after_version.filter(|after| *after > history.order.version) {
            return Err(AppError::bad_input(
                "afterVersion",
                format!("is {after}, but the order is only at version {}", history.order.version),
            )
            .into());
        }
        let active = metrics::subscription_active("orderStatus");
        Ok(order_feed::order_status(state.feed_reads.clone(), live, history, after_version).map(move |event| {
            let _counted_while_the_stream_lives = &active;
            event.map(OrderStatusEvent::from).map_err(Into::into)
        }))
    }

    /// Every status event of the caller's orders, including PENDING when an order is
    /// placed, live, in the order they were committed. With `after` (the `cursor` of an
    /// event received earlier), every event that followed that one is replayed first,
    /// exactly once, to resume after a reconnect; without it, events from now on.
    #[graphql(guard = "AuthenticatedGuard")]
    async fn my_order_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<OrderStatusEvent>> + use<>> {
        let principal = principal(ctx)?;
        let after = after
            .map(|text| {
                EventCursor::decode(&text).ok_or_else(|| AppError::bad_input("after", "is not a cursor of this API"))
            })
            .transpose()?;
        let state = state(ctx)?;
        let events = order_feed::user_events(state.db.clone(), state.hub.clone(), principal.user_id, after).await?;
        let active = metrics::subscription_active("myOrderEvents");
        Ok(events.map(move |event| {
            let _counted_while_the_stream_lives = &active;
            event.map(OrderStatusEvent::from).map_err(Into::into)
        }))
    }
}
