//! The way from the database to Redis: placed orders reach the stream `<prefix>orders`,
//! status changes reach the channel `<prefix>order-status`, nothing is lost while Redis is
//! down, and unfinished orders are handed out again after Redis forgot them.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fred::prelude::*;
use serde_json::Value;

use crate::helpers::{
    TestApp, spawn_app_on_redis, spawn_app_with, test_redis_url, unique_redis_prefix, unique_username,
};

/// How long "eventually" may take before a test gives up.
const EVENTUALLY: Duration = Duration::from_secs(20);

async fn redis_client(url: &str) -> Client {
    let client = Builder::from_config(Config::from_url(url).unwrap()).build().unwrap();
    client.init().await.unwrap();
    client
}

/// The `order_id`s on the stream, oldest first.
async fn stream_order_ids(client: &Client, key: &str) -> Vec<String> {
    let entries: Vec<(String, HashMap<String, String>)> = client.xrange(key, "-", "+", None).await.unwrap_or_default();
    entries.into_iter().filter_map(|(_, fields)| fields.get("order_id").cloned()).collect()
}

async fn eventually_on_stream(client: &Client, key: &str, order_id: &str) -> usize {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let ids = stream_order_ids(client, key).await;
        let count = ids.iter().filter(|id| *id == order_id).count();
        if count > 0 {
            return count;
        }
        assert!(tokio::time::Instant::now() < deadline, "order {order_id} never reached {key}; stream has {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_placed_order_reaches_the_orders_stream_once() {
    let (app, prefix) = spawn_app_on_redis(&[]).await;
    let redis = redis_client(&test_redis_url()).await;
    let customer = app.register(&unique_username("ada")).await;
    let order = app.place_simple_order(&customer.token, 2).await;
    let order_id = order["id"].as_str().unwrap();

    let key = format!("{prefix}orders");
    assert_eq!(eventually_on_stream(&redis, &key, order_id).await, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stream_order_ids(&redis, &key).await, vec![order_id.to_owned()], "one entry per order");
    let _: i64 = redis.del(&key).await.unwrap();
}

/// The database and the redelivery sweep are the record: the stream only carries orders to
/// the factories, so it is trimmed instead of growing with every order forever.
#[tokio::test]
async fn the_orders_stream_is_trimmed_to_about_its_cap() {
    const CAP: usize = 100;
    const PLACED: usize = 300;
    let (app, prefix) = spawn_app_on_redis(&["--orders-stream-max-len", &CAP.to_string()]).await;
    let redis = redis_client(&test_redis_url()).await;
    let customer = app.register(&unique_username("many")).await;
    let mut last = String::new();
    for _ in 0..PLACED {
        last = app.place_simple_order(&customer.token, 1).await["id"].as_str().unwrap().to_owned();
    }

    let key = format!("{prefix}orders");
    eventually_on_stream(&redis, &key, &last).await;
    let length: usize = redis.xlen(&key).await.unwrap();

    // `MAXLEN ~` trims whole nodes (100 entries each by default), so the length lands
    // between the cap and the cap plus a node.
    assert!((CAP..=2 * CAP).contains(&length), "{length} entries after {PLACED} orders with a cap of {CAP}");
}

#[tokio::test]
async fn status_changes_are_published_on_the_status_channel_in_the_contracts_format() {
    let (app, prefix) = spawn_app_on_redis(&[]).await;
    let subscriber =
        Builder::from_config(Config::from_url(&test_redis_url()).unwrap()).build_subscriber_client().unwrap();
    subscriber.init().await.unwrap();
    let mut messages = subscriber.message_rx();
    subscriber.subscribe(format!("{prefix}order-status")).await.unwrap();

    let customer = app.register(&unique_username("ada")).await;
    let order = app.place_simple_order(&customer.token, 1).await;
    let order_id = order["id"].as_str().unwrap();
    let factory = app.factory_token().await;
    let moved = app.update_status(&factory, order_id, "ACCEPTED", Some("on the bench")).await;
    assert_eq!(moved["data"]["updateOrderStatus"]["version"], 2, "{moved}");

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message = tokio::time::timeout(EVENTUALLY, messages.recv()).await.expect("a status event").unwrap();
        let event: Value = serde_json::from_str(&message.value.as_string().unwrap()).unwrap();
        seen.push(event);
    }
    assert_eq!(seen[0]["orderId"], order_id);
    assert_eq!(seen[0]["userId"], customer.id.as_str());
    assert_eq!((seen[0]["status"].as_str(), seen[0]["version"].as_i64()), (Some("PENDING"), Some(1)));
    assert!(seen[0]["note"].is_null() && seen[0]["at"].is_string());
    assert_eq!((seen[1]["status"].as_str(), seen[1]["version"].as_i64()), (Some("ACCEPTED"), Some(2)));
    assert_eq!(seen[1]["note"], "on the bench");
    // The contract's fields, and `seq`: the event's place in its customer's sequence.
    assert_eq!((seen[0]["seq"].as_i64(), seen[1]["seq"].as_i64()), (Some(1), Some(2)));
    let mut keys: Vec<_> = seen[1].as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["at", "note", "orderId", "seq", "status", "userId", "version"]);
}

