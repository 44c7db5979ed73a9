//! One error type for the whole service, and one place that decides its client code.
//!
//! `AppError` deliberately does not implement `Display`: async-graphql converts any
//! `Display` type into a client error with that text and no code, so a `?` on an error
//! without an explicit mapping would leak. Without `Display`, only the mapping in
//! `graphql::errors` compiles.
//!
//! Messages are written for API users. Causes of internal errors are kept as sources and
//! logged once, where the error leaves the service (GraphQL or REST), never sent.

use crate::domain::TransitionError;

#[derive(Debug)]
pub enum AppError {
    /// No usable token where one is needed; the message says what is wrong with it.
    Unauthenticated(&'static str),
    Forbidden(&'static str),
    /// Input that failed validation; `field` is the input field's path, e.g. `items[0].quantity`.
    BadInput {
        field: String,
        message: String,
    },
    /// Unknown, or not the caller's to see (indistinguishable on purpose).
    NotFound(&'static str),
    Conflict {
        field: Option<String>,
        message: String,
    },
    InvalidTransition(String),
    RateLimited {
        retry_after_secs: u64,
    },
    Internal(anyhow::Error),
}

impl AppError {
    /// The contract's `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::BadInput { .. } => "BAD_USER_INPUT",
            AppError::NotFound(_) => "NOT_FOUND",
            AppError::Conflict { .. } => "CONFLICT",
            AppError::InvalidTransition(_) => "INVALID_TRANSITION",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The client-facing message: plain words, never internals.
    pub fn message(&self) -> String {
        match self {
            AppError::Unauthenticated(m) | AppError::Forbidden(m) => (*m).to_owned(),
            AppError::BadInput { message, .. }
            | AppError::Conflict { message, .. }
            | AppError::InvalidTransition(message) => message.clone(),
            AppError::NotFound(what) => format!("{what} not found"),
            AppError::RateLimited { retry_after_secs } => {
                let unit = if *retry_after_secs == 1 { "second" } else { "seconds" };
                format!("too many attempts; try again in {retry_after_secs} {unit}")
            }
            AppError::Internal(_) => "internal server error".to_owned(),
        }
    }

    /// A validation failure of `field`, with a message that names it.
    pub fn bad_input(field: impl Into<String>, problem: impl std::fmt::Display) -> Self {
        let field = field.into();
        AppError::BadInput { message: format!("{field} {problem}"), field }
    }

    /// A validation failure whose message already says everything.
    pub fn bad_input_message(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadInput { field: field.into(), message: message.into() }
    }

    pub fn internal(context: &'static str) -> impl FnOnce(anyhow::Error) -> Self {
        move |cause| AppError::Internal(cause.context(context))
    }

    /// For start-up and the command line, where nobody is a client: an internal error
    /// keeps its whole cause chain (the database's own words), any other says what it says.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            AppError::Internal(cause) => cause,
            other => anyhow::anyhow!(other.message()),
        }
    }

    /// Logs an internal error's cause chain; other errors are the client's, not ours.
    pub fn log_if_internal(&self) {
        if let AppError::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "request failed with an internal error");
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        AppError::Internal(anyhow::Error::new(err).context("database error"))
    }
}

impl From<TransitionError> for AppError {
    fn from(err: TransitionError) -> Self {
        match err {
            TransitionError::NotAllowed { .. } => AppError::InvalidTransition(err.to_string()),
            TransitionError::StaffOnly { .. } => {
                AppError::Forbidden("only the factory or an administrator may do that")
            }
            TransitionError::NoteRequired => AppError::bad_input_message("note", err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_request_an_internal_error_keeps_its_cause() {
        let cause = anyhow::anyhow!("connection refused").context("database error");
        let err = AppError::Internal(cause).into_anyhow().context("creating the factory account");
        assert_eq!(format!("{err:#}"), "creating the factory account: database error: connection refused");
        let conflict = AppError::Conflict { field: None, message: "this username is already taken".into() };
        assert_eq!(conflict.into_anyhow().to_string(), "this username is already taken");
    }

    #[test]
    fn every_code_is_listed() {
        let errors = [
            AppError::Unauthenticated(""),
            AppError::Forbidden(""),
            AppError::BadInput { field: String::new(), message: String::new() },
            AppError::NotFound(""),
            AppError::Conflict { field: None, message: String::new() },
            AppError::InvalidTransition(String::new()),
            AppError::RateLimited { retry_after_secs: 1 },
            AppError::Internal(anyhow::anyhow!("")),
        ];
        let codes: Vec<&str> = errors.iter().map(AppError::code).collect();
        assert_eq!(codes, minifig_common::error_code::ALL);
    }
}
