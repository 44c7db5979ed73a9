//! The schema as the transports run it: every operation, over HTTP or WebSocket, goes
//! through [`Engine`], which parses it once per distinct text, refuses introspection where
//! it is off and text inputs holding NUL, and gives every error the contract's
//! `extensions.code`.
//!
//! These used to be async-graphql extensions. Any extension, even one that hooks only the
//! request, sends every field of every response through async-graphql's per-field
//! extension chain (boxed futures per field), and parsing with its pest grammar was the
//! largest single cost of a small query: both showed in `perf` on the `figurines` load.
//! Done here, around the schema, a query is parsed once and its fields resolve directly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, Value};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::AppSchema;
use super::errors::introspects;
use super::nul_input;

/// Distinct operation texts kept parsed. Clients send a fixed set of operations (they are
/// written in the client's code), so this holds all of them; when something sends more,
/// the cache starts over rather than tracking which to evict.
const MAX_DOCUMENTS: usize = 512;
/// Longer texts are parsed each time, not kept.
const MAX_CACHED_QUERY_BYTES: usize = 8 * 1024;

#[derive(Clone)]
pub struct Engine {
    schema: AppSchema,
    documents: Arc<Mutex<HashMap<String, Parsed>>>,
    /// Whether introspection is refused (production), with `BAD_USER_INPUT`.
    refuse_introspection: bool,
}

/// A parsed document, with what the checks below found in it: both depend on the text
/// alone, so they are worked out once per distinct text, not per request.
#[derive(Clone)]
struct Parsed {
    document: ExecutableDocument,
    introspects: bool,
    /// The literal argument holding U+0000, if any.
    nul_literal: Option<String>,
}

impl Parsed {
    fn of(document: ExecutableDocument) -> Self {
        Parsed {
            introspects: asks_for_introspection(&document),
            nul_literal: nul_input::in_document(&document),
            document,
        }
    }
}

impl Engine {
    pub fn new(schema: AppSchema, refuse_introspection: bool) -> Self {
        Engine { schema, documents: Arc::default(), refuse_introspection }
    }

    /// Runs a query or mutation.
    pub async fn execute(&self, request: Request) -> Response {
        match self.prepare(request) {
            Ok(request) => with_codes(self.schema.execute(request).await),
            Err(refused) => *refused,
        }
    }

    /// Runs any operation as a stream of results (the WebSocket transport).
    pub fn execute_stream(&self, request: Request) -> BoxStream<'static, Response> {
        match self.prepare(request) {
            Ok(request) => self.schema.execute_stream(request).map(with_codes).boxed(),
            Err(refused) => futures::stream::once(async move { *refused }).boxed(),
        }
    }

    /// Gives the request its parsed document, from the cache when the same text came
    /// before. A text that does not parse is left to async-graphql, which reports it.
    fn prepare(&self, mut request: Request) -> Result<Request, Box<Response>> {
        let cached = self.lock().get(&request.query).cloned();
        let parsed = match cached {
            Some(parsed) => parsed,
            None => {
                let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
                    return Ok(request);
                };
                let parsed = Parsed::of(document);
                if request.query.len() <= MAX_CACHED_QUERY_BYTES {
                    let mut documents = self.lock();
                    if documents.len() >= MAX_DOCUMENTS {
                        documents.clear();
                    }
                    documents.insert(request.query.clone(), parsed.clone());
                }
                parsed
            }
        };
        if self.refuse_introspection && parsed.introspects {
            return Err(refusal("introspection is disabled on this server"));
        }
        if let Some(field) = nul_input::in_variables(&request.variables).or(parsed.nul_literal) {
            let mut refused = refusal(&format!("{field} must not contain the NUL character (U+0000)"));
            if let Some(error) = refused.errors.first_mut() {
                error.extensions.get_or_insert_with(Default::default).set("field", field);
            }
            return Err(refused);
        }
        request.set_parsed_query(parsed.document);
        Ok(request)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parsed>> {
        // A cache of parsed texts cannot be left inconsistent by a panic.
        self.documents.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A request refused before it runs, with `BAD_USER_INPUT`.
fn refusal(message: &str) -> Box<Response> {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", "BAD_USER_INPUT");
    Box::new(Response::from_errors(vec![error]))
}

/// Whether any operation or fragment of `document` selects `__schema` or `__type`.
/// async-graphql answers those with a bare `null` when introspection is disabled (even
/// though `__schema` is non-null) and no error; refusing says why.
fn asks_for_introspection(document: &ExecutableDocument) -> bool {
    let operations = document.operations.iter().map(|(_, op)| &op.node.selection_set.node);
    let fragments = document.fragments.values().map(|fragment| &fragment.node.selection_set.node);
    operations.chain(fragments).any(introspects)
}

/// Gives a code to the errors async-graphql raises itself before any resolver runs: syntax
/// errors, unknown fields, variables of the wrong type, limits exceeded. All of them are
/// the client's input being wrong, so `BAD_USER_INPUT`.
fn with_codes(mut response: Response) -> Response {
    for error in &mut response.errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_none() {
            extensions.set("code", Value::from("BAD_USER_INPUT"));
        }
    }
    response
}
