//! Traces across processes: the real server binary and the real factory binary, each
//! exporting over OTLP/HTTP (configured only by the standard `OTEL_*` variables) to a
//! receiver inside the test, which keeps every span in memory. A client that sends its own
//! `traceparent` with `placeOrder` must find its trace id on the server's spans of that
//! request, on the relay's, on the factory's (which took the order from the Redis stream)
//! and on the server's spans of the factory's `updateOrderStatus` to SHIPPED.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{
    FACTORY_PASSWORD, FACTORY_USERNAME, PASSWORD, ProcessInstance, RedisKeys, spawn_server_process_with_env,
    test_redis_url, unique_redis_prefix, unique_username,
};
use crate::websocket::{TRANSPORT, WsClient};

const EVENTUALLY: Duration = Duration::from_secs(60);

/// One exported span, as the collector received it.
#[derive(Debug, Clone)]
struct Collected {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

impl Collected {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

type Spans = Arc<Mutex<Vec<Collected>>>;

/// A minimal OTLP/HTTP trace receiver (`POST /v1/traces`, protobuf), on a free port.
struct Collector {
    endpoint: String,
    spans: Spans,
}

impl Collector {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let spans = Spans::default();
        let app = axum::Router::new().route("/v1/traces", axum::routing::post(receive)).with_state(spans.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { endpoint, spans }
    }

    fn spans(&self) -> Vec<Collected> {
        self.spans.lock().unwrap().clone()
    }

    /// The `OTEL_*` environment of a process that exports here, quickly.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", self.endpoint.clone()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]
    }
}

async fn receive(State(spans): State<Spans>, body: axum::body::Bytes) -> impl IntoResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new()).into_response();
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|resource| attributes(&resource.attributes)).unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|scope| scope.spans) {
            received.push(Collected {
                service: service.clone(),
                name: span.name,
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes: attributes(&span.attributes),
            });
        }
    }
    spans.lock().unwrap().extend(received);
    ([(header::CONTENT_TYPE, "application/x-protobuf")], ExportTraceServiceResponse::default().encode_to_vec())
        .into_response()
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    pairs.iter().map(|pair| (pair.key.clone(), pair.value.as_ref().map(text).unwrap_or_default())).collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::DoubleValue(number)) => number.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The `factory` binary beside the server's in the target directory. Cargo builds it for
/// the factory's own tests (`cargo test --workspace`, as `scripts/test` runs first), not
/// for this package's; a missing or stale one would test the wrong code, so it fails.
fn factory_binary() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_minifig")).with_file_name("factory");
    let built = std::fs::metadata(&binary).and_then(|meta| meta.modified()).unwrap_or_else(|_| {
        panic!("{} is missing: build it with `cargo build -p factory` (cargo test --workspace does)", binary.display())
    });
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest = ["factory/src", "common/src"].iter().map(|dir| newest_change(&workspace.join(dir))).max().flatten();
    assert!(
        newest.is_none_or(|newest| newest <= built),
        "{} is older than its sources: rebuild it with `cargo build -p factory`",
        binary.display()
    );
    binary
}

fn newest_change(dir: &Path) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            if path.is_dir() { newest_change(&path) } else { entry.metadata().ok()?.modified().ok() }
        })
        .max()
}

/// The real factory process against `server`, on the Redis stream under `prefix`.
struct FactoryProcess(std::process::Child);

