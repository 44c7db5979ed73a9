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
//! For the same reason the operation metrics (count and duration by type, name and
//! outcome) are taken here rather than by an extension: this is the one place every
//! operation passes, whatever its transport, and it already knows the parsed operation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection};
use async_graphql::{Request, Response, ServerError};
use futures::StreamExt;
use futures::stream::BoxStream;
use minifig_common::error_code;
use minifig_common::telemetry::propagation;
use tracing::Instrument;

use super::AppSchema;
use super::error_codes::{ArgumentPositions, REQUEST_ERROR, with_codes};
use super::errors::introspects;
use super::nul_input;
use crate::metrics::{self, OK, operation_names};

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
    /// The metric labels of each operation in the document.
    operations: Arc<[Operation]>,
}

impl Parsed {
    fn of(document: ExecutableDocument) -> Self {
        let operations = document
            .operations
            .iter()
            .map(|(name, operation)| Operation {
                name: name.map(|name| name.to_string()),
                kind: kind_of(operation.node.ty),
                label: operation_names::label(name.map(|name| name.as_str())),
            })
            .collect();
        Parsed {
            introspects: asks_for_introspection(&document),
            nul_literal: nul_input::in_document(&document),
            arguments: Arc::new(ArgumentPositions::of(&document)),
            operations,
            document,
        }
    }

    /// The labels of the operation `request` runs: the one it names, or the only one.
    fn labels(&self, operation_name: Option<&str>) -> Labels {
        let chosen = match operation_name {
            Some(wanted) => self.operations.iter().find(|op| op.name.as_deref() == Some(wanted)),
            None if self.operations.len() == 1 => self.operations.first(),
            None => None,
        };
        chosen.map_or_else(Labels::unknown, |op| Labels { kind: op.kind, name: op.label.clone() })
    }
}

/// One operation of a document, as the metrics name it.
struct Operation {
    name: Option<String>,
    kind: &'static str,
    label: ::metrics::SharedString,
}

/// The `type` and `name` labels of a request's operation.
struct Labels {
    kind: &'static str,
    name: ::metrics::SharedString,
}

impl Labels {
    /// A text that does not parse, or no operation of that name: the request fails.
    fn unknown() -> Self {
        Labels { kind: "unknown", name: operation_names::OTHER.into() }
    }

    fn record(self, response: &Response, started: Instant) {
        metrics::graphql_operation(self.kind, self.name, outcome(response), started.elapsed());
    }
}

/// `ok`, or the code of the first error.
fn outcome(response: &Response) -> &'static str {
    let Some(error) = response.errors.first() else { return OK };
    let code = error.extensions.as_ref().and_then(|extensions| extensions.get("code"));
    match code {
        Some(async_graphql::Value::String(code)) => error_code::label(code),
        Some(async_graphql::Value::Enum(code)) => error_code::label(code.as_str()),
        _ => "INTERNAL_SERVER_ERROR",
    }
}

impl Engine {
    pub fn new(schema: AppSchema, refuse_introspection: bool) -> Self {
        Engine { schema, documents: Arc::default(), refuse_introspection }
    }

    /// Runs a query or mutation; while traces are on, in a span of its own.
    pub async fn execute(&self, request: Request) -> Response {
        let started = Instant::now();
        let (response, labels) = match self.prepare(request) {
            Ok(Prepared { mut request, arguments, labels }) => {
                let response = match operation_span(&mut request) {
                    Some(span) => self.schema.execute(request).instrument(span).await,
                    None => self.schema.execute(request).await,
                };
                (with_codes(response, &arguments), labels)
            }
            Err((refused, labels)) => (*refused, labels),
        };
        labels.record(&response, started);
        response
    }

    /// Runs any operation as a stream of results (the WebSocket transport). While traces
    /// are on, the operation is a span (as long as its stream lasts) in the trace of
    /// `traceparent` (see `http::ws`: the operation's own, the socket's, or the upgrade
    /// request's). Its metrics are taken at the first result: a subscription's duration
    /// is its time to start.
    pub fn execute_stream(&self, request: Request, traceparent: Option<&str>) -> BoxStream<'static, Response> {
        let started = Instant::now();
        let (results, labels) = match self.prepare(request) {
            Ok(Prepared { mut request, arguments, labels }) => {
                let span = operation_span(&mut request);
                let results = self.schema.execute_stream(request).map(move |response| with_codes(response, &arguments));
                let results = match span {
                    Some(span) => {
                        propagation::set_parent(&span, traceparent, None);
                        in_span(results, span).boxed()
                    }
                    None => results.boxed(),
                };
                (results, labels)
            }
            Err((refused, labels)) => (futures::stream::once(async move { *refused }).boxed(), labels),
        };
        let mut labels = Some(labels);
        results
            .inspect(move |response| {
                if let Some(labels) = labels.take() {
                    labels.record(response, started);
                }
            })
            .boxed()
    }

    /// Gives the request its parsed document, from the cache when the same text came
    /// before. A text that does not parse is left to async-graphql, which reports it (its
    /// error has no path, so it needs no argument positions to be told the client's).
    fn prepare(&self, mut request: Request) -> Result<Prepared, (Box<Response>, Labels)> {
        let cached = self.lock().get(&request.query).cloned();
        let parsed = match cached {
            Some(parsed) => parsed,
            None => {
                let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
                    return Ok(Prepared { request, arguments: Arc::default(), labels: Labels::unknown() });
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
        let labels = parsed.labels(request.operation_name.as_deref());
        if self.refuse_introspection && parsed.introspects {
            return Err((refusal("introspection is disabled on this server"), labels));
        }
        if let Some(field) = nul_input::in_variables(&request.variables).or(parsed.nul_literal) {
            let mut refused = refusal(&format!("{field} must not contain the NUL character (U+0000)"));
            if let Some(error) = refused.errors.first_mut() {
                error.extensions.get_or_insert_with(Default::default).set("field", field);
            }
            return Err((refused, labels));
        }
        request.set_parsed_query(parsed.document);
        Ok(Prepared { request, arguments: parsed.arguments, labels })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parsed>> {
        // A cache of parsed texts cannot be left inconsistent by a panic.
        self.documents.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A request ready to run, with what its errors and metrics need.
struct Prepared {
    request: Request,
    arguments: Arc<ArgumentPositions>,
    labels: Labels,
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
    let kind = kind_of(operation.node.ty);
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

/// The operation type, as both the metrics and the spans name it.
fn kind_of(ty: OperationType) -> &'static str {
    match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
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
