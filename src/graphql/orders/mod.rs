//! `order`, `myOrders`, `placeOrder`, `cancelOrder`, `updateOrderStatus`.

pub mod inputs;
pub mod status;
pub mod subscriptions;
pub mod types;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, ID, Object, Result};

use self::inputs::{PlaceOrderInput, UpdateOrderStatusInput, parse_record_id};
use self::types::Order;
use super::context::{catalog, principal, state};
use super::guards::{AuthenticatedGuard, StaffGuard};
use crate::domain::OrderStatus;
use crate::domain::order_status::parse_note;
use crate::error::AppError;
use crate::services::orders::{self, Cursor, MAX_PAGE};

/// Page size of `myOrders` when `first` is not given.
const DEFAULT_PAGE: i32 = 20;

#[derive(Default)]
pub struct OrderQuery;

#[Object]
impl OrderQuery {
    /// One order: the caller's own (FACTORY and ADMIN: any). NOT_FOUND otherwise.
    #[graphql(guard = "AuthenticatedGuard")]
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        let principal = principal(ctx)?;
        let id = parse_record_id(&id, "order")?;
        Ok(Some(orders::find_visible(&state(ctx)?.db, principal, id).await?.into()))
    }

    /// The caller's orders, newest first, as a Relay connection. `first` is capped at 100.
    #[graphql(
        guard = "AuthenticatedGuard",
        complexity = "(first.unwrap_or(DEFAULT_PAGE).clamp(0, MAX_PAGE as i32) as usize).max(1) * child_complexity"
    )]
    async fn my_orders(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
        status: Option<OrderStatus>,
    ) -> Result<Connection<String, Order>> {
        let principal = principal(ctx)?;
        let first = first.unwrap_or(DEFAULT_PAGE);
        let first = u64::try_from(first).map_err(|_| AppError::bad_input("first", "must not be negative"))?;
        let after = after
            .map(|text| {
                Cursor::decode(&text).ok_or_else(|| AppError::bad_input("after", "is not a cursor this API returned"))
            })
            .transpose()?;
        let page = orders::list_for_customer(&state(ctx)?.db, principal.user_id, first, after, status).await?;
        let mut connection = Connection::new(after.is_some(), page.has_next_page);
        connection
            .edges
            .extend(page.orders.into_iter().map(|order| Edge::new(Cursor::of(&order).encode(), Order::from(order))));
        Ok(connection)
    }
}

#[derive(Default)]
pub struct OrderMutation;

#[Object]
impl OrderMutation {
    /// Places an order at today's prices (see `quote`) and hands it to the factory.
    #[graphql(guard = "AuthenticatedGuard")]
    async fn place_order(&self, ctx: &Context<'_>, input: PlaceOrderInput) -> Result<Order> {
        let principal = principal(ctx)?;
        let request = input.parse()?;
        let state = state(ctx)?;
        let catalog = catalog(ctx).await?;
        Ok(orders::place(&state.db, &catalog, &state.outbox, principal, request).await?.into())
    }

    /// Cancels one of the caller's orders while it is PENDING or ACCEPTED. Cancelling a
    /// cancelled order returns it unchanged.
    #[graphql(guard = "AuthenticatedGuard")]
    async fn cancel_order(&self, ctx: &Context<'_>, id: ID) -> Result<Order> {
        let principal = principal(ctx)?;
        let id = parse_record_id(&id, "order")?;
        let status = crate::domain::OrderStatus::Cancelled;
        let state = state(ctx)?;
        Ok(orders::change_status(&state.db, &state.outbox, principal, id, status, None).await?.into())
    }

    /// Moves an order along its life (FACTORY or ADMIN only). Asking for the status it
    /// already has returns it unchanged, so retries are safe; FAILED needs a note.
    #[graphql(guard = "StaffGuard")]
    async fn update_order_status(&self, ctx: &Context<'_>, input: UpdateOrderStatusInput) -> Result<Order> {
        let principal = principal(ctx)?;
        let id = parse_record_id(&input.order_id, "order")?;
        let note = parse_note(input.note.as_deref()).map_err(|e| AppError::bad_input("note", e))?;
        let state = state(ctx)?;
        Ok(orders::change_status(&state.db, &state.outbox, principal, id, input.status, note).await?.into())
    }
}
