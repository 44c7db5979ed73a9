//! Who an account is. Stored as text in the database and carried in the JWT `role` claim.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Anyone who registered: orders for themself, sees only their own orders.
    Customer,
    /// The factory worker's account: sees every order and moves it through production.
    Factory,
    /// Staff: everything the factory may do; created only from the command line.
    Admin,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "CUSTOMER",
            Role::Factory => "FACTORY",
            Role::Admin => "ADMIN",
        }
    }

    /// Factory and admin accounts may see and move any order.
    pub const fn is_staff(self) -> bool {
        matches!(self, Role::Factory | Role::Admin)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "CUSTOMER" => Ok(Role::Customer),
            "FACTORY" => Ok(Role::Factory),
            "ADMIN" => Ok(Role::Admin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_text() {
        for role in [Role::Customer, Role::Factory, Role::Admin] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("customer".parse::<Role>().is_err());
    }

    #[test]
    fn only_factory_and_admin_are_staff() {
        assert!(!Role::Customer.is_staff());
        assert!(Role::Factory.is_staff());
        assert!(Role::Admin.is_staff());
    }
}
