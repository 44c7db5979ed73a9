//! Live order events for subscriptions: the order's history from the database (through
//! [`FeedReads`]), then the events the [`EventHub`] routes here, with versions strictly
//! increasing, no gap and no duplicate. Whenever the live feed may have missed something
//! (a version jumps, the hub says resync), the missing events are read from the database,
//! which is the record.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use entity::{order_event, user};
use futures::Stream;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::bus::EventHub;
use crate::bus::hub::{HubMessage, HubReceiver};
use crate::domain::StatusEvent;
use crate::error::AppError;
use crate::services::feed_reads::{FeedReads, OrderHistory};

/// `orderStatus`: without `after_version`, the current state first; with it, every event
/// after that version; then live events until the order is final. `live` must have been
/// subscribed before `history` was read (so that nothing committed in between is missed),
/// and `history` must be one the caller may see, read after `after_version` (or 0).
pub fn order_status(
    reads: FeedReads,
    mut live: HubReceiver,
    history: OrderHistory,
    after_version: Option<i32>,
) -> impl Stream<Item = Result<StatusEvent, AppError>> {
    // Only what the loop needs is kept, not the whole order: this state lives as long as
    // the subscription, and an instance holds tens of thousands of them.
    let OrderHistory { order, events } = history;
    let (order_id, settled) = (order.id, order.status.is_final().then_some(order.version));
    async_stream::try_stream! {
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
        if settled.is_some_and(|version| last >= version) {
            return;
        }
        loop {
            let missed = match next(&mut live, order_id).await {
                HubMessage::Event(event) if event.version <= last => continue,
                HubMessage::Event(event) if event.version == last + 1 => vec![StatusEvent::clone(&event)],
                HubMessage::Event(_) | HubMessage::Resync => {
                    reads.history(order_id, last).await?.map(|h| h.events).unwrap_or_default()
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

/// A subscription that hears nothing for this long re-reads the record anyway, so that a
/// message lost on a path nobody foresaw delays an event by a minute instead of losing it.
const RECHECK_AFTER: Duration = Duration::from_secs(60);
/// Up to this much is added, spread by key, so that the re-reads of many subscriptions
/// opened at once (every client of a restarted instance) do not all come at once.
const RECHECK_SPREAD_MS: u64 = 15_000;

/// The next message from the hub, or `Resync` after [`RECHECK_AFTER`] of silence.
async fn next(live: &mut HubReceiver, key: Uuid) -> HubMessage {
    let spread = Duration::from_millis((key.as_u128() as u64) % RECHECK_SPREAD_MS);
    tokio::select! {
        message = live.recv() => message,
        () = tokio::time::sleep(RECHECK_AFTER + spread) => HubMessage::Resync,
    }
}

/// Where `myOrderEvents` resumes: after the event with this place in its customer's
/// sequence. Opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCursor(pub i64);

impl EventCursor {
    const VERSION: &'static str = "e1";

    pub fn encode(self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}|{}", Self::VERSION, self.0))
    }

    pub fn decode(text: &str) -> Option<Self> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (Self::VERSION, seq) = raw.split_once('|')? else { return None };
        seq.parse().ok().filter(|seq| *seq >= 0).map(EventCursor)
    }
}

/// `myOrderEvents`: every status event of `user_id`'s orders after `after` (replayed from
/// the record), or from now on without it, then live; in the order they were committed,
/// each exactly once.
///
/// Events of one customer are numbered 1, 2, 3… in commit order (`seq`), so the feed
/// only has to follow that number: the next one live is delivered, one already seen is
/// skipped, and a jump (a lost message, a lag, a reconnect) is filled from the database,
/// which holds every event up to the highest number anyone has seen.
///
/// "Now" is when the subscription registers with the hub, which happens before this
/// function first waits; the customer's latest number is read just after. An event
/// committed between the two arrives live with a number at or below that latest one: it is
/// delivered too, as long as that keeps the order.
pub async fn user_events(
    db: DatabaseConnection,
    hub: Arc<EventHub>,
    user_id: Uuid,
    after: Option<EventCursor>,
) -> Result<impl Stream<Item = Result<StatusEvent, AppError>>, AppError> {
    let mut live = hub.subscribe_user(user_id);
    let start = latest_seq(&db, user_id).await?;
    let replay_after = match after {
        Some(EventCursor(seq)) if seq > start => {
            return Err(AppError::bad_input("after", "is not the cursor of an event of your orders"));
        }
        Some(EventCursor(seq)) => Some(seq),
        None => None,
    };
    Ok(async_stream::try_stream! {
        let mut last = replay_after.unwrap_or(start);
        // The highest number at or below `start` delivered from the live feed; with a
        // cursor everything up to `start` comes from the record instead.
        let mut early = if replay_after.is_some() { start } else { 0 };
        if last < start {
            for event in user_events_after(&db, user_id, last).await? {
                last = event.seq;
                yield event;
            }
        }
        loop {
            let missed = match next(&mut live, user_id).await {
                HubMessage::Event(event) if event.seq != 0 && event.seq <= last => {
                    if last == start && event.seq > early {
                        early = event.seq;
                        yield StatusEvent::clone(&event);
                    }
                    continue;
                }
                HubMessage::Event(event) if event.seq == last + 1 => vec![StatusEvent::clone(&event)],
                HubMessage::Event(_) | HubMessage::Resync => user_events_after(&db, user_id, last).await?,
            };
            for event in missed {
                if event.seq > last {
                    last = event.seq;
                    yield event;
                }
            }
        }
    })
}

/// The `seq` of the customer's latest committed event (0: none yet).
async fn latest_seq(db: &DatabaseConnection, user_id: Uuid) -> Result<i64, AppError> {
    let seq: Option<i64> =
        user::Entity::find_by_id(user_id).select_only().column(user::Column::EventSeq).into_tuple().one(db).await?;
    Ok(seq.unwrap_or(0))
}

/// The customer's events after `seq`, in commit order.
async fn user_events_after(db: &DatabaseConnection, user_id: Uuid, seq: i64) -> Result<Vec<StatusEvent>, AppError> {
    let rows = order_event::Entity::find()
        .filter(order_event::Column::CustomerId.eq(user_id))
        .filter(order_event::Column::Seq.gt(seq))
        .order_by_asc(order_event::Column::Seq)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(StatusEvent::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        for seq in [0, 1, 41, i64::MAX] {
            assert_eq!(EventCursor::decode(&EventCursor(seq).encode()), Some(EventCursor(seq)));
        }
        let forged = |raw: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        for bad in [forged("e1|-1"), forged("e2|5"), forged("e1|x"), forged("e1|5|6"), "not base64!".into(), "".into()]
        {
            assert_eq!(EventCursor::decode(&bad), None, "{bad}");
        }
    }
}
