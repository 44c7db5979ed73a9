//! How long a status change takes from `updateOrderStatus` to a subscriber on another API
//! instance: PostgreSQL + Redis, two instances in this process, one `orderStatus`
//! subscription per order over graphql-transport-ws on instance B, mutations sent to
//! instance A. Prints the median, p90, p99 and max over every transition.
//!
//! Needs PostgreSQL and Redis (`TEST_POSTGRES_URL`, `TEST_REDIS_URL`, defaults as for the
//! tests); `cargo bench --bench status_latency`. Bounded: `ORDERS` orders, all on loopback.

use std::time::{Duration, Instant};

use clap::Parser;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use minifig::config::Settings;
use minifig::startup::Application;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

const ORDERS: usize = 200;
const FACTORY: (&str, &str) = ("bench-factory", "Bench-Factory-1");

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
}

async fn start(database_url: &str, redis_url: &str, prefix: &str) -> String {
    let settings = Cli::try_parse_from([
        "bench",
        "--database-url",
        database_url,
        "--port",
        "0",
        "--jwt-secret",
        &"b".repeat(40),
        "--redis-url",
        redis_url,
        "--redis-key-prefix",
        prefix,
        "--factory-username",
        FACTORY.0,
        "--factory-password",
        FACTORY.1,
    ])
    .expect("settings")
    .settings;
    let app = Application::build(settings).await.expect("server");
    let address = format!("127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until(std::future::pending()));
    address
}

async fn gql(client: &reqwest::Client, address: &str, token: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request =
        client.post(format!("http://{address}/graphql")).json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("sent").json().await.expect("json")
}

#[tokio::main]
async fn main() {
    let admin_url =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let redis_url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let admin = Database::connect(&admin_url).await.expect("PostgreSQL");
    let name = format!("minifig_bench_{}", uuid::Uuid::new_v4().simple());
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create database");
    let database_url = format!("{}/{name}", admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base));
    let prefix = format!("bench:{}:", uuid::Uuid::new_v4().simple());

    let a = start(&database_url, &redis_url, &prefix).await;
    let b = start(&database_url, &redis_url, &prefix).await;
    let client = reqwest::Client::new();
    let register = gql(&client, &a, None, "mutation { register(input: {username: \"bench\", email: \"bench@example.com\", password: \"TestTest123@\", address: \"1 Bench St\"}) { token } }", json!({})).await;
    let customer = register["data"]["register"]["token"].as_str().expect("customer token").to_owned();
    let login = gql(
        &client,
        &a,
        None,
        "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { token } }",
        json!({"u": FACTORY.0, "p": FACTORY.1}),
    )
    .await;
    let factory = login["data"]["login"]["token"].as_str().expect("factory token").to_owned();
    let figurines = gql(&client, &a, None, "{ figurines { id } }", json!({})).await;
    let figurine = figurines["data"]["figurines"][0]["id"].as_str().unwrap().to_owned();

    let mut request = format!("ws://{b}/graphql").into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("WebSocket");
    socket
        .send(Message::text(
            json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {customer}")}}).to_string(),
        ))
        .await
        .unwrap();
    let ack = socket.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");

    let mut histogram = Histogram::<u64>::new(3).unwrap();
    for i in 0..ORDERS {
        let placed = gql(
            &client,
            &a,
            Some(&customer),
            "mutation($f: ID!) { placeOrder(input: {items: [{figurineId: $f, quantity: 1}]}) { id } }",
            json!({"f": figurine}),
        )
        .await;
        let order_id = placed["data"]["placeOrder"]["id"].as_str().expect("order").to_owned();
        let id = i.to_string();
        socket.send(Message::text(json!({"id": id, "type": "subscribe", "payload": {"query": "subscription($o: ID!) { orderStatus(orderId: $o) { version status } }", "variables": {"o": order_id}}}).to_string())).await.unwrap();
        next_version(&mut socket, &id).await; // the current state, version 1
        for (version, status) in [(2, "ACCEPTED"), (3, "IN_PRODUCTION"), (4, "SHIPPED")] {
            let start = Instant::now();
            let moved = gql(&client, &a, Some(&factory), "mutation($o: ID!, $s: OrderStatus!) { updateOrderStatus(input: {orderId: $o, status: $s}) { version } }", json!({"o": order_id, "s": status})).await;
            assert_eq!(moved["data"]["updateOrderStatus"]["version"], version, "{moved}");
            let seen = next_version(&mut socket, &id).await;
            histogram.record(start.elapsed().as_micros() as u64).unwrap();
            assert_eq!(seen, version);
        }
    }
    let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "updateOrderStatus on A -> orderStatus subscriber on B (PostgreSQL + Redis), n={}: median {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        histogram.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        histogram.max() as f64 / 1000.0
    );
    drop(socket);
    admin.execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await.ok();
}

/// The version of the next `next` message for operation `id` (skipping pings).
async fn next_version<S>(socket: &mut S, id: &str) -> i64
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + futures::Sink<Message> + Unpin,
{
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        let Ok(text) = message.to_text() else { continue };
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        match value["type"].as_str() {
            Some("next") if value["id"] == id => {
                return value["payload"]["data"]["orderStatus"]["version"].as_i64().expect("version");
            }
            Some("ping") => {
                let _ = socket.send(Message::text(json!({"type": "pong"}).to_string())).await;
            }
            Some("error") => panic!("subscription failed: {value}"),
            _ => {}
        }
    }
}
