//! The code of an error that has none: those async-graphql raises itself, not through an
//! [`crate::error::AppError`] (which always carries one, see [`super::errors`]).
//!
//! Two kinds, told apart by where async-graphql raised them:
//! - a *request error* comes from checking the request before anything runs (syntax,
//!   unknown fields, arguments or variables of the wrong type, limits), or from coercing an
//!   argument's value as a field starts (a required variable that was not sent): the
//!   client's input is wrong, so `BAD_USER_INPUT`. The first have no `path`; the second are
//!   located at the argument's value in the document.
//! - any other error raised while resolving a field (say, schema data missing) is a server
//!   fault: `INTERNAL_SERVER_ERROR`, its message logged here and replaced, as for
//!   [`crate::error::AppError::Internal`], since it was never written for clients.

use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Pos, Response, ServerError, Value};

/// Where the values of the document's field arguments start.
#[derive(Debug, Clone, Default)]
pub struct ArgumentPositions(HashSet<Pos>);

impl ArgumentPositions {
    pub fn of(document: &ExecutableDocument) -> Self {
        let mut positions = HashSet::new();
        let operations = document.operations.iter().map(|(_, op)| &op.node.selection_set.node);
        let fragments = document.fragments.values().map(|fragment| &fragment.node.selection_set.node);
        for selection_set in operations.chain(fragments) {
            collect(selection_set, &mut positions);
        }
        ArgumentPositions(positions)
    }

    /// Whether `error` is about an argument's value: located at one, or at no place in the
    /// document at all (async-graphql's position for an argument that was left out).
    fn locate(&self, error: &ServerError) -> bool {
        error.locations.iter().any(|pos| *pos == Pos::default() || self.0.contains(pos))
    }
}

fn collect(selection_set: &SelectionSet, positions: &mut HashSet<Pos>) {
    for item in &selection_set.items {
        match &item.node {
            Selection::Field(field) => {
                positions.extend(field.node.arguments.iter().map(|(_, value)| value.pos));
                collect(&field.node.selection_set.node, positions);
            }
            Selection::InlineFragment(fragment) => collect(&fragment.node.selection_set.node, positions),
            Selection::FragmentSpread(_) => {}
        }
    }
}

pub const REQUEST_ERROR: &str = "BAD_USER_INPUT";
pub const SERVER_FAULT: &str = "INTERNAL_SERVER_ERROR";

/// Gives every error of `response` without a code the code its kind calls for.
pub fn with_codes(mut response: Response, arguments: &ArgumentPositions) -> Response {
    for error in &mut response.errors {
        if error.extensions.as_ref().is_some_and(|extensions| extensions.get("code").is_some()) {
            continue;
        }
        let code = if error.path.is_empty() || arguments.locate(error) {
            REQUEST_ERROR
        } else {
            tracing::error!(error = %error.message, path = ?error.path, "a field failed with an internal error");
            error.message = "internal server error".to_owned();
            SERVER_FAULT
        };
        error.extensions.get_or_insert_with(Default::default).set("code", Value::from(code));
    }
    response
}

#[cfg(test)]
mod tests {
    use async_graphql::PathSegment;

    use super::*;

    fn code(response: &Response, index: usize) -> Option<String> {
        match response.errors[index].extensions.as_ref()?.get("code")? {
            Value::String(code) => Some(code.clone()),
            _ => None,
        }
    }

    #[test]
    fn errors_before_execution_are_the_clients_and_errors_in_a_field_the_servers() {
        let document = async_graphql::parser::parse_query("{ order(id: 1) { id } }").unwrap();
        let arguments = ArgumentPositions::of(&document);
        let in_field = |message: &str, pos: Pos| {
            let mut error = ServerError::new(message, Some(pos));
            error.path = vec![PathSegment::Field("order".into())];
            error
        };
        let response = Response::from_errors(vec![
            ServerError::new("Unknown field \"nope\"", Some(Pos { line: 1, column: 3 })),
            in_field("Variable id is not defined.", Pos { line: 1, column: 13 }),
            in_field("Data `Secret` does not exist.", Pos { line: 1, column: 3 }),
        ]);
        let response = with_codes(response, &arguments);
        assert_eq!(code(&response, 0).as_deref(), Some(REQUEST_ERROR));
        assert_eq!(code(&response, 1).as_deref(), Some(REQUEST_ERROR));
        assert_eq!(code(&response, 2).as_deref(), Some(SERVER_FAULT));
        assert_eq!(response.errors[2].message, "internal server error");
    }

    #[test]
    fn an_error_that_has_a_code_keeps_it() {
        let mut error = ServerError::new("order not found", None);
        error.extensions.get_or_insert_with(Default::default).set("code", "NOT_FOUND");
        let response = with_codes(Response::from_errors(vec![error]), &ArgumentPositions::default());
        assert_eq!(code(&response, 0).as_deref(), Some("NOT_FOUND"));
    }
}
