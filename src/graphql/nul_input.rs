//! String inputs holding U+0000. PostgreSQL cannot store it in text, and no field of this
//! API means one, so such an input is the client's mistake or a probe: it is refused with
//! `BAD_USER_INPUT` before anything runs, instead of failing deep inside a statement as a
//! server error. Every string a GraphQL request carries is either a variable or a literal
//! argument of the document, so looking at both covers every field.

use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Positioned, Variables};
use async_graphql_value::{ConstValue, Value};

/// The name of the first variable holding U+0000: the innermost object field around the
/// string, or the variable itself.
pub fn in_variables(variables: &Variables) -> Option<String> {
    variables.iter().find_map(|(name, value)| in_const(name.as_str(), value))
}

/// The name of the first literal argument of `document` holding U+0000 (the innermost
/// object field, argument or variable default around the string). A document is the same
/// for every request that sends its text, so this is asked once per text.
pub fn in_document(document: &ExecutableDocument) -> Option<String> {
    document
        .operations
        .iter()
        .find_map(|(_, operation)| {
            let operation = &operation.node;
            operation
                .variable_definitions
                .iter()
                .find_map(|definition| {
                    let name = definition.node.name.node.as_str();
                    definition
                        .node
                        .default_value
                        .as_ref()
                        .and_then(|value| in_const(name, &value.node))
                        .or_else(|| in_directives(&definition.node.directives))
                })
                .or_else(|| in_directives(&operation.directives))
                .or_else(|| in_selection_set(&operation.selection_set.node))
        })
        .or_else(|| {
            document.fragments.values().find_map(|fragment| {
                in_directives(&fragment.node.directives).or_else(|| in_selection_set(&fragment.node.selection_set.node))
            })
        })
}

fn in_selection_set(selection_set: &SelectionSet) -> Option<String> {
    selection_set.items.iter().find_map(|item| match &item.node {
        Selection::Field(field) => in_arguments(&field.node.arguments)
            .or_else(|| in_directives(&field.node.directives))
            .or_else(|| in_selection_set(&field.node.selection_set.node)),
        Selection::FragmentSpread(spread) => in_directives(&spread.node.directives),
        Selection::InlineFragment(fragment) => {
            in_directives(&fragment.node.directives).or_else(|| in_selection_set(&fragment.node.selection_set.node))
        }
    })
}

fn in_directives(directives: &[Positioned<Directive>]) -> Option<String> {
    directives.iter().find_map(|directive| in_arguments(&directive.node.arguments))
}

fn in_arguments(arguments: &[(Positioned<Name>, Positioned<Value>)]) -> Option<String> {
    arguments.iter().find_map(|(name, value)| in_value(name.node.as_str(), &value.node))
}

fn in_value(name: &str, value: &Value) -> Option<String> {
    match value {
        Value::String(text) if text.contains('\0') => Some(name.to_owned()),
        Value::List(items) => items.iter().find_map(|item| in_value(name, item)),
        Value::Object(fields) => fields.iter().find_map(|(key, value)| {
            if key.contains('\0') { Some(name.to_owned()) } else { in_value(key.as_str(), value) }
        }),
        _ => None,
    }
}

fn in_const(name: &str, value: &ConstValue) -> Option<String> {
    match value {
        ConstValue::String(text) if text.contains('\0') => Some(name.to_owned()),
        ConstValue::List(items) => items.iter().find_map(|item| in_const(name, item)),
        ConstValue::Object(fields) => fields.iter().find_map(|(key, value)| {
            if key.contains('\0') { Some(name.to_owned()) } else { in_const(key.as_str(), value) }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str, variables: serde_json::Value) -> Option<String> {
        let document = async_graphql::parser::parse_query(query).expect("a valid document");
        in_variables(&Variables::from_json(variables)).or_else(|| in_document(&document))
    }

    #[test]
    fn finds_nul_in_variables_and_literals_at_any_depth_and_names_the_field() {
        let none = serde_json::json!({"input": {"username": "ada", "tags": ["a", "b"]}});
        assert_eq!(check("mutation($input: LoginInput!) { login(input: $input) { token } }", none), None);
        let nested = serde_json::json!({"input": {"items": [{"name": "a\u{0}b"}]}});
        assert_eq!(check("mutation($input: X!) { f(input: $input) { id } }", nested).as_deref(), Some("name"));
        let top = serde_json::json!({"note": "\u{0}"});
        assert_eq!(check("mutation($note: String) { f(note: $note) }", top).as_deref(), Some("note"));
        let literal = check(r#"{ f(input: {username: "ada\u0000"}) { id } }"#, serde_json::json!({}));
        assert_eq!(literal.as_deref(), Some("username"));
        let fragment = check(r#"{ ...F } fragment F on Query { f(x: ["\u0000"]) }"#, serde_json::json!({}));
        assert_eq!(fragment.as_deref(), Some("x"));
        let default = check(r#"query($x: String = "\u0000") { f(x: $x) }"#, serde_json::json!({}));
        assert_eq!(default.as_deref(), Some("x"));
        let directive = check(r#"{ f @include(if: true) { g(y: "\u0000") } }"#, serde_json::json!({}));
        assert_eq!(directive.as_deref(), Some("y"));
    }
}
