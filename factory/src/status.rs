//! What the factory does with an order, given where it is. Pure: no I/O, no clock.
//!
//! ```text
//! PENDING -> ACCEPTED -> IN_PRODUCTION -> SHIPPED     (the factory's path)
//! SHIPPED, CANCELLED, FAILED                          (final: acknowledge, nothing to do)
//! ```
//!
//! The factory always plans from the order's *current* status as the API reports it, never
//! from what it did last, so a second delivery of an order, a reclaimed order or an order
//! another factory moved meanwhile all resume where the order really is.

use std::fmt;
use std::time::Duration;

/// An order status as the factory understands it. `Unknown` keeps whatever a newer server
/// might send, so that the factory neither crashes on it nor pretends to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending,
    Accepted,
    InProduction,
    Shipped,
    Cancelled,
    Failed,
    Unknown(String),
}

impl Status {
    pub fn is_final(&self) -> bool {
        matches!(self, Status::Shipped | Status::Cancelled | Status::Failed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pending => "PENDING",
            Status::Accepted => "ACCEPTED",
            Status::InProduction => "IN_PRODUCTION",
            Status::Shipped => "SHIPPED",
            Status::Cancelled => "CANCELLED",
            Status::Failed => "FAILED",
            Status::Unknown(other) => other,
        })
    }
}

/// The factory's next move for an order in some status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Ask the API to move the order to this status.
    Move(Status),
    /// The order is final: acknowledge the delivery.
    Done,
    /// A status this factory does not know: leave the order alone.
    Unknown,
}

/// Where to move an order next.
pub fn next_step(current: &Status) -> Step {
    match current {
        Status::Pending => Step::Move(Status::Accepted),
        Status::Accepted => Step::Move(Status::InProduction),
        Status::InProduction => Step::Move(Status::Shipped),
        Status::Shipped | Status::Cancelled | Status::Failed => Step::Done,
        Status::Unknown(_) => Step::Unknown,
    }
}

/// How long to work before moving to `to`: taking an order on (ACCEPTED) is immediate, each
/// production step after it takes `step`.
pub fn delay_before(to: &Status, step: Duration) -> Duration {
    match to {
        Status::Accepted => Duration::ZERO,
        _ => step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Status; 6] =
        [Status::Pending, Status::Accepted, Status::InProduction, Status::Shipped, Status::Cancelled, Status::Failed];

    #[test]
    fn the_factory_walks_pending_to_shipped() {
        let mut status = Status::Pending;
        let mut path = vec![status.clone()];
        while let Step::Move(next) = next_step(&status) {
            status = next;
            path.push(status.clone());
        }
        assert_eq!(path, [Status::Pending, Status::Accepted, Status::InProduction, Status::Shipped]);
        assert_eq!(next_step(&status), Step::Done);
    }

    #[test]
    fn final_statuses_are_done_and_only_they() {
        for status in ALL {
            assert_eq!(next_step(&status) == Step::Done, status.is_final(), "{status}");
        }
    }

    #[test]
    fn an_unknown_status_is_left_alone() {
        let status = Status::Unknown("ON_HOLD".into());
        assert!(!status.is_final());
        assert_eq!(next_step(&status), Step::Unknown);
        assert_eq!(status.to_string(), "ON_HOLD");
    }

    #[test]
    fn accepting_is_immediate_and_production_steps_take_a_step() {
        let step = Duration::from_millis(750);
        assert_eq!(delay_before(&Status::Accepted, step), Duration::ZERO);
        assert_eq!(delay_before(&Status::InProduction, step), step);
        assert_eq!(delay_before(&Status::Shipped, step), step);
    }
}