impl FactoryProcess {
    fn spawn(server: &ProcessInstance, prefix: &str, env: &[(&'static str, String)]) -> Self {
        let child = std::process::Command::new(factory_binary())
            .env("API_URL", format!("{}/graphql", server.address))
            .env("REDIS_URL", test_redis_url())
            .env("REDIS_KEY_PREFIX", prefix)
            .env("FACTORY_USERNAME", FACTORY_USERNAME)
            .env("FACTORY_PASSWORD", FACTORY_PASSWORD)
            .env("FACTORY_STEP_MS", "50")
            .env_remove("OTEL_SERVICE_NAME")
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the factory binary starts");
        FactoryProcess(child)
    }

    /// SIGTERM, so that it exports its last spans on the way out.
    fn terminate(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: kill only sends a signal, to the child this test owns.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

impl Drop for FactoryProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Registers a customer and places a one-line order with `traceparent`; the order's id.
async fn place_order_in_trace(server: &ProcessInstance, traceparent: &str) -> String {
    let username = unique_username("traced");
    let registered = server
        .graphql(
            None,
            "mutation($input: RegisterInput!) { register(input: $input) { token } }",
            json!({"input": {"username": username, "email": format!("{username}@example.com"), "password": PASSWORD, "address": "1 Main St"}}),
        )
        .await;
    let token = registered["data"]["register"]["token"].as_str().expect("a token").to_owned();
    let catalog = server.graphql(None, "{ figurines { id } }", json!({})).await;
    let figurine = catalog["data"]["figurines"][0]["id"].as_str().expect("a figurine").to_owned();
    let body: Value = reqwest::Client::new()
        .post(format!("{}/graphql", server.address))
        .bearer_auth(&token)
        .header("traceparent", traceparent)
        .json(&json!({
            "query": "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }",
            "variables": {"input": {"items": [{"figurineId": figurine, "quantity": 1}]}},
        }))
        .send()
        .await
        .expect("placeOrder sent")
        .json()
        .await
        .expect("a JSON answer");
    body["data"]["placeOrder"]["id"].as_str().unwrap_or_else(|| panic!("placeOrder failed: {body}")).to_owned()
}

/// What the trace must hold; each a description and a test on one span, given the order
/// and the factory's service name.
type Expectation = (&'static str, fn(&Collected, &str, &str) -> bool);

const EXPECTED: &[Expectation] = &[
    ("the server's span of the client's request, child of the client's span", |span, _, _| {
        span.service == "minifig" && span.name == "request" && span.parent_span_id == CLIENT_SPAN_ID
    }),
    ("the server's placeOrder operation", |span, _, _| span.service == "minifig" && span.name == "placeOrder"),
    ("the relay's publishing of the order", |span, order, _| {
        span.service == "minifig"
            && span.name == "outbox.publish"
            && span.attribute("topic") == Some("orders")
            && span.attribute("order_id") == Some(order)
    }),
    ("the factory's work on the order", |span, order, factory| {
        span.service == factory && span.name == "order" && span.attribute("order_id") == Some(order)
    }),
    ("the factory's ACCEPTED step", |span, _, _| {
        span.name == "factory.step" && span.attribute("to") == Some("ACCEPTED")
    }),
    ("the factory's IN_PRODUCTION step", |span, _, _| {
        span.name == "factory.step" && span.attribute("to") == Some("IN_PRODUCTION")
    }),
    ("the factory's SHIPPED step", |span, _, _| span.name == "factory.step" && span.attribute("to") == Some("SHIPPED")),
    ("the server's SHIPPED status change (updateOrderStatus)", |span, order, _| {
        span.service == "minifig"
            && span.name == "change_status"
            && span.attribute("order") == Some(order)
            && span.attribute("to") == Some("SHIPPED")
    }),
    ("the server's fan-out of SHIPPED", |span, order, _| {
        span.service == "minifig"
            && span.name == "hub.dispatch"
            && span.attribute("order_id") == Some(order)
            && span.attribute("status") == Some("SHIPPED")
    }),
];

const CLIENT_TRACE_ID: &str = "5f1e2d3c4b5a69788796a5b4c3d2e1f0";
const CLIENT_SPAN_ID: &str = "a1b2c3d4e5f60718";

/// Which expectations no span of `trace_id` meets yet.
fn missing(spans: &[Collected], trace_id: &str, order: &str, factory: &str) -> Vec<&'static str> {
    EXPECTED
        .iter()
        .filter(|(_, test)| !spans.iter().any(|span| span.trace_id == trace_id && test(span, order, factory)))
        .map(|(what, _)| *what)
        .collect()
}

/// Waits until the client's trace holds every [`EXPECTED`] span, and checks how the
/// processes' spans hang together; its spans.
async fn the_clients_trace(collector: &Collector, order: &str, factory: &str) -> Vec<Collected> {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let spans = collector.spans();
        let missing = missing(&spans, CLIENT_TRACE_ID, order, factory);
        if missing.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let traces: Vec<String> = spans
                .iter()
                .filter(|span| span.attributes.values().any(|value| value == order) || span.name == "placeOrder")
                .map(|span| format!("{} {} {} {:?}", span.service, span.trace_id, span.name, span.attributes))
                .collect();
            panic!("the client's trace lacks {missing:#?}\nspans about the order:\n{}", traces.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spans: Vec<Collected> = collector.spans().into_iter().filter(|span| span.trace_id == CLIENT_TRACE_ID).collect();
    let relay = spans.iter().find(|span| span.name == "outbox.publish" && span.attribute("topic") == Some("orders"));
    let work = spans.iter().find(|span| span.service == factory && span.name == "order");
    assert_eq!(
        work.map(|span| &span.parent_span_id),
        relay.map(|span| &span.span_id),
        "the factory's work hangs under the relay's span"
    );
    let calls: Vec<&str> = spans
        .iter()
        .filter(|span| span.service == factory && span.name == "api.request")
        .map(|span| span.span_id.as_str())
        .collect();
    assert!(
        spans.iter().any(|span| span.service == "minifig"
            && span.name == "request"
            && calls.contains(&span.parent_span_id.as_str())),
        "the API's spans of the factory's calls are children of the calls: {spans:#?}"
    );
    spans
}

#[tokio::test]
async fn one_trace_links_a_clients_place_order_to_the_factorys_shipped_status_change() {
    let collector = Collector::start().await;
    let prefix = unique_redis_prefix();
    let _keys = RedisKeys(prefix.clone());
    let env = collector.env();
    let server_env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let redis = test_redis_url();
    let server = spawn_server_process_with_env(
        &["--redis-url", &redis, "--redis-key-prefix", &prefix, "--embedded-factory", "false"],
        &server_env,
    )
    .await;
    let mut factory = FactoryProcess::spawn(&server, &prefix, &env);

    let order = place_order_in_trace(&server, &format!("00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01")).await;

    the_clients_trace(&collector, &order, "minifig-factory").await;
    factory.terminate();
}

/// `cargo run` on the defaults: the embedded factory takes the order from the in-process
/// queue, which carries the trace as the stream entry does.
#[tokio::test]
async fn the_embedded_factory_continues_the_clients_trace_too() {
    let collector = Collector::start().await;
    let env = collector.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let server = spawn_server_process_with_env(&["--factory-step-ms", "50"], &env).await;

    let order = place_order_in_trace(&server, &format!("00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01")).await;

    // One process, one service name.
    the_clients_trace(&collector, &order, "minifig").await;
}

/// A browser cannot set headers on a WebSocket: an operation continues the trace in its
/// `extensions.traceparent`, else the one in the socket's `connection_init` payload.
#[tokio::test]
async fn websocket_operations_continue_the_trace_of_their_extensions_or_of_connection_init() {
    const SOCKET_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const OPERATION_TRACE: &str = "1bf7651916cd43dd8448eb211c80319d";
    let collector = Collector::start().await;
    let env = collector.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let server = spawn_server_process_with_env(&[], &env).await;
    let mut client = WsClient::connect_to(&server.address, Some(TRANSPORT), None).await.expect("upgrade");
    client.init(json!({"traceparent": format!("00-{SOCKET_TRACE}-{CLIENT_SPAN_ID}-01")})).await;

    // `{ __typename }`, in the socket's trace.
    client.barrier().await;
    let extensions = json!({"traceparent": format!("00-{OPERATION_TRACE}-{CLIENT_SPAN_ID}-01")});
    client
        .send(json!({"type": "subscribe", "id": "own", "payload": {"query": "{ figurines { id } }", "extensions": extensions}}))
        .await;
    client.next_data("own").await;

    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    let traced = |spans: &[Collected], name: &str, trace_id: &str| {
        spans.iter().any(|span| {
            span.service == "minifig"
                && span.name == name
                && span.trace_id == trace_id
                && span.parent_span_id == CLIENT_SPAN_ID
        })
    };
    loop {
        let spans = collector.spans();
        if traced(&spans, "__typename", SOCKET_TRACE) && traced(&spans, "figurines", OPERATION_TRACE) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the operations' spans are not in their traces: {spans:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL` picks the transport: the first bytes the server sends to
/// the endpoint are the HTTP/2 preface for `grpc`, and an HTTP/1.1 `POST /v1/traces` for
/// `http/protobuf`.
#[tokio::test]
async fn the_protocol_variable_picks_the_exporters_wire_format() {
    use tokio::io::AsyncReadExt;
    for (protocol, expected) in [("grpc", "PRI * HTTP/2.0"), ("http/protobuf", "POST /v1/traces")] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("RUST_LOG", "info"),
        ];
        // Waiting for it to be ready is a request, and so a span to export.
        let _server = spawn_server_process_with_env(&[], &env).await;
        let (mut socket, _) =
            tokio::time::timeout(EVENTUALLY, listener.accept()).await.expect("an export in time").expect("accepted");
        let mut head = vec![0; expected.len()];
        tokio::time::timeout(EVENTUALLY, socket.read_exact(&mut head))
            .await
            .expect("the export's first bytes in time")
            .expect("read");
        assert_eq!(String::from_utf8_lossy(&head), expected, "{protocol}");
    }
}

/// An operation refused before it runs (here: a NUL in a variable) is not an operation span:
/// its trace holds the HTTP request's span and nothing that claims the operation ran.
#[tokio::test]
async fn a_refused_operation_has_no_operation_span() {
    const REFUSED: &str = "0af7651916cd43dd8448eb211c80319c";
    const RAN: &str = "1bf7651916cd43dd8448eb211c80319d";
    let collector = Collector::start().await;
    let env = collector.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
    let server = spawn_server_process_with_env(&[], &env).await;
    let client = reqwest::Client::new();
    // Without a token the one that runs fails too, but it runs: it has a span.
    let query = "query Order($id: ID!) { order(id: $id) { id } }";
    for (trace_id, id) in [(REFUSED, "a\u{0}b"), (RAN, "00000000-0000-0000-0000-000000000000")] {
        let body: Value = client
            .post(format!("{}/graphql", server.address))
            .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
            .json(&json!({"query": query, "variables": {"id": id}}))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("a JSON answer");
        let refused = body["errors"][0]["message"].as_str().is_some_and(|message| message.contains("NUL"));
        assert_eq!(refused, trace_id == REFUSED, "{body}");
    }
    let operation_spans = |trace_id: &str| {
        collector
            .spans()
            .into_iter()
            .filter(|span| span.trace_id == trace_id && span.attribute("graphql.operation.type").is_some())
            .count()
    };
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    // Spans are exported in the order they ended: once the second request's are in, so are
    // the first's.
    while operation_spans(RAN) == 0 || !collector.spans().iter().any(|span| span.trace_id == REFUSED) {
        assert!(tokio::time::Instant::now() < deadline, "spans exported in time: {:#?}", collector.spans());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(operation_spans(REFUSED), 0, "{:#?}", collector.spans());
}
