//! The order's status and its events, each the GraphQL face of a domain type.

use async_graphql::{Enum, ID, SimpleObject};

use crate::domain;
use crate::graphql::scalars::DateTime;
use crate::services::order_feed::EventCursor;
use crate::services::orders;

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

impl From<orders::OrderEvent> for OrderStatusEvent {
    fn from(e: orders::OrderEvent) -> Self {
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
