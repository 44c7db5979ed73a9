//! The order state machine, as a table. Pure: given where an order is, where someone wants
//! it to go and who asks, it says whether that is a move, a no-op or a refusal.
//!
//! ```text
//! PENDING -> ACCEPTED -> IN_PRODUCTION -> SHIPPED
//! PENDING | ACCEPTED                 -> CANCELLED   (the owner, or staff)
//! PENDING | ACCEPTED | IN_PRODUCTION -> FAILED      (staff, with a note)
//! ```

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Pending,
    Accepted,
    InProduction,
    Shipped,
    Cancelled,
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

    /// A final order never changes again.
    pub const fn is_final(self) -> bool {
        matches!(self, OrderStatus::Shipped | OrderStatus::Cancelled | OrderStatus::Failed)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown order status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for OrderStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OrderStatus::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// Who asks for a change. Staff are FACTORY and ADMIN accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Owner,
    Staff,
}

/// Who may make a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Allowed {
    OwnerOrStaff,
    StaffOnly,
}

/// Every allowed transition; anything not listed is refused.
const TRANSITIONS: [(OrderStatus, OrderStatus, Allowed); 8] = {
    use Allowed::*;
    use OrderStatus::*;
    [
        (Pending, Accepted, StaffOnly),
        (Accepted, InProduction, StaffOnly),
        (InProduction, Shipped, StaffOnly),
        (Pending, Cancelled, OwnerOrStaff),
        (Accepted, Cancelled, OwnerOrStaff),
        (Pending, Failed, StaffOnly),
        (Accepted, Failed, StaffOnly),
        (InProduction, Failed, StaffOnly),
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
/// request explains itself (required for FAILED).
pub fn plan(from: OrderStatus, to: OrderStatus, actor: Actor, has_note: bool) -> Result<StatusChange, TransitionError> {
    if from == to {
        return Ok(StatusChange::Unchanged);
    }
    let (_, _, allowed) =
        TRANSITIONS.iter().find(|(f, t, _)| *f == from && *t == to).ok_or(TransitionError::NotAllowed { from, to })?;
    if *allowed == Allowed::StaffOnly && actor != Actor::Staff {
        return Err(TransitionError::StaffOnly { to });
    }
    if to == OrderStatus::Failed && !has_note {
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
    fn statuses_round_trip_through_text() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>().unwrap(), status);
        }
        assert!("shipped".parse::<OrderStatus>().is_err());
    }
}

/// Longest note accepted on a status change.
pub const NOTE_MAX: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("must be at most {NOTE_MAX} characters long")]
    TooLong,
    #[error("must not contain control characters other than line breaks")]
    ControlCharacter,
}

/// A status note, trimmed; a blank note is no note.
pub fn parse_note(raw: Option<&str>) -> Result<Option<String>, NoteError> {
    let Some(note) = raw.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(None) };
    if note.chars().count() > NOTE_MAX {
        return Err(NoteError::TooLong);
    }
    if note.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
        return Err(NoteError::ControlCharacter);
    }
    Ok(Some(note.to_owned()))
}

#[cfg(test)]
mod note_tests {
    use super::*;

    #[test]
    fn notes_are_trimmed_bounded_and_blank_means_none() {
        assert_eq!(parse_note(None), Ok(None));
        assert_eq!(parse_note(Some("   ")), Ok(None));
        assert_eq!(parse_note(Some(" resin ran out ")), Ok(Some("resin ran out".into())));
        assert!(parse_note(Some(&"n".repeat(NOTE_MAX))).is_ok());
        assert_eq!(parse_note(Some(&"n".repeat(NOTE_MAX + 1))), Err(NoteError::TooLong));
        assert_eq!(parse_note(Some("a\u{7}b")), Err(NoteError::ControlCharacter));
    }
}
