//! Heap bytes held per idle WebSocket and per idle subscription, counted by the counting
//! allocator of `support/counting.rs`. A change that makes every open subscription heavier
//! fails here rather than showing up as memory growth in production. This is its own test
//! binary, with one test, so that no other test allocates while it counts.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[path = "support/counting.rs"]
mod counting;
#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use counting::LIVE_BYTES;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

/// Enough sockets that one-off allocations (a map growing, a pool connection) vanish in
/// the average.
const SOCKETS: usize = 300;

/// What one idle socket and one idle `orderStatus` subscription may hold, in the test
/// profile (debug builds lay futures out larger than release builds do). Measured at
/// 10.6 KiB per socket (the client's share included, with its read buffer cut to 1 KiB)
/// and 10.1 KiB per subscription, most of which is async-graphql's per-subscription state
/// (its boxed stream, the operation's cloned selection, its variables map). The bounds
/// leave about 10 % for what varies between runs (hash maps growing), not for a second
/// copy of anything.
const MAX_BYTES_PER_SOCKET: isize = 12 * 1024;
const MAX_BYTES_PER_SUBSCRIPTION: isize = 11 * 1024;

const ORDER_STATUS: &str = "subscription($id: ID!) { orderStatus(orderId: $id) { orderId status version at note } }";

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_subscription_holds_a_few_kilobytes_of_heap() {
    let app = helpers::spawn_app().await;
    let customer = app.register(&helpers::unique_username("memory")).await;
    let mut orders = Vec::new();
    for _ in 0..SOCKETS {
        let order = app.place_simple_order(&customer.token, 1).await;
        orders.push(order["id"].as_str().expect("order id").to_owned());
    }
    // A first round opens and closes sockets and subscriptions, so that lazily created
    // state (the pool's connections, the feed readers, caches) exists before counting.
    let warm = open_sockets(&app, &customer.token, 20).await;
    let mut warm = warm;
    for (socket, order) in warm.iter_mut().zip(&orders) {
        subscribe(socket, "w", order).await;
    }
    drop(warm);
    settle().await;

    let before = LIVE_BYTES.load(Ordering::Relaxed);
    let mut sockets = open_sockets(&app, &customer.token, SOCKETS).await;
    settle().await;
    let with_sockets = LIVE_BYTES.load(Ordering::Relaxed);
    for (socket, order) in sockets.iter_mut().zip(&orders) {
        subscribe(socket, "s", order).await;
    }
    settle().await;
    let with_subscriptions = LIVE_BYTES.load(Ordering::Relaxed);
    let per_socket = (with_sockets - before) / SOCKETS as isize;
    let per_subscription = (with_subscriptions - with_sockets) / SOCKETS as isize;
    println!("heap per idle socket: {per_socket} B (client and server); per idle subscription: {per_subscription} B");
    assert!(
        per_socket <= MAX_BYTES_PER_SOCKET,
        "an idle socket holds {per_socket} B of heap (client and server), more than {MAX_BYTES_PER_SOCKET}"
    );
    assert!(
        per_subscription <= MAX_BYTES_PER_SUBSCRIPTION,
        "an idle orderStatus subscription holds {per_subscription} B of heap, more than {MAX_BYTES_PER_SUBSCRIPTION}"
    );
    drop(sockets);
}

/// Lets the server finish what the last messages started (tasks ending, buffers freed).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn open_sockets(app: &helpers::TestApp, token: &str, count: usize) -> Vec<Socket> {
    let url = format!("{}/graphql", app.address.replacen("http://", "ws://", 1));
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        let mut request = url.as_str().into_client_request().expect("request");
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
        // The client's own buffers count too; tungstenite's default read buffer (128 KiB)
        // would hide the server's share.
        let config = WebSocketConfig::default().read_buffer_size(1024);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), true).await.expect("upgrade");
        let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
        socket.send(Message::text(init.to_string())).await.expect("init sent");
        let ack = next_message(&mut socket).await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        sockets.push(socket);
    }
    sockets
}

/// Starts `orderStatus` on `order` as operation `id` and waits for its first event.
async fn subscribe(socket: &mut Socket, id: &str, order: &str) {
    let message =
        json!({"id": id, "type": "subscribe", "payload": {"query": ORDER_STATUS, "variables": {"id": order}}});
    socket.send(Message::text(message.to_string())).await.expect("subscribe sent");
    let first = next_message(socket).await;
    assert_eq!(first["type"], "next", "{first}");
    assert_eq!(first["payload"]["data"]["orderStatus"]["status"], "PENDING", "{first}");
}

async fn next_message(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        if let Message::Text(text) = message {
            let value: Value = serde_json::from_str(&text).expect("JSON");
            if value["type"] != "ping" && value["type"] != "pong" {
                return value;
            }
        }
    }
}
