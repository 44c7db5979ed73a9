//! The contract's error codes (`extensions.code`, section 3): what the server gives and
//! the factory sorts, and the closed set both use as metric labels.

/// Every code, in the contract's order.
pub const ALL: &[&str] = &[
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "BAD_USER_INPUT",
    "NOT_FOUND",
    "CONFLICT",
    "INVALID_TRANSITION",
    "RATE_LIMITED",
    "INTERNAL_SERVER_ERROR",
];

/// `code` as a `'static` label when it is one of the contract's, `other` otherwise.
pub fn label(code: &str) -> &'static str {
    ALL.iter().find(|known| **known == code).copied().unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_contracts_codes_are_labels() {
        assert_eq!(label("NOT_FOUND"), "NOT_FOUND");
        assert_eq!(label("SOMETHING_NEW"), "other");
    }
}
