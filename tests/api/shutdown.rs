//! SIGTERM, as an orchestrator sends it: the real binary drains (`/readyz` 503, everything
//! else served), closes its sockets with 1001 so that clients reconnect elsewhere, and
//! exits 0.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ORDER_FIELDS, PASSWORD, ProcessInstance, spawn_server_process, unique_username};
use crate::websocket::{LEGACY, TRANSPORT, WsClient};

const WAIT: Duration = Duration::from_secs(10);

async fn register(server: &ProcessInstance) -> String {
    let username = unique_username("drain");
    let body = server
        .graphql(
            None,
            "mutation($input: RegisterInput!) { register(input: $input) { token } }",
            json!({"input": {"username": username, "email": format!("{username}@example.com"), "password": PASSWORD, "address": "1 Main St"}}),
        )
        .await;
    body["data"]["register"]["token"].as_str().unwrap_or_else(|| panic!("register failed: {body}")).to_owned()
}

async fn figurine_id(server: &ProcessInstance) -> String {
    let body = server.graphql(None, "{ figurines { id } }", json!({})).await;
    body["data"]["figurines"][0]["id"].as_str().unwrap_or_else(|| panic!("no catalog: {body}")).to_owned()
}

#[tokio::test]
async fn sigterm_drains_then_closes_every_socket_with_1001_and_exits_0() {
    // The default drain (5 s): long enough for what the test does meanwhile.
    let mut server = spawn_server_process(&["--shutdown-close-spread-ms", "300"]).await;
    let token = register(&server).await;
    let figurine = figurine_id(&server).await;
    let mut sockets = Vec::new();
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect_to(&server.address, Some(protocol), None).await.expect("upgrade");
        client.init(json!({"token": token})).await;
        client.subscribe("events", "subscription { myOrderEvents { orderId status } }", json!({})).await;
        client.barrier().await;
        sockets.push(client);
    }
    let http = reqwest::Client::new();

    server.terminate();

    // Not ready any more, as soon as the signal is handled…
    let deadline = tokio::time::Instant::now() + WAIT;
    let readiness = loop {
        let response = http.get(format!("{}/readyz", server.address)).send().await.expect("still listening");
        if response.status() == 503 {
            break response.json::<Value>().await.expect("a JSON body");
        }
        assert!(tokio::time::Instant::now() < deadline, "/readyz never answered 503 after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(readiness, json!({"status": "draining"}));
    // …while everything else is served: probes, requests, and the open subscriptions.
    let live = http.get(format!("{}/healthz", server.address)).send().await.expect("still listening");
    assert_eq!(live.status(), 200);
    let placed = server
        .graphql(
            Some(&token),
            &format!("mutation($input: PlaceOrderInput!) {{ placeOrder(input: $input) {{ {ORDER_FIELDS} }} }}"),
            json!({"input": {"items": [{"figurineId": figurine, "quantity": 1}]}}),
        )
        .await;
    let order_id = placed["data"]["placeOrder"]["id"].as_str().unwrap_or_else(|| panic!("{placed}")).to_owned();
    for client in &mut sockets {
        let event = client.next_data("events").await;
        assert_eq!(event["myOrderEvents"], json!({"orderId": order_id, "status": "PENDING"}), "{}", client.protocol);
    }

    // Then every socket is told the server is going away…
    for client in &mut sockets {
        assert_eq!(client.closed().await, (1001, "Server shutting down".to_owned()), "{}", client.protocol);
    }
    // …and the process exits cleanly (the embedded factory stopping with it).
    let status = server.exit_status(Duration::from_secs(60)).await;
    assert!(status.success(), "the server exits 0 after SIGTERM: {status:?}");
}
