//! The `name` label of GraphQL operations, bounded: a client chooses its operation names,
//! so without a cap every request could add a series to every scrape.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock, PoisonError};

use metrics::SharedString;

/// Distinct operation names given a label of their own. A client sends the fixed set
/// written in its code, so a real fleet of clients stays far below this.
pub const MAX_NAMES: usize = 200;
/// Longer names share [`OTHER`] (a generated or hostile one).
pub const MAX_NAME_BYTES: usize = 64;
/// The label of operations without a name.
pub const ANONYMOUS: &str = "anonymous";
/// The label of every name past the cap.
pub const OTHER: &str = "other";

/// The label for an operation called `name`. Called once per distinct document, not per
/// request (the engine keeps the answer with the parsed document).
pub fn label(name: Option<&str>) -> SharedString {
    let Some(name) = name else { return ANONYMOUS.into() };
    if name.len() > MAX_NAME_BYTES || name == ANONYMOUS || name == OTHER {
        return OTHER.into();
    }
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut seen = SEEN.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner);
    if seen.contains(name) || seen.len() < MAX_NAMES {
        seen.insert(name.to_owned());
        SharedString::from_owned(name.to_owned())
    } else {
        OTHER.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kept_up_to_the_cap_then_share_one_label() {
        assert_eq!(&*label(None), ANONYMOUS);
        assert_eq!(&*label(Some(&"x".repeat(MAX_NAME_BYTES + 1))), OTHER);
        assert_eq!(&*label(Some("other")), OTHER, "a client cannot pose as the overflow label's own series");
        assert_eq!(&*label(Some("Figurines")), "Figurines");
        for index in 0..MAX_NAMES {
            label(Some(&format!("Generated{index}")));
        }
        assert_eq!(&*label(Some("OneTooMany")), OTHER);
        assert_eq!(&*label(Some("Figurines")), "Figurines", "a name seen before the cap keeps its label");
    }
}