#[tokio::test]
async fn an_order_that_redis_forgot_is_handed_out_again_until_it_is_final() {
    let (app, prefix) = spawn_app_on_redis(&["--order-redeliver-secs", "1"]).await;
    let redis = redis_client(&test_redis_url()).await;
    let key = format!("{prefix}orders");
    let customer = app.register(&unique_username("ada")).await;
    let pending = app.place_simple_order(&customer.token, 1).await;
    let shipped = app.place_simple_order(&customer.token, 1).await;
    let (pending_id, shipped_id) = (pending["id"].as_str().unwrap(), shipped["id"].as_str().unwrap());
    eventually_on_stream(&redis, &key, pending_id).await;
    let factory = app.factory_token().await;
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        app.update_status(&factory, shipped_id, status, None).await;
    }
    // A sweep that read the order just before it shipped may still hand it out once (which
    // a factory acknowledges at once); let any such sweep finish before Redis forgets.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Redis restarts empty: the stream is gone.
    let _: i64 = redis.del(&key).await.unwrap();
    eventually_on_stream(&redis, &key, pending_id).await;
    let ids = stream_order_ids(&redis, &key).await;
    assert!(!ids.contains(&shipped_id.to_owned()), "a final order is never handed out again: {ids:?}");
    let _: i64 = redis.del(&key).await.unwrap();
}

/// A Redis server of the test's own, so that it can be killed and restarted empty without
/// disturbing other tests.
pub struct PrivateRedis {
    port: u16,
    child: Child,
}

