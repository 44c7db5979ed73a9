//! The status event as it travels on the bus (contract section 5, Redis layout).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::OrderStatus;

/// `{orderId, userId, status, version, at, note}` on `<prefix>order-status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusEvent {
    pub order_id: Uuid,
    /// The customer who owns the order, so `myOrderEvents` can route it.
    pub user_id: Uuid,
    #[serde(with = "status_text")]
    pub status: OrderStatus,
    pub version: i32,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

mod status_text {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::domain::OrderStatus;

    pub fn serialize<S: Serializer>(status: &OrderStatus, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(status.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OrderStatus, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
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
                "note": null
            })
        );
        assert_eq!(serde_json::from_value::<StatusEvent>(json).unwrap(), event);
    }
}
