//! Live order events for subscriptions: the order's history from the database (through
//! [`FeedReads`]), then the events the [`EventHub`] routes here, with versions strictly
//! increasing, no gap and no duplicate. Whenever the live feed may have missed something
//! (a version jumps, the hub says resync), the missing events are read from the database,
//! which is the record.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{order, order_event};
use futures::Stream;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::bus::EventHub;
use crate::bus::hub::{HubMessage, HubReceiver};
use crate::db;
use crate::error::AppError;
use crate::services::feed_reads::{FeedReads, OrderHistory};
use crate::services::orders::OrderEvent;

/// `orderStatus`: without `after_version`, the current state first; with it, every event
/// after that version; then live events until the order is final. `live` must have been
/// subscribed before `history` was read (so that nothing committed in between is missed),
/// and `history` must be one the caller may see, read after `after_version` (or 0).
pub fn order_status(
    reads: FeedReads,
    mut live: HubReceiver,
    history: OrderHistory,
    after_version: Option<i32>,
) -> impl Stream<Item = Result<OrderEvent, AppError>> {
    async_stream::try_stream! {
        let OrderHistory { order, events } = history;
        let mut last = after_version.unwrap_or(0);
        let backlog = match after_version {
            Some(_) => events,
            None => events.into_iter().last().into_iter().collect(),
        };
        for event in backlog {
            last = event.version;
            let done = event.status.is_final();
            yield event;
            if done {
                return;
            }
        }
        if order.status.is_final() && last >= order.version {
            return;
        }
        loop {
            let missed = match live.recv().await {
                HubMessage::Event(event) if event.version <= last => continue,
                HubMessage::Event(event) if event.version == last + 1 => vec![OrderEvent::from(&*event)],
                HubMessage::Event(_) | HubMessage::Resync => {
                    reads.history(order.id, last).await?.map(|h| h.events).unwrap_or_default()
                }
            };
            for event in missed {
                if event.version <= last {
                    continue;
                }
                last = event.version;
                let done = event.status.is_final();
                yield event;
                if done {
                    return;
                }
            }
        }
    }
}

/// `myOrderEvents`: every status event of `user_id`'s orders from now on, live, each
/// order's versions increasing without gaps or repeats.
pub fn user_events(
    db: DatabaseConnection,
    hub: Arc<EventHub>,
    user_id: Uuid,
) -> impl Stream<Item = Result<OrderEvent, AppError>> {
    async_stream::try_stream! {
        let mut live = hub.subscribe_user(user_id);
        let since = db::now();
        let mut last: HashMap<Uuid, i32> = HashMap::new();
        loop {
            let missed = match live.recv().await {
                HubMessage::Event(event) => match last.get(&event.order_id) {
                    Some(&seen) if event.version <= seen => continue,
                    Some(&seen) if event.version == seen + 1 => vec![OrderEvent::from(&*event)],
                    // First sighting since the subscription began, or a gap: take this
                    // order's events since then from the record.
                    _ => order_events_since(&db, event.order_id, since).await?,
                },
                HubMessage::Resync => user_events_since(&db, user_id, since).await?,
            };
            for event in missed {
                let seen = last.entry(event.order_id).or_insert(0);
                if event.version > *seen {
                    *seen = event.version;
                    yield event;
                }
            }
        }
    }
}

async fn order_events_since(
    db: &DatabaseConnection,
    order_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<OrderEvent>, AppError> {
    events_of(db, order_id, order_event::Column::At.gte(since)).await
}

/// One order's events that match `condition`, version ascending.
async fn events_of(
    db: &DatabaseConnection,
    order_id: Uuid,
    condition: sea_orm::sea_query::SimpleExpr,
) -> Result<Vec<OrderEvent>, AppError> {
    let rows = order_event::Entity::find()
        .filter(order_event::Column::OrderId.eq(order_id))
        .filter(condition)
        .order_by_asc(order_event::Column::Version)
        .all(db)
        .await?;
    rows.into_iter().map(OrderEvent::try_from).collect()
}

async fn user_events_since(
    db: &DatabaseConnection,
    user_id: Uuid,
    since: DateTime<Utc>,
) -> Result<Vec<OrderEvent>, AppError> {
    // Every event bumps its order's `updated_at`, so these are the orders that can have any.
    let ids: Vec<Uuid> = order::Entity::find()
        .select_only()
        .column(order::Column::Id)
        .filter(order::Column::CustomerId.eq(user_id))
        .filter(order::Column::UpdatedAt.gte(since))
        .into_tuple()
        .all(db)
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = order_event::Entity::find()
        .filter(order_event::Column::OrderId.is_in(ids))
        .filter(order_event::Column::At.gte(since))
        .order_by_asc(order_event::Column::At)
        .order_by_asc(order_event::Column::Version)
        .all(db)
        .await?;
    rows.into_iter().map(OrderEvent::try_from).collect()
}
