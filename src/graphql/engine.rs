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

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Request, Response, ServerError};
use futures::StreamExt;
use futures::stream::BoxStream;
use minifig_common::telemetry::propagation;
use tracing::Instrument;

use super::AppSchema;
use super::error_codes::{ArgumentPositions, REQUEST_ERROR, with_codes};
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
    /// What tells the client's errors from the server's (see [`super::error_codes`]).
    arguments: Arc<ArgumentPositions>,
}

impl Parsed {
    fn of(document: ExecutableDocument) -> Self {
        Parsed {
            introspects: asks_for_introspection(&document),
            nul_literal: nul_input::in_document(&document),
            arguments: Arc::new(ArgumentPositions::of(&document)),
            document,
        }
    }
}

impl Engine {
    pub fn new(schema: AppSchema, refuse_introspection: bool) -> Self {
        Engine { schema, documents: Arc::default(), refuse_introspection }
    }

    /// Runs a query or mutation; while traces are on, in a span of its own.
    pub async fn execute(&self, request: Request) -> Response {
        match self.prepare(request) {
            Ok((mut request, arguments)) => {
                let response = match operation_span(&mut request) {
                    Some(span) => self.schema.execute(request).instrument(span).await,
                    None => self.schema.execute(request).await,
                };
                with_codes(response, &arguments)
            }
            Err(refused) => *refused,
        }
    }

    /// Runs any operation as a stream of results (the WebSocket transport). While traces
    /// are on, the operation is a span (as long as its stream lasts) in the trace of
    /// `traceparent` (see `http::ws`: the operation's own, the socket's, or the upgrade
    /// request's).
    pub fn execute_stream(&self, request: Request, traceparent: Option<&str>) -> BoxStream<'static, Response> {
        match self.prepare(request) {
            Ok((mut request, arguments)) => {
                let span = operation_span(&mut request);
                let results = self.schema.execute_stream(request).map(move |response| with_codes(response, &arguments));
                match span {
                    Some(span) => {
                        propagation::set_parent(&span, traceparent, None);
                        in_span(results, span).boxed()
                    }
                    None => results.boxed(),
                }
            }
            Err(refused) => futures::stream::once(async move { *refused }).boxed(),
        }
    }

    /// Gives the request its parsed document, from the cache when the same text came
    /// before. A text that does not parse is left to async-graphql, which reports it (its
    /// error has no path, so it needs no argument positions to be told the client's).
    fn prepare(&self, mut request: Request) -> Result<(Request, Arc<ArgumentPositions>), Box<Response>> {
        let cached = self.lock().get(&request.query).cloned();
        let parsed = match cached {
            Some(parsed) => parsed,
            None => {
                let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
                    return Ok((request, Arc::default()));
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
        Ok((request, parsed.arguments))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parsed>> {
        // A cache of parsed texts cannot be left inconsistent by a panic.
        self.documents.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The span of one operation, while traces are on (`None` otherwise, at the cost of an
/// atomic load): named after the operation, or after its root fields when it has no name
/// (`placeOrder`), with its type. Never its variables, which may hold a password.
fn operation_span(request: &mut Request) -> Option<tracing::Span> {
    if !propagation::is_enabled() {
        return None;
    }
    let wanted = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let (name, operation) = document
        .operations
        .iter()
        .find(|(name, _)| wanted.is_none() || name.map(|name| name.as_str()) == wanted.as_deref())?;
    let kind = match operation.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let root_fields: Vec<&str> = operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .filter_map(|selection| match &selection.node {
            Selection::Field(field) => Some(field.node.name.node.as_str()),
            _ => None,
        })
        .collect();
    let root_fields = root_fields.join(",");
    let otel_name = name.map(|name| name.as_str()).unwrap_or(&root_fields).to_owned();
    Some(tracing::info_span!(
        "graphql",
        otel.name = otel_name,
        graphql.operation.type = kind,
        graphql.operation.name = name.map(|name| name.as_str()),
        graphql.root_fields = root_fields,
    ))
}

/// `results`, each polled inside `span`, which ends when the stream is dropped.
fn in_span<S>(mut results: S, span: tracing::Span) -> impl futures::Stream<Item = S::Item> + Send + 'static
where
    S: futures::Stream + Unpin + Send + 'static,
    S::Item: Send + 'static,
{
    async_stream::stream! {
        while let Some(result) = results.next().instrument(span.clone()).await {
            yield result;
        }
    }
}

/// A request refused before it runs, with `BAD_USER_INPUT`.
fn refusal(message: &str) -> Box<Response> {
    let mut error = ServerError::new(message, None);
    error.extensions.get_or_insert_with(Default::default).set("code", REQUEST_ERROR);
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
