//! What an API call's failure means to the worker: an answer about the order, a transient
//! failure worth trying again, or a refusal no retry changes.

/// Why an API call did not do what was asked, sorted by what the worker does about it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `UNAUTHENTICATED`: the token was refused (the client has already logged in again
    /// and retried once when the worker sees this).
    #[error("the API refused the factory's credentials: {0}")]
    Unauthenticated(String),
    /// `INVALID_TRANSITION`: the order is not where we thought (someone else moved it,
    /// possibly past the status asked for); re-read it.
    #[error("the API refused the status change: {0}")]
    InvalidTransition(String),
    /// `CONFLICT`: someone else was changing the order at the same moment and nothing was
    /// written; re-read it and go on from there.
    #[error("the order was being changed by someone else: {0}")]
    Conflict(String),
    /// `NOT_FOUND`: no such order; acknowledge and skip.
    #[error("no such order: {0}")]
    NotFound(String),
    /// No usable answer this time, and the next try may well get one: the request did not
    /// get through or timed out, an HTTP 5xx (a proxy's 502 or 503 while an instance
    /// restarts), 408 or 429, or `INTERNAL_SERVER_ERROR`.
    #[error("the API did not answer: {0}")]
    Transient(String),
    /// An answer that trying again does not change: an unexpected code (`FORBIDDEN`,
    /// `BAD_USER_INPUT`), a body that is not a GraphQL response, the login refused.
    #[error("the API is unusable: {0}")]
    Unavailable(String),
}

impl ApiError {
    /// Worth trying the same call again in a moment.
    pub fn is_transient(&self) -> bool {
        matches!(self, ApiError::Transient(_))
    }

    /// The API worked and said something about the order itself.
    pub fn is_answer(&self) -> bool {
        matches!(self, ApiError::InvalidTransition(_) | ApiError::Conflict(_) | ApiError::NotFound(_))
    }
}

/// A response the factory cannot use: transient when the HTTP status says the server (or
/// a proxy in front of it) could not serve the request right now.
pub(super) fn unusable(status: reqwest::StatusCode, description: String) -> ApiError {
    let transient = status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    if transient { ApiError::Transient(description) } else { ApiError::Unavailable(description) }
}

/// What an error `code` (the contract's `extensions.code`) means to the factory.
pub fn classify(code: Option<&str>, message: &str) -> ApiError {
    let message = message.to_owned();
    match code {
        Some("UNAUTHENTICATED") => ApiError::Unauthenticated(message),
        Some("INVALID_TRANSITION") => ApiError::InvalidTransition(message),
        Some("CONFLICT") => ApiError::Conflict(message),
        Some("NOT_FOUND") => ApiError::NotFound(message),
        // The contract's "anything unexpected", and throttling: both pass.
        Some(code @ ("INTERNAL_SERVER_ERROR" | "RATE_LIMITED")) => ApiError::Transient(format!("{code}: {message}")),
        Some(code) => ApiError::Unavailable(format!("{code}: {message}")),
        None => ApiError::Unavailable(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_what_the_factory_does() {
        assert!(matches!(classify(Some("UNAUTHENTICATED"), "x"), ApiError::Unauthenticated(_)));
        assert!(matches!(classify(Some("INVALID_TRANSITION"), "x"), ApiError::InvalidTransition(_)));
        assert!(matches!(classify(Some("CONFLICT"), "x"), ApiError::Conflict(_)));
        assert!(matches!(classify(Some("NOT_FOUND"), "x"), ApiError::NotFound(_)));
        for transient in ["INTERNAL_SERVER_ERROR", "RATE_LIMITED"] {
            assert!(classify(Some(transient), "x").is_transient(), "{transient}");
        }
        for other in [Some("FORBIDDEN"), Some("BAD_USER_INPUT"), Some("SOMETHING_NEW"), None] {
            assert!(matches!(classify(other, "x"), ApiError::Unavailable(_)), "{other:?}");
        }
    }

    #[test]
    fn answers_about_the_order_are_told_apart_from_failures() {
        for answer in ["INVALID_TRANSITION", "CONFLICT", "NOT_FOUND"] {
            let error = classify(Some(answer), "x");
            assert!(error.is_answer() && !error.is_transient(), "{answer}");
        }
        for failure in [Some("INTERNAL_SERVER_ERROR"), Some("FORBIDDEN"), Some("UNAUTHENTICATED"), None] {
            assert!(!classify(failure, "x").is_answer(), "{failure:?}");
        }
    }

    #[test]
    fn a_server_or_proxy_that_cannot_serve_right_now_is_transient() {
        use reqwest::StatusCode;
        for status in [502, 503, 504, 500, 408, 429] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(unusable(status, String::new()).is_transient(), "{status}");
        }
        for status in [200, 400, 404, 405] {
            let status = StatusCode::from_u16(status).unwrap();
            assert!(matches!(unusable(status, String::new()), ApiError::Unavailable(_)), "{status}");
        }
    }
}
