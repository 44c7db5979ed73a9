//! How errors leave the GraphQL layer: every one with the contract's `extensions.code`.

use async_graphql::ErrorExtensions;
use async_graphql::parser::types::{Selection, SelectionSet};

use crate::error::AppError;

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.log_if_internal();
        let code = err.code();
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", code);
            match &err {
                AppError::BadInput { field, .. } | AppError::Conflict { field: Some(field), .. } => {
                    ext.set("field", field.as_str())
                }
                AppError::RateLimited { retry_after_secs } => ext.set("retryAfter", *retry_after_secs),
                _ => {}
            }
        })
    }
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
