//! `GET /metrics`: the counters move by exactly what a known sequence of operations did,
//! the exposition passes `promtool check metrics`, and `METRICS_ADDR` moves it off the API;
//! the deployed Prometheus config, alert rules and dashboard queries pass `promtool` too, and
//! name only metrics the code records and the READMEs list.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{PASSWORD, ProcessInstance, spawn_server_process, unique_username};
use crate::websocket::{TRANSPORT, WsClient};

/// The value of every sample of one scrape, by its series (`name{labels}` as printed).
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("a sample line: {line}"));
                (series.to_owned(), value.parse().unwrap_or_else(|_| panic!("a number in {line}")))
            })
            .collect();
        Scrape(samples)
    }

    /// A series that is absent counts as zero (it has not happened yet).
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }
}

async fn scrape_text(base: &str) -> String {
    let response = reqwest::get(format!("{base}/metrics")).await.expect("the scrape is answered");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    response.text().await.expect("a text body")
}

async fn scrape(base: &str) -> Scrape {
    Scrape::parse(&scrape_text(base).await)
}

/// Scrapes until `series` reads `value` (a gauge that follows a socket's asynchronous end).
async fn eventually(base: &str, series: &str, value: f64) -> Scrape {
    for _ in 0..100 {
        let scrape = scrape(base).await;
        if scrape.get(series) == value {
            return scrape;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{series} never read {value}");
}

async fn graphql(server: &ProcessInstance, token: Option<&str>, query: &str, variables: Value) -> Value {
    server.graphql(token, query, variables).await
}

const REGISTER: &str = "mutation Register($input: RegisterInput!) { register(input: $input) { token } }";
const LOGIN: &str = "mutation Login($input: LoginInput!) { login(input: $input) { token } }";
const QUOTE: &str = "query Quote($input: OrderInput!) { quote(input: $input) { total { cents } } }";
const FIGURINES: &str = "query Figurines { figurines { id sku } }";
const PLACE_ORDER: &str = "mutation PlaceOrder($input: PlaceOrderInput!) { placeOrder(input: $input) { id } }";
const WATCH: &str = "subscription Watch($id: ID!) { orderStatus(orderId: $id) { status version } }";

#[tokio::test]
async fn counters_move_by_exactly_what_was_done() {
    // No embedded factory: nothing but this test's requests happens on the server.
    let server = spawn_server_process(&["--embedded-factory", "false"]).await;
    let base = server.address.clone();
    let username = unique_username("metrics");
    let registered = graphql(
        &server,
        None,
        REGISTER,
        json!({"input": {"username": username, "email": format!("{username}@example.com"), "password": PASSWORD, "address": "1 Main St"}}),
    )
    .await;
    assert!(registered["data"]["register"]["token"].is_string(), "{registered}");
    let figurines = graphql(&server, None, FIGURINES, json!({})).await;
    let knight = figurines["data"]["figurines"]
        .as_array()
        .and_then(|all| all.iter().find(|f| f["sku"] == "FIG-KNIGHT"))
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .expect("the seeded knight");
    let items = json!([{"figurineId": knight, "quantity": 2}]);

    let before = scrape(&base).await;

    // The known sequence: a login, a quote, a placed order, a subscription, refused requests.
    let login = graphql(&server, None, LOGIN, json!({"input": {"username": username, "password": PASSWORD}})).await;
    let token = login["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("{login}")).to_owned();
    let quote = graphql(&server, None, QUOTE, json!({"input": {"items": items}})).await;
    assert!(quote["data"]["quote"]["total"]["cents"].is_i64(), "{quote}");
    let placed = graphql(&server, Some(&token), PLACE_ORDER, json!({"input": {"items": items}})).await;
    let order_id = placed["data"]["placeOrder"]["id"].as_str().unwrap_or_else(|| panic!("{placed}")).to_owned();
    let wrong =
        graphql(&server, None, LOGIN, json!({"input": {"username": username, "password": "Wrong-Pass-1"}})).await;
    assert_eq!(wrong["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{wrong}");
    let anonymous = graphql(&server, None, PLACE_ORDER, json!({"input": {"items": items}})).await;
    assert_eq!(anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{anonymous}");

    let mut socket = WsClient::connect_to(&base, Some(TRANSPORT), None).await.expect("the upgrade");
    socket.init(json!({"Authorization": format!("Bearer {token}")})).await;
    socket.subscribe("w", WATCH, json!({"id": order_id})).await;
    let first = socket.next_data("w").await;
    assert_eq!(first["orderStatus"]["status"], "PENDING", "{first}");

    let open = scrape(&base).await;
    assert_eq!(open.get(r#"minifig_websocket_sockets_open{subprotocol="graphql-transport-ws"}"#), 1.0);
    assert_eq!(open.get(r#"minifig_subscriptions_active{field="orderStatus"}"#), 1.0);

    socket.send_raw(Message::Close(None)).await;
    let _ = socket.closed().await;
    let after = eventually(&base, r#"minifig_websocket_sockets_open{subprotocol="graphql-transport-ws"}"#, 0.0).await;

    let moved = |series: &str| after.get(series) - before.get(series);
    let operations = |kind: &str, name: &str, outcome: &str| {
        moved(&format!(r#"minifig_graphql_operations_total{{type="{kind}",name="{name}",outcome="{outcome}"}}"#))
    };
    assert_eq!(operations("mutation", "Login", "ok"), 1.0);
    assert_eq!(operations("mutation", "Login", "UNAUTHENTICATED"), 1.0);
    assert_eq!(operations("query", "Quote", "ok"), 1.0);
    assert_eq!(operations("mutation", "PlaceOrder", "ok"), 1.0);
    assert_eq!(operations("mutation", "PlaceOrder", "UNAUTHENTICATED"), 1.0);
    assert_eq!(operations("subscription", "Watch", "ok"), 1.0);
    assert_eq!(operations("query", "Figurines", "ok"), 0.0, "only what ran between the scrapes counts");
    assert_eq!(
        moved(r#"minifig_graphql_operation_duration_seconds_count{type="query",name="Quote",outcome="ok"}"#),
        1.0
    );
    // The five POSTs, the upgrade, and the scrapes in between (this test's second and the
    // gauge polls of `eventually`, each counted once it is answered).
    assert_eq!(moved(r#"minifig_http_requests_total{route="/graphql",status="200"}"#), 5.0);
    assert_eq!(moved(r#"minifig_http_requests_total{route="/graphql",status="101"}"#), 1.0);
    assert!(moved(r#"minifig_http_requests_total{route="/metrics",status="200"}"#) >= 2.0);
    assert_eq!(moved(r#"minifig_logins_total{outcome="ok"}"#), 1.0);
    assert_eq!(moved(r#"minifig_logins_total{outcome="UNAUTHENTICATED"}"#), 1.0);
    assert_eq!(moved("minifig_login_throttle_refusals_total"), 0.0);
    assert_eq!(moved(r#"minifig_password_hash_wait_seconds_count{share="login"}"#), 2.0);
    assert_eq!(moved(r#"minifig_websocket_closes_total{code="client"}"#), 1.0);
    assert_eq!(after.get(r#"minifig_subscriptions_active{field="orderStatus"}"#), 0.0);
    // The order for the factory and its PENDING event, handed over at commit.
    assert_eq!(moved(r#"minifig_relay_messages_published_total{source="memory"}"#), 2.0);
    assert_eq!(moved(r#"minifig_relay_publish_failures_total{source="memory"}"#), 0.0);
    assert_eq!(moved("minifig_hub_events_dispatched_total"), 1.0);
    assert_eq!(moved("minifig_event_delay_seconds_count"), 1.0);
    assert_eq!(after.get("minifig_ready"), 1.0);
    assert_eq!(after.get("minifig_outbox_rows_waiting"), 0.0);
}

#[tokio::test]
async fn the_exposition_passes_promtool() {
    let server = spawn_server_process(&[]).await;
    // Something in every family: a request of each kind, and a scrape to sample the gauges.
    let _ = graphql(&server, None, FIGURINES, json!({})).await;
    let _ = graphql(&server, None, "{ nope }", json!({})).await;
    let _ = scrape_text(&server.address).await;
    let text = scrape_text(&server.address).await;
    for family in ["minifig_graphql_operation_duration_seconds", "minifig_http_request_duration_seconds"] {
        assert!(text.contains(&format!("# TYPE {family} histogram")), "{family} is a histogram:\n{text}");
    }
    crate::promtool::assert_clean_exposition(&text).await;
}

#[tokio::test]
async fn metrics_addr_serves_them_apart_from_the_api() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let server = spawn_server_process(&["--metrics-addr", &address]).await;
    let on_api = reqwest::get(format!("{}/metrics", server.address)).await.expect("answered");
    assert_eq!(on_api.status(), 404, "the API's listener no longer serves /metrics");
    let text = scrape_text(&format!("http://{address}")).await;
    assert!(text.contains("minifig_ready 1"), "{text}");
    let graphql = reqwest::get(format!("http://{address}/graphql")).await.expect("answered");
    assert_eq!(graphql.status(), 404, "the metrics listener serves nothing of the API");
}

/// The Prometheus of docker-compose.yml loads its config and alert rules, and each alert
/// fires on the series it is written for (deploy/prometheus/alerts_test.yml).
#[tokio::test]
async fn the_deployed_config_and_alerts_pass_promtool() {
    let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus");
    for args in [["check", "config", "prometheus.yml"], ["test", "rules", "alerts_test.yml"]] {
        let args = [args[0], args[1], &format!("{deploy}/{}", args[2])];
        let (passed, said) = crate::promtool::run(&args, "").await;
        assert!(passed, "promtool {}:\n{said}", args.join(" "));
    }
}

/// The dashboard's and the alerts' queries are PromQL that Prometheus accepts, and name
/// only metrics the code records (a renamed metric would leave a panel blank and an alert
/// silent); every metric the code records is in README.md or factory/README.md.
#[tokio::test]
async fn the_dashboard_and_alerts_query_only_metrics_that_exist_and_are_documented() {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).expect(path);
    let mut recorded = std::collections::BTreeSet::new();
    for dir in ["src", "common/src", "factory/src"] {
        for source in rust_sources(&format!("{root}/{dir}")) {
            let text = std::fs::read_to_string(&source).expect("a source file");
            // In code, the string literals: `minifig_common::…` is a crate.
            recorded.extend(metric_names(&text).into_iter().filter(|name| text.contains(&format!("\"{name}\""))));
        }
    }
    assert!(recorded.contains("minifig_graphql_operations_total") && recorded.len() > 30, "{recorded:?}");
    let documented = read("README.md") + &read("factory/README.md");
    for name in &recorded {
        assert!(documented.contains(&format!("`{name}`")), "{name} is recorded but in neither README");
    }

    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/dashboards/minifig.json")).expect("JSON");
    let mut queries = Vec::new();
    collect_exprs(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "the dashboard's panels have queries: {queries:?}");
    let used = metric_names(&(queries.join("\n") + &read("deploy/prometheus/alerts.yml")));
    for name in &used {
        let family = ["_bucket", "_count", "_sum"].iter().find_map(|suffix| name.strip_suffix(suffix)).unwrap_or(name);
        assert!(recorded.contains(family), "{name} is queried but no code records {family}");
    }

    // promtool parses PromQL only in rule files: the panels' queries as recording rules.
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(index, expr)| json!({"record": format!("panel:{index}"), "expr": expr}))
        .collect();
    let file = std::env::temp_dir().join(format!("minifig-dashboard-{}.yml", uuid::Uuid::new_v4().simple()));
    // JSON is YAML.
    std::fs::write(&file, json!({"groups": [{"name": "dashboard", "rules": rules}]}).to_string()).expect("rules file");
    let (passed, said) = crate::promtool::run(&["check", "rules", &file.to_string_lossy()], "").await;
    let _ = std::fs::remove_file(&file);
    assert!(passed, "the dashboard's queries:\n{said}");
}

fn rust_sources(dir: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(rust_sources(&path.to_string_lossy()));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
    found
}

/// Every `minifig_…` word in `text` (lowercase letters and underscores after the prefix).
fn metric_names(text: &str) -> std::collections::BTreeSet<String> {
    text.match_indices("minifig_")
        .filter(|(at, _)| !text[..*at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c == '_')).unwrap_or(rest.len());
            rest[..end].to_owned()
        })
        .collect()
}

fn collect_exprs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                match (key.as_str(), field) {
                    ("expr", Value::String(expr)) => into.push(expr.clone()),
                    _ => collect_exprs(field, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, into)),
        _ => {}
    }
}
