//! Who an authenticated request acts for. Kept apart from [`super::caller`] and
//! [`super::tokens`] because both need it: tokens carry a principal, a caller may hold one.

use uuid::Uuid;

use crate::domain::Role;

/// An authenticated account, as its token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    pub role: Role,
}