impl PrivateRedis {
    pub fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test installs it)");
        PrivateRedis { port, child }
    }

    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn wait_until_up(url: &str) {
        wait_for_redis(url).await;
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A server on a Redis of the test's own, under a fresh key prefix: that Redis, a client
/// of it, the server and the prefix.
async fn spawn_app_on_private_redis() -> (PrivateRedis, Client, TestApp, String) {
    let redis = PrivateRedis::start();
    let client = wait_for_redis(&redis.url()).await;
    let prefix = unique_redis_prefix();
    let app = spawn_app_with(&["--redis-url", &redis.url(), "--redis-key-prefix", &prefix]).await;
    (redis, client, app, prefix)
}

async fn wait_for_redis(url: &str) -> Client {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let client = Builder::from_config(Config::from_url(url).unwrap()).build().unwrap();
        if client.init().await.is_ok() {
            return client;
        }
        assert!(tokio::time::Instant::now() < deadline, "redis-server did not start at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn orders_placed_while_redis_is_down_reach_it_when_it_comes_back_empty() {
    let (mut redis, _, app, prefix) = spawn_app_on_private_redis().await;
    let url = redis.url();
    let customer = app.register(&unique_username("ada")).await;
    let key = format!("{prefix}orders");

    redis.kill();
    let mut placed = Vec::new();
    for _ in 0..5 {
        let order = app.place_simple_order(&customer.token, 1).await;
        assert_eq!(order["status"], "PENDING", "placing an order does not need Redis");
        placed.push(order["id"].as_str().unwrap().to_owned());
    }
    let ready = reqwest::get(format!("{}/readyz", app.address)).await.unwrap();
    assert_eq!(ready.status(), 503, "not ready without Redis");
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(body["outbox"]["waiting"].as_i64().is_some_and(|n| n >= 10), "two rows per order wait: {body}");
    assert!(body["outbox"]["oldestAgeSeconds"].as_f64().is_some_and(|age| age >= 0.0), "{body}");

    let port = redis.port;
    drop(redis);
    let _redis = PrivateRedis::start_on(port);
    let client = wait_for_redis(&url).await;
    for id in &placed {
        eventually_on_stream(&client, &key, id).await;
    }
    let ids = stream_order_ids(&client, &key).await;
    assert_eq!(ids.len(), placed.len(), "each order once: {ids:?}");
    let ready = reqwest::get(format!("{}/readyz", app.address)).await.unwrap();
    assert_eq!(ready.status(), 200);
    // The relay deletes what it published just after publishing it.
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        let body: serde_json::Value =
            reqwest::get(format!("{}/readyz", app.address)).await.unwrap().json().await.unwrap();
        if body["outbox"] == serde_json::json!({"waiting": 0, "oldestAgeSeconds": null}) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the outbox never emptied: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_redis_that_refuses_xadd_holds_back_no_status_event() {
    let (_redis, client, app, prefix) = spawn_app_on_private_redis().await;
    let factory = app.factory_token().await;
    let customer = app.register(&unique_username("oom")).await;
    let followed = app.place_simple_order(&customer.token, 1).await["id"].as_str().unwrap().to_owned();
    let key = format!("{prefix}orders");
    eventually_on_stream(&client, &key, &followed).await;
    let mut subscriber = crate::websocket::WsClient::connect(&app, crate::websocket::TRANSPORT).await;
    subscriber.init(serde_json::json!({"Authorization": format!("Bearer {}", customer.token)})).await;
    subscriber
        .subscribe(
            "o",
            "subscription($id: ID!) { orderStatus(orderId: $id) { status version } }",
            serde_json::json!({"id": followed}),
        )
        .await;
    assert_eq!(subscriber.next_data("o").await["orderStatus"]["version"], 1);

    // Out of memory with `noeviction`: every XADD is refused with OOM, PUBLISH still works.
    config_set(&client, "maxmemory-policy", "noeviction").await;
    config_set(&client, "maxmemory", "1").await;
    let refused = app.place_simple_order(&customer.token, 1).await["id"].as_str().unwrap().to_owned();
    for status in ["ACCEPTED", "IN_PRODUCTION"] {
        let body = app.update_status(&factory, &followed, status, None).await;
        assert!(body.get("errors").is_none(), "{body}");
    }
    // The refused order's row does not hold back the status events committed after it.
    assert_eq!(subscriber.next_data("o").await["orderStatus"]["status"], "ACCEPTED");
    assert_eq!(subscriber.next_data("o").await["orderStatus"]["status"], "IN_PRODUCTION");
    assert!(!stream_order_ids(&client, &key).await.contains(&refused), "XADD was refused");

    // Memory again: the refused order reaches the stream, once.
    config_set(&client, "maxmemory", "0").await;
    eventually_on_stream(&client, &key, &refused).await;
    let ids = stream_order_ids(&client, &key).await;
    assert_eq!(ids.iter().filter(|id| **id == refused).count(), 1, "{ids:?}");
}

async fn config_set(client: &Client, parameter: &str, value: &str) {
    let command = fred::types::CustomCommand::new_static("CONFIG", None, false);
    let _: fred::types::Value = client.custom(command, vec!["SET", parameter, value]).await.unwrap();
}

/// While Redis is down, status events wait in the outbox as the payload the relay will
/// publish; on PostgreSQL that payload is built in SQL, so it is checked here against the
/// contract's JSON and against what the API answers for the same event.
#[tokio::test]
async fn status_events_waiting_in_the_outbox_are_the_contracts_json() {
    use sea_orm::{ConnectionTrait, Database};

    let (mut redis, _, app, _) = spawn_app_on_private_redis().await;
    let factory = app.factory_token().await;
    let customer = app.register(&unique_username("payload")).await;
    redis.kill();
    let order_id = app.place_simple_order(&customer.token, 1).await["id"].as_str().unwrap().to_owned();
    let moved = app.update_status(&factory, &order_id, "ACCEPTED", Some("on the bench")).await;
    assert!(moved.get("errors").is_none(), "{moved}");
    let history = app.order(&customer.token, &order_id).await;
    let history = history["data"]["order"]["history"].as_array().cloned().unwrap_or_else(|| panic!("{history}"));

    let db = Database::connect(&app.database_url).await.unwrap();
    let statement = sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT payload FROM outbox WHERE topic = 'order-status' ORDER BY id",
    );
    let rows = db.query_all_raw(statement).await.unwrap();
    let payloads: Vec<Value> =
        rows.iter().map(|row| serde_json::from_str(&row.try_get::<String>("", "payload").unwrap()).unwrap()).collect();
    assert_eq!(payloads.len(), 2, "{payloads:?}");
    for (payload, (status, version, note)) in
        payloads.iter().zip([("PENDING", 1, Value::Null), ("ACCEPTED", 2, "on the bench".into())])
    {
        let mut keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["at", "note", "orderId", "seq", "status", "userId", "version"], "{payload}");
        assert_eq!(payload["orderId"], order_id.as_str());
        assert_eq!(payload["userId"], customer.id.as_str());
        assert_eq!((payload["status"].as_str(), payload["version"].as_i64()), (Some(status), Some(version)));
        assert_eq!(payload["note"], note);
        assert_eq!(payload["seq"].as_i64(), Some(version), "the customer's first and second events");
        let event = &history[version as usize - 1];
        let at = |value: &Value| value.as_str().and_then(|at| at.parse::<chrono::DateTime<chrono::Utc>>().ok());
        assert_eq!(at(&payload["at"]), at(&event["at"]), "the same time as the history: {payload} {event}");
    }
}
