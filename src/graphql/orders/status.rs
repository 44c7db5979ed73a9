//! One step of an order's history: the GraphQL face of [`StatusEvent`], the one event type
//! that services, the outbox, the bus and the hub share. The status itself is
//! [`crate::domain::OrderStatus`], whose GraphQL enum is derived where it is defined.

use async_graphql::{ID, Object};

use crate::domain::{OrderStatus, StatusEvent};
use crate::graphql::scalars::DateTime;
use crate::services::order_feed::EventCursor;

pub struct OrderStatusEvent(pub StatusEvent);

impl From<StatusEvent> for OrderStatusEvent {
    fn from(event: StatusEvent) -> Self {
        OrderStatusEvent(event)
    }
}

/// One step of an order's history.
#[Object]
impl OrderStatusEvent {
    async fn order_id(&self) -> ID {
        ID(self.0.order_id.to_string())
    }

    async fn status(&self) -> OrderStatus {
        self.0.status
    }

    /// 1 for PENDING, then one more per transition: no gaps, no repeats.
    async fn version(&self) -> i32 {
        self.0.version
    }

    /// When the change happened; never before the previous event's `at`.
    async fn at(&self) -> DateTime {
        self.0.at.into()
    }

    /// Why, when someone said (always for FAILED).
    async fn note(&self) -> Option<&str> {
        self.0.note.as_deref()
    }

    /// Opaque. `myOrderEvents(after:)` with this cursor replays every event of the same
    /// customer's orders committed after this one.
    async fn cursor(&self) -> String {
        EventCursor(self.0.seq).encode()
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::resolver_utils::EnumType;

    use super::*;

    #[test]
    fn the_graphql_names_are_the_status_codec() {
        let items = <OrderStatus as EnumType>::items();
        assert_eq!(items.len(), OrderStatus::ALL.len());
        for item in items {
            assert_eq!(item.name, item.value.as_str());
        }
    }
}
