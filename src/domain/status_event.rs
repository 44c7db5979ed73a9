//! A status change: the one type that services, the outbox, the bus, the hub, the history
//! and the GraphQL `OrderStatusEvent` share. Its serde form is the message on Redis
//! (contract section 5, Redis layout).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::OrderStatus;

/// `{orderId, userId, status, version, at, note, seq}` on `<prefix>order-status`: the
/// contract's fields, and `seq`, the event's place in its customer's sequence (see
/// migration `m20261202_000004_event_sequence`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    pub order_id: Uuid,
    /// The customer who owns the order, so `myOrderEvents` can route it.
    pub user_id: Uuid,
    pub status: OrderStatus,
    /// The order's version after this change: 1 when placed, then one more per change.
    pub version: i32,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
    /// 0 from an instance older than the sequence (during a rolling upgrade): a subscriber
    /// that needs it reads the event from the database instead.
    #[serde(default)]
    pub seq: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_is_the_contracts() {
        let event = StatusEvent {
            order_id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            status: OrderStatus::InProduction,
            version: 3,
            at: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            note: None,
            seq: 7,
        };
        let json: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "orderId": "00000000-0000-0000-0000-000000000001",
                "userId": "00000000-0000-0000-0000-000000000002",
                "status": "IN_PRODUCTION",
                "version": 3,
                "at": "2027-01-15T08:00:00Z",
                "note": null,
                "seq": 7
            })
        );
        assert_eq!(serde_json::from_value::<StatusEvent>(json).unwrap(), event);
    }

    #[test]
    fn an_event_without_a_sequence_number_is_read_as_zero() {
        let json = r#"{"orderId":"00000000-0000-0000-0000-000000000001","userId":"00000000-0000-0000-0000-000000000002",
            "status":"ACCEPTED","version":2,"at":"2027-01-15T08:00:00.123456+00:00","note":"x"}"#;
        let event: StatusEvent = serde_json::from_str(json).unwrap();
        assert_eq!((event.seq, event.version, event.at.timestamp_subsec_micros()), (0, 2, 123_456));
    }
}
