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
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use async_graphql::parser::types::{ExecutableDocument, OperationDefinition, OperationType, Selection};
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
    /// Each operation of the document, with its metric series.
    operations: Arc<[Operation]>,
}

impl Parsed {
    fn of(document: ExecutableDocument) -> Self {
        let operations = document
            .operations
            .iter()
            .map(|(name, operation)| Operation::of(name.map(|name| name.as_str()), &operation.node))
            .collect();
        Parsed {
            introspects: asks_for_introspection(&document),
            nul_literal: nul_input::in_document(&document),
            arguments: Arc::new(ArgumentPositions::of(&document)),
            operations,
            document,
        }
    }

    /// The operation a request runs: the one it names, or the only one (async-graphql
    /// refuses the request otherwise).
    fn operation(&self, operation_name: Option<&str>) -> Option<&Operation> {
        match operation_name {
            Some(wanted) => self.operations.iter().find(|op| op.name.as_deref() == Some(wanted)),
            None if self.operations.len() == 1 => self.operations.first(),
            None => None,
        }
    }
}

/// One operation of a document, with its metric series and what its span is named by.
struct Operation {
    name: Option<String>,
    kind: &'static str,
    /// Its root fields, comma-separated: the span's name when the operation has none.
    root_fields: String,
    series: Arc<metrics::OperationSeries>,
}

impl Operation {
    fn of(name: Option<&str>, operation: &OperationDefinition) -> Self {
        let kind = kind_of(operation.ty);
        let root_fields: Vec<&str> = operation
            .selection_set
            .node
            .items
            .iter()
            .filter_map(|selection| match &selection.node {
                Selection::Field(field) => Some(field.node.name.node.as_str()),
                _ => None,
            })
            .collect();
        Operation {
            name: name.map(str::to_owned),
            kind,
            root_fields: root_fields.join(","),
            series: Arc::new(metrics::OperationSeries::new(kind, operation_names::label(name))),
        }
    }

    /// Its span, while traces are on (`None` otherwise, at the cost of an atomic load):
    /// named after the operation, or after its root fields when it has no name
    /// (`placeOrder`), with its type. Never its variables, which may hold a password.
    fn span(&self) -> Option<tracing::Span> {
        if !propagation::is_enabled() {
            return None;
        }
        Some(tracing::info_span!(
            "graphql",
            otel.name = self.name.as_deref().unwrap_or(&self.root_fields),
            graphql.operation.type = self.kind,
            graphql.operation.name = self.name.as_deref(),
            graphql.root_fields = self.root_fields.as_str(),
        ))
    }
}

/// The metric series of a request's operation.
struct Series(Arc<metrics::OperationSeries>);

impl Series {
    /// A text that does not parse, or no operation of that name: the request fails.
    fn unknown() -> Self {
        static UNKNOWN: LazyLock<Arc<metrics::OperationSeries>> =
            LazyLock::new(|| Arc::new(metrics::OperationSeries::new("unknown", operation_names::OTHER.into())));
        Series(UNKNOWN.clone())
    }

    fn record(self, response: &Response, started: Instant) {
        self.0.record(outcome(response), started.elapsed());
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
        let (response, series) = match self.prepare(request) {
            Ok(Prepared { request, arguments, series, span }) => {
                let response = match span {
                    Some(span) => self.schema.execute(request).instrument(span).await,
                    None => self.schema.execute(request).await,
                };
                (with_codes(response, &arguments), series)
            }
            Err((refused, series)) => (*refused, series),
        };
        series.record(&response, started);
        response
    }

    /// Runs any operation as a stream of results (the WebSocket transport). While traces
    /// are on, the operation is a span (as long as its stream lasts) in the trace of
    /// `traceparent` (see `http::ws`: the operation's own, the socket's, or the upgrade
    /// request's). Its metrics are taken at the first result: a subscription's duration
    /// is its time to start.
    pub fn execute_stream(&self, request: Request, traceparent: Option<&str>) -> BoxStream<'static, Response> {
        let started = Instant::now();
        let (results, series) = match self.prepare(request) {
            Ok(Prepared { request, arguments, series, span }) => {
                let results = self.schema.execute_stream(request).map(move |response| with_codes(response, &arguments));
                let results = match span {
                    Some(span) => {
                        propagation::set_parent(&span, traceparent, None);
                        in_span(results, span).boxed()
                    }
                    None => results.boxed(),
                };
                (results, series)
            }
            Err((refused, series)) => (futures::stream::once(async move { *refused }).boxed(), series),
        };
        let mut series = Some(series);
        results
            .inspect(move |response| {
                if let Some(series) = series.take() {
                    series.record(response, started);
                }
            })
            .boxed()
    }

    /// Gives the request its parsed document, from the cache when the same text came
    /// before. A text that does not parse is left to async-graphql, which reports it (its
    /// error has no path, so it needs no argument positions to be told the client's).
    fn prepare(&self, mut request: Request) -> Result<Prepared, (Box<Response>, Series)> {
        let cached = self.lock().get(&request.query).cloned();
        let parsed = match cached {
            Some(parsed) => parsed,
            None => {
                let Ok(document) = async_graphql::parser::parse_query(&request.query) else {
                    let (arguments, series) = (Arc::default(), Series::unknown());
                    return Ok(Prepared { request, arguments, series, span: None });
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
        let operation = parsed.operation(request.operation_name.as_deref());
        let series = operation.map_or_else(Series::unknown, |op| Series(op.series.clone()));
        if self.refuse_introspection && parsed.introspects {
            return Err((refusal("introspection is disabled on this server"), series));
        }
        if let Some(field) = nul_input::in_variables(&request.variables).or_else(|| parsed.nul_literal.clone()) {
            let mut refused = refusal(&format!("{field} must not contain the NUL character (U+0000)"));
            if let Some(error) = refused.errors.first_mut() {
                error.extensions.get_or_insert_with(Default::default).set("field", field);
            }
            return Err((refused, series));
        }
        // Only an operation that runs gets a span: a refused one never started.
        let span = operation.and_then(Operation::span);
        request.set_parsed_query(parsed.document);
        Ok(Prepared { request, arguments: parsed.arguments, series, span })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parsed>> {
        // A cache of parsed texts cannot be left inconsistent by a panic.
        self.documents.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A request ready to run, with what its errors, metrics and trace need.
struct Prepared {
    request: Request,
    arguments: Arc<ArgumentPositions>,
    series: Series,
    /// The operation's span, while traces are on.
    span: Option<tracing::Span>,
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
