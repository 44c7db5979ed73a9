//! The order status and the state machine, as a table. Pure: given where an order is, where
//! someone wants it to go and who asks, it says whether that is a move, a no-op or a
//! refusal. The API enforces it; the factory follows its production path.
//!
//! ```text
//! PENDING -> ACCEPTED -> IN_PRODUCTION -> SHIPPED     (the production path, staff only)
//! PENDING | ACCEPTED                 -> CANCELLED     (the owner, or staff)
//! PENDING | ACCEPTED | IN_PRODUCTION -> FAILED        (staff, with a note)
//! ```
//!
//! Adding a status means: a variant here, its rows in [`TRANSITIONS`], a migration that
//! widens the `orders`/`order_events` CHECK constraints, and `schema.graphql`. Everything
//! else (the text codec, the database, the bus, GraphQL, the factory) follows from these.

use std::fmt;
use std::str::FromStr;

// The text form (`as_str`) is the one codec: the database column, the Redis messages and
// the factory's client all go through it, and GraphQL derives the same names from the
// variants (a test of the server's GraphQL layer checks that they agree).
/// Where an order is in its life. SHIPPED, CANCELLED and FAILED are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[cfg_attr(feature = "sea-orm", derive(sea_orm::DeriveValueType), sea_orm(value_type = "String"))]
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

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Pending,
        OrderStatus::Accepted,
        OrderStatus::InProduction,
        OrderStatus::Shipped,
        OrderStatus::Cancelled,
        OrderStatus::Failed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Accepted => "ACCEPTED",
            OrderStatus::InProduction => "IN_PRODUCTION",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Failed => "FAILED",
        }
    }

    /// A final order never changes again: no transition leaves it.
    pub const fn is_final(self) -> bool {
        let mut i = 0;
        while i < TRANSITIONS.len() {
            if TRANSITIONS[i].from as u8 == self as u8 {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The next status on the production path, if the order is on it.
    pub fn next_in_production(self) -> Option<OrderStatus> {
        TRANSITIONS.iter().find(|t| t.from == self && t.kind == Kind::Advance).map(|t| t.to)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for OrderStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl serde::Serialize for OrderStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for OrderStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Who asks for a change. Staff are FACTORY and ADMIN accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Owner,
    Staff,
}

/// What a transition does; it also says who may make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One step along the production path: staff only.
    Advance,
    /// The owner or staff call the order off.
    Cancel,
    /// Staff give up on the order, saying why.
    Fail,
}

struct Transition {
    from: OrderStatus,
    to: OrderStatus,
    kind: Kind,
}

/// Every allowed transition; anything not listed is refused.
const TRANSITIONS: [Transition; 8] = {
    use Kind::*;
    use OrderStatus::*;
    const fn t(from: OrderStatus, to: OrderStatus, kind: Kind) -> Transition {
        Transition { from, to, kind }
    }
    [
        t(Pending, Accepted, Advance),
        t(Accepted, InProduction, Advance),
        t(InProduction, Shipped, Advance),
        t(Pending, Cancelled, Cancel),
        t(Accepted, Cancelled, Cancel),
        t(Pending, Failed, Fail),
        t(Accepted, Failed, Fail),
        t(InProduction, Failed, Fail),
    ]
};

/// What a requested change amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// The order already has that status: nothing to write, so retries are safe.
    Unchanged,
    /// Write the new status, bump the version, append to the history.
    Move { from: OrderStatus, to: OrderStatus },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an order cannot go from {from} to {to}")]
    NotAllowed { from: OrderStatus, to: OrderStatus },
    #[error("only the factory or an administrator may move an order to {to}")]
    StaffOnly { to: OrderStatus },
    #[error("a note saying why is required to mark an order FAILED")]
    NoteRequired,
}

/// Decides a change from `from` to `to` requested by `actor`; `has_note` says whether the
/// request explains itself (required to fail an order).
pub fn plan(from: OrderStatus, to: OrderStatus, actor: Actor, has_note: bool) -> Result<StatusChange, TransitionError> {
    if from == to {
        return Ok(StatusChange::Unchanged);
    }
    let transition =
        TRANSITIONS.iter().find(|t| t.from == from && t.to == to).ok_or(TransitionError::NotAllowed { from, to })?;
    if transition.kind != Kind::Cancel && actor != Actor::Staff {
        return Err(TransitionError::StaffOnly { to });
    }
    if transition.kind == Kind::Fail && !has_note {
        return Err(TransitionError::NoteRequired);
    }
    Ok(StatusChange::Move { from, to })
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn the_happy_path_is_allowed_for_staff() {
        for (from, to) in [(Pending, Accepted), (Accepted, InProduction), (InProduction, Shipped)] {
            assert_eq!(plan(from, to, Actor::Staff, false), Ok(StatusChange::Move { from, to }));
            assert_eq!(plan(from, to, Actor::Owner, false), Err(TransitionError::StaffOnly { to }));
        }
    }

    #[test]
    fn owners_and_staff_cancel_before_production_only() {
        for actor in [Actor::Owner, Actor::Staff] {
            assert!(plan(Pending, Cancelled, actor, false).is_ok());
            assert!(plan(Accepted, Cancelled, actor, false).is_ok());
            assert_eq!(
                plan(InProduction, Cancelled, actor, false),
                Err(TransitionError::NotAllowed { from: InProduction, to: Cancelled })
            );
        }
    }

    #[test]
    fn failing_needs_staff_and_a_note() {
        for from in [Pending, Accepted, InProduction] {
            assert_eq!(plan(from, Failed, Actor::Staff, true), Ok(StatusChange::Move { from, to: Failed }));
            assert_eq!(plan(from, Failed, Actor::Staff, false), Err(TransitionError::NoteRequired));
            assert_eq!(plan(from, Failed, Actor::Owner, true), Err(TransitionError::StaffOnly { to: Failed }));
        }
    }

    #[test]
    fn same_status_is_a_no_op_even_when_final() {
        for status in OrderStatus::ALL {
            assert_eq!(plan(status, status, Actor::Staff, false), Ok(StatusChange::Unchanged));
            assert_eq!(plan(status, status, Actor::Owner, false), Ok(StatusChange::Unchanged));
        }
    }

    #[test]
    fn final_statuses_never_move_and_nothing_returns_to_pending() {
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                if from == to {
                    continue;
                }
                let result = plan(from, to, Actor::Staff, true);
                if from.is_final() || to == Pending {
                    assert_eq!(result, Err(TransitionError::NotAllowed { from, to }), "{from} -> {to}");
                }
            }
        }
    }

    #[test]
    fn exactly_the_table_is_allowed() {
        let allowed: Vec<_> = OrderStatus::ALL
            .into_iter()
            .flat_map(|from| OrderStatus::ALL.into_iter().map(move |to| (from, to)))
            .filter(|&(from, to)| from != to && plan(from, to, Actor::Staff, true).is_ok())
            .collect();
        assert_eq!(allowed.len(), 8);
        assert!(!allowed.contains(&(Pending, InProduction)), "no skipping ahead");
        assert!(!allowed.contains(&(Accepted, Shipped)), "no skipping ahead");
    }

    #[test]
    fn the_final_statuses_are_those_nothing_leaves() {
        let finals: Vec<_> = OrderStatus::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [Shipped, Cancelled, Failed]);
    }

    #[test]
    fn the_production_path_walks_pending_to_shipped() {
        let mut path = vec![Pending];
        while let Some(next) = path[path.len() - 1].next_in_production() {
            path.push(next);
        }
        assert_eq!(path, [Pending, Accepted, InProduction, Shipped]);
        for status in [Shipped, Cancelled, Failed] {
            assert_eq!(status.next_in_production(), None, "{status}");
        }
    }

    #[test]
    fn statuses_round_trip_through_text_and_json() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>().unwrap(), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<OrderStatus>(&json).unwrap(), status);
        }
        assert!("shipped".parse::<OrderStatus>().is_err());
        assert!(serde_json::from_str::<OrderStatus>("\"ON_HOLD\"").is_err());
    }
}
