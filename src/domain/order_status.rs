//! The order status and its state machine live in `minifig_common::order_status`, which the
//! factory shares; what is the API's own is the note a status change may carry.

pub use minifig_common::order_status::*;

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
