//! How errors leave the GraphQL layer: every one with the contract's `extensions.code`.
//! An [`AppError`] becomes a client error here, and this is where an internal one is
//! logged, with its cause chain: the cause itself never reaches the client. Errors that
//! async-graphql raises on its own get their code in [`super::engine`].

use async_graphql::ErrorExtensions;
use async_graphql::parser::types::{Selection, SelectionSet};

use crate::error::AppError;

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.log_if_internal();
        client_error(&err)
    }
}

/// What the client is told of `err`: its message and code, and the field or the wait the
/// code calls for. Logs nothing; for an error already logged (see `loaders::LoadError`).
pub(super) fn client_error(err: &AppError) -> async_graphql::Error {
    let code = err.code();
    async_graphql::Error::new(err.message()).extend_with(|_, ext| {
        ext.set("code", code);
        match err {
            AppError::BadInput { field, .. } | AppError::Conflict { field: Some(field), .. } => {
                ext.set("field", field.as_str())
            }
            AppError::RateLimited { retry_after_secs } => ext.set("retryAfter", *retry_after_secs),
            _ => {}
        }
    })
}

/// Whether `selection_set` selects `__schema` or `__type`, at any depth.
pub(super) fn introspects(selection_set: &SelectionSet) -> bool {
    selection_set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => {
            matches!(field.node.name.node.as_str(), "__schema" | "__type")
                || introspects(&field.node.selection_set.node)
        }
        Selection::InlineFragment(fragment) => introspects(&fragment.node.selection_set.node),
        Selection::FragmentSpread(_) => false,
    })
}
