//! What the factory does with an order, given where it is. Pure: no I/O, no clock.
//!
//! The statuses and the production path (PENDING -> ACCEPTED -> IN_PRODUCTION -> SHIPPED)
//! are the API's own, from `minifig_common::order_status`; this module only decides what
//! the factory does about them.
//!
//! The factory always plans from the order's *current* status as the API reports it, never
//! from what it did last, so a second delivery of an order, a reclaimed order or an order
//! another factory moved meanwhile all resume where the order really is.

use std::fmt;
use std::time::Duration;

pub use minifig_common::OrderStatus;

/// An order status as the API reported it. `Unknown` keeps whatever a newer server might
/// send, so that the factory neither crashes on it nor pretends to know it. It is the
/// `OrderStatus` of the generated GraphQL client (see `api::operations`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Known(OrderStatus),
    Unknown(String),
}

impl Status {
    pub fn is_final(&self) -> bool {
        matches!(self, Status::Known(status) if status.is_final())
    }
}

impl From<OrderStatus> for Status {
    fn from(status: OrderStatus) -> Self {
        Status::Known(status)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Known(status) => f.write_str(status.as_str()),
            Status::Unknown(other) => f.write_str(other),
        }
    }
}

impl serde::Serialize for Status {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(text.parse().map_or(Status::Unknown(text), Status::Known))
    }
}

/// The factory's next move for an order in some status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ask the API to move the order to this status.
    Move(OrderStatus),
    /// The order is final: acknowledge the delivery.
    Done,
    /// A status this factory does not know, or one off the production path: leave the
    /// order alone.
    Unknown,
}

/// Where to move an order next.
pub fn next_step(current: &Status) -> Step {
    match current {
        Status::Known(status) if status.is_final() => Step::Done,
        Status::Known(status) => status.next_in_production().map_or(Step::Unknown, Step::Move),
        Status::Unknown(_) => Step::Unknown,
    }
}

/// How long to work before moving to `to`: taking an order on (ACCEPTED) is immediate, each
/// production step after it takes `step`.
pub fn delay_before(to: &OrderStatus, step: Duration) -> Duration {
    match to {
        OrderStatus::Accepted => Duration::ZERO,
        _ => step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_factory_walks_pending_to_shipped() {
        let mut status = Status::Known(OrderStatus::Pending);
        let mut path = vec![status.clone()];
        while let Step::Move(next) = next_step(&status) {
            status = next.into();
            path.push(status.clone());
        }
        let expected = [OrderStatus::Pending, OrderStatus::Accepted, OrderStatus::InProduction, OrderStatus::Shipped];
        assert_eq!(path, expected.map(Status::Known));
        assert_eq!(next_step(&status), Step::Done);
    }

    #[test]
    fn final_statuses_are_done_and_only_they() {
        for status in OrderStatus::ALL.map(Status::Known) {
            assert_eq!(next_step(&status) == Step::Done, status.is_final(), "{status}");
        }
    }

    #[test]
    fn an_unknown_status_is_left_alone() {
        let status: Status = serde_json::from_str("\"ON_HOLD\"").unwrap();
        assert_eq!(status, Status::Unknown("ON_HOLD".into()));
        assert!(!status.is_final());
        assert_eq!(next_step(&status), Step::Unknown);
        assert_eq!(serde_json::to_string(&status).unwrap(), "\"ON_HOLD\"");
    }

    #[test]
    fn known_statuses_travel_as_the_apis_text() {
        for status in OrderStatus::ALL {
            let json = serde_json::to_string(&Status::Known(status)).unwrap();
            assert_eq!(json, format!("\"{status}\""));
            assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), Status::Known(status));
        }
    }

    #[test]
    fn accepting_is_immediate_and_production_steps_take_a_step() {
        let step = Duration::from_millis(750);
        assert_eq!(delay_before(&OrderStatus::Accepted, step), Duration::ZERO);
        assert_eq!(delay_before(&OrderStatus::InProduction, step), step);
        assert_eq!(delay_before(&OrderStatus::Shipped, step), step);
    }
}
