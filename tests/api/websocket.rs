//! GraphQL over WebSocket on `/graphql` (contract sections 1 and 4): both subprotocols,
//! authentication at `connection_init` or on the upgrade request, the graphql-transport-ws
//! close codes, keep-alives, token expiry, limits. A real WebSocket client (tungstenite)
//! against the real server.
//!
//! [`WsClient`] is shared with the subscription tests.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{JWT_SECRET, TestApp, spawn_app, spawn_app_with, unique_username};

/// The graphql-ws library's subprotocol (GraphiQL).
pub const TRANSPORT: &str = "graphql-transport-ws";
/// The legacy subscriptions-transport-ws subprotocol (GraphQL Playground).
pub const LEGACY: &str = "graphql-ws";

/// How long anything that should happen may take before a test gives up ("eventually").
const WAIT: Duration = Duration::from_secs(10);

/// What the server sent: a JSON message, or the close frame's code and reason.
#[derive(Debug)]
pub enum Incoming {
    Json(Value),
    Closed(u16, String),
}

/// A GraphQL-over-WebSocket client speaking either subprotocol.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: &'static str,
    barriers: u32,
}

impl WsClient {
    /// Opens a socket offering `protocol`.
    pub async fn connect(app: &TestApp, protocol: &'static str) -> Self {
        Self::connect_with(app, Some(protocol), None).await.expect("the WebSocket upgrade succeeds")
    }

    /// Opens a socket offering `protocols` (as the header value; `None`: no header), with an
    /// `Authorization` header when given. The protocol spoken is the one the server chose.
    pub async fn connect_with(
        app: &TestApp,
        protocols: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Self, tungstenite::Error> {
        Self::connect_to(&app.address, protocols, authorization).await
    }

    /// [`WsClient::connect_with`] to the server at `address` (`http://host:port`).
    pub async fn connect_to(
        address: &str,
        protocols: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<Self, tungstenite::Error> {
        let request = upgrade_request(address, protocols, authorization);
        let (socket, response) = tokio_tungstenite::connect_async(request).await?;
        Ok(Self::upgraded(socket, &response))
    }

    /// Opens a socket offering `protocol` from the local address `source` (any of
    /// 127.0.0.0/8), so that the server sees another client address.
    pub async fn connect_from(
        app: &TestApp,
        source: std::net::IpAddr,
        protocol: &str,
    ) -> Result<Self, tungstenite::Error> {
        let request = upgrade_request(&app.address, Some(protocol), None);
        let server = app.address.trim_start_matches("http://").parse::<std::net::SocketAddr>().expect("host:port");
        let tcp = tokio::net::TcpSocket::new_v4()?;
        tcp.bind(std::net::SocketAddr::new(source, 0))?;
        let stream = tcp.connect(server).await?;
        let (socket, response) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await?;
        Ok(Self::upgraded(socket, &response))
    }

    fn upgraded(
        socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
        response: &tungstenite::handshake::client::Response,
    ) -> Self {
        let chosen = response.headers().get("Sec-WebSocket-Protocol").and_then(|v| v.to_str().ok());
        let protocol = match chosen {
            Some(LEGACY) => LEGACY,
            Some(TRANSPORT) | None => TRANSPORT,
            Some(other) => panic!("the server chose an unknown subprotocol {other}"),
        };
        WsClient { socket, protocol, barriers: 0 }
    }

    pub fn is_legacy(&self) -> bool {
        self.protocol == LEGACY
    }

    pub async fn send(&mut self, message: Value) {
        self.send_raw(Message::text(message.to_string())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.socket.send(message).await.expect("the message is sent");
    }

    /// The next frame of any kind, ping frames included, answering nothing itself (but
    /// tungstenite answers a ping frame, as every WebSocket library does, on the next read).
    pub async fn recv_frame(&mut self) -> Message {
        tokio::time::timeout(WAIT, self.socket.next())
            .await
            .unwrap_or_else(|_| panic!("nothing from the server within {WAIT:?}"))
            .expect("the socket is open")
            .expect("a frame")
    }

    /// The next message, keep-alives included.
    pub async fn recv_any(&mut self) -> Incoming {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("nothing from the server within {WAIT:?}"));
            match message {
                Some(Ok(Message::Text(text))) => {
                    return Incoming::Json(serde_json::from_str(text.as_str()).expect("the server sends JSON"));
                }
                Some(Ok(Message::Close(Some(frame)))) => {
                    return Incoming::Closed(u16::from(frame.code), frame.reason.as_str().to_owned());
                }
                Some(Ok(Message::Close(None))) => return Incoming::Closed(1005, String::new()),
                Some(Ok(Message::Binary(_))) => panic!("the server sent a binary message"),
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("the socket failed before a close frame: {err}"),
                None => panic!("the socket ended without a close frame"),
            }
        }
    }

    /// The text of the next message that is not a keep-alive, exactly as the server sent it.
    pub async fn recv_text(&mut self) -> String {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("nothing from the server within {WAIT:?}"));
            match message {
                Some(Ok(Message::Text(text))) if text.as_str() == r#"{"type":"ping"}"# => {
                    self.send(json!({"type": "pong"})).await
                }
                Some(Ok(Message::Text(text))) if text.as_str() == r#"{"type":"ka"}"# => {}
                Some(Ok(Message::Text(text))) => return text.as_str().to_owned(),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// The next message that is not a keep-alive (server pings are answered).
    pub async fn recv(&mut self) -> Value {
        loop {
            match self.recv_any().await {
                Incoming::Json(message) if message["type"] == "ka" => continue,
                Incoming::Json(message) if message["type"] == "ping" => self.send(json!({"type": "pong"})).await,
                Incoming::Json(message) => return message,
                Incoming::Closed(code, reason) => panic!("the server closed the socket: {code} {reason}"),
            }
        }
    }

    /// Waits for the close frame, skipping messages, and returns its code and reason.
    pub async fn closed(&mut self) -> (u16, String) {
        loop {
            if let Incoming::Closed(code, reason) = self.recv_any().await {
                return (code, reason);
            }
        }
    }

    /// `connection_init` with `payload` (`null`: none), and waits for `connection_ack`.
    pub async fn init(&mut self, payload: Value) {
        self.send(init_message(payload)).await;
        let ack = self.recv().await;
        assert_eq!(ack["type"], "connection_ack", "expected connection_ack, got {ack}");
    }

    /// Starts an operation (`subscribe`, or `start` for the legacy protocol).
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.is_legacy() { "start" } else { "subscribe" };
        self.send(json!({"type": kind, "id": id, "payload": {"query": query, "variables": variables}})).await;
    }

    /// Stops an operation (`complete`, or `stop` for the legacy protocol).
    pub async fn stop(&mut self, id: &str) {
        let kind = if self.is_legacy() { "stop" } else { "complete" };
        self.send(json!({"type": kind, "id": id})).await;
    }

    /// Returns once the server has taken up every operation sent before: it runs a query
    /// and waits for its result (the server polls new operations before it reads further
    /// messages). Other messages must not arrive meanwhile.
    pub async fn barrier(&mut self) {
        self.barriers += 1;
        let id = format!("barrier-{}", self.barriers);
        self.subscribe(&id, "{ __typename }", json!({})).await;
        let data = self.recv().await;
        assert_eq!(data["id"], id.as_str(), "expected the barrier's result, got {data}");
        assert_eq!(data["payload"]["data"]["__typename"], "Query", "{data}");
        self.expect_complete(&id).await;
    }

    /// The `data` of the next result of operation `id` (`next`, or legacy `data`).
    pub async fn next_data(&mut self, id: &str) -> Value {
        let message = self.recv().await;
        let kind = if self.is_legacy() { "data" } else { "next" };
        assert_eq!(message["type"], kind, "expected a result of {id}, got {message}");
        assert_eq!(message["id"], id, "expected a result of {id}, got {message}");
        assert!(message["payload"].get("errors").is_none(), "a result with errors: {message}");
        message["payload"]["data"].clone()
    }

    /// The errors of the `error` message that ends operation `id`.
    pub async fn expect_error(&mut self, id: &str) -> Vec<Value> {
        let message = self.recv().await;
        assert_eq!(message["type"], "error", "expected an error for {id}, got {message}");
        assert_eq!(message["id"], id, "{message}");
        message["payload"].as_array().unwrap_or_else(|| panic!("an errors array: {message}")).clone()
    }

    pub async fn expect_complete(&mut self, id: &str) {
        let message = self.recv().await;
        assert_eq!(message, json!({"type": "complete", "id": id}), "expected {id} to complete");
    }
}

/// The upgrade request for `/graphql` at `address`.
fn upgrade_request(
    address: &str,
    protocols: Option<&str>,
    authorization: Option<&str>,
) -> tungstenite::handshake::client::Request {
    let url = format!("{}/graphql", address.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().expect("a WebSocket URL");
    if let Some(protocols) = protocols {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(protocols).unwrap());
    }
    if let Some(authorization) = authorization {
        request.headers_mut().insert("Authorization", HeaderValue::from_str(authorization).unwrap());
    }
    request
}

pub fn init_message(payload: Value) -> Value {
    if payload.is_null() {
        json!({"type": "connection_init"})
    } else {
        json!({"type": "connection_init", "payload": payload})
    }
}

/// The `extensions.code` of each error.
pub fn codes(errors: &[Value]) -> Vec<&str> {
    errors
        .iter()
        .map(|e| e["extensions"]["code"].as_str().unwrap_or_else(|| panic!("an error without a code: {e}")))
        .collect()
}

/// A token for `user_id` signed with the test key that expires `secs` seconds from now.
fn token_expiring_in(user_id: &str, secs: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": user_id, "role": "CUSTOMER", "iat": now, "exp": now + secs});
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(JWT_SECRET.as_bytes()))
        .unwrap()
}

const ME: &str = "{ me { username role } }";
const MY_EVENTS: &str = "subscription { myOrderEvents { orderId status version } }";

/// Runs `{ me }` over the socket and returns the username it answers.
async fn me_over(client: &mut WsClient) -> String {
    client.subscribe("me", ME, json!({})).await;
    let data = client.next_data("me").await;
    client.expect_complete("me").await;
    data["me"]["username"].as_str().unwrap_or_else(|| panic!("me over the socket: {data}")).to_owned()
}

// --- the subprotocols -------------------------------------------------------------------

#[tokio::test]
async fn both_subprotocols_run_a_subscription_to_its_end() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    for protocol in [TRANSPORT, LEGACY] {
        let customer = app.register(&unique_username("sub")).await;
        let order = app.place_simple_order(&customer.token, 1).await;
        let order_id = order["id"].as_str().unwrap();
        let mut client = WsClient::connect(&app, protocol).await;
        assert_eq!(client.protocol, protocol);
        client.init(json!({"Authorization": format!("Bearer {}", customer.token)})).await;
        client
            .subscribe(
                "1",
                "subscription($id: ID!) { orderStatus(orderId: $id) { status version } }",
                json!({"id": order_id}),
            )
            .await;
        assert_eq!(client.next_data("1").await, json!({"orderStatus": {"status": "PENDING", "version": 1}}));
        for (status, version) in [("ACCEPTED", 2), ("IN_PRODUCTION", 3), ("SHIPPED", 4)] {
            let body = app.update_status(&factory, order_id, status, None).await;
            assert!(body.get("errors").is_none(), "{body}");
            assert_eq!(
                client.next_data("1").await,
                json!({"orderStatus": {"status": status, "version": version}}),
                "{protocol}"
            );
        }
        client.expect_complete("1").await;
    }
}

#[tokio::test]
async fn playground_may_start_before_the_ack_arrives() {
    // subscriptions-transport-ws sends `start` right after `connection_init`, without
    // waiting for `connection_ack`; the server handles messages in order, so that works.
    let app = spawn_app().await;
    let customer = app.register(&unique_username("playground")).await;
    let mut client = WsClient::connect(&app, LEGACY).await;
    client.send(init_message(json!({"Authorization": format!("Bearer {}", customer.token)}))).await;
    client.subscribe("1", ME, json!({})).await;
    assert_eq!(client.recv().await["type"], "connection_ack");
    assert_eq!(client.next_data("1").await["me"]["username"], customer.username.as_str());
    client.expect_complete("1").await;
}

#[tokio::test]
async fn a_client_offering_both_subprotocols_gets_graphql_transport_ws() {
    let app = spawn_app().await;
    let client = WsClient::connect_with(&app, Some("graphql-ws, graphql-transport-ws"), None).await.unwrap();
    assert_eq!(client.protocol, TRANSPORT);
}

#[tokio::test]
async fn a_client_naming_no_subprotocol_speaks_graphql_transport_ws() {
    let app = spawn_app().await;
    let mut client = WsClient::connect_with(&app, None, None).await.unwrap();
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.recv().await, json!({"type": "pong"}));
    client.init(Value::Null).await;
}

#[tokio::test]
async fn an_unknown_subprotocol_is_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let Err(tungstenite::Error::Http(response)) = WsClient::connect_with(&app, Some("mqtt"), None).await else {
        panic!("the upgrade must be refused");
    };
    assert_eq!(response.status(), 400);
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT", "{body}");
}

#[tokio::test]
async fn a_plain_get_on_graphql_is_still_graphql_over_http() {
    let app = spawn_app().await;
    let response =
        app.client.get(format!("{}/graphql", app.address)).query(&[("query", "{ __typename }")]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"data": {"__typename": "Query"}}));
}

#[tokio::test]
async fn graphiql_and_playground_point_their_subscriptions_at_graphql() {
    let app = spawn_app().await;
    let graphiql = app.client.get(format!("{}/", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(graphiql.contains("createUrl('/graphql', true)"), "GraphiQL subscribes over /graphql");
    let playground = app.client.get(format!("{}/playground", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(playground.contains(r#""subscriptionEndpoint":"/graphql""#), "Playground subscribes over /graphql");
}

// --- authentication ---------------------------------------------------------------------

#[tokio::test]
async fn the_token_may_come_in_each_init_payload_key() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("keys")).await;
    let bearer = format!("Bearer {}", customer.token);
    let payloads = [
        json!({"Authorization": bearer}),
        json!({"authorization": bearer}),
        json!({"token": customer.token}),
        json!({"token": bearer}),
    ];
    for protocol in [TRANSPORT, LEGACY] {
        for payload in &payloads {
            let mut client = WsClient::connect(&app, protocol).await;
            client.init(payload.clone()).await;
            assert_eq!(me_over(&mut client).await, customer.username, "{protocol} {payload}");
        }
    }
}

#[tokio::test]
async fn the_token_may_come_in_the_upgrade_header() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("header")).await;
    let bearer = format!("Bearer {}", customer.token);
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect_with(&app, Some(protocol), Some(&bearer)).await.unwrap();
        client.init(Value::Null).await;
        assert_eq!(me_over(&mut client).await, customer.username, "{protocol}");
    }
}

#[tokio::test]
async fn the_init_payload_wins_over_the_upgrade_header() {
    let app = spawn_app().await;
    let header_user = app.register(&unique_username("hdr")).await;
    let payload_user = app.register(&unique_username("pay")).await;
    let mut client =
        WsClient::connect_with(&app, Some(TRANSPORT), Some(&format!("Bearer {}", header_user.token))).await.unwrap();
    client.init(json!({"token": payload_user.token})).await;
    assert_eq!(me_over(&mut client).await, payload_user.username);
}

#[tokio::test]
async fn without_a_token_operations_that_need_one_fail_with_unauthenticated() {
    let app = spawn_app().await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(json!({})).await;
        client.subscribe("1", MY_EVENTS, json!({})).await;
        assert_eq!(codes(&client.expect_error("1").await), ["UNAUTHENTICATED"], "{protocol}");
        // Public operations work on an anonymous socket.
        client.subscribe("2", "{ figurines { sku } }", json!({})).await;
        assert!(client.next_data("2").await["figurines"].as_array().is_some_and(|f| !f.is_empty()));
        client.expect_complete("2").await;
    }
}

#[tokio::test]
async fn a_bad_token_at_init_closes_with_4403() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("bad")).await;
    let expired = token_expiring_in(&customer.id, -10);
    for payload in [
        json!({"Authorization": "Bearer not.a.token"}),
        json!({"Authorization": customer.token}),
        json!({"token": expired}),
        json!({"authorization": 42}),
    ] {
        let mut client = WsClient::connect(&app, TRANSPORT).await;
        client.send(init_message(payload.clone())).await;
        let (code, reason) = client.closed().await;
        assert_eq!(code, 4403, "{payload}: {reason}");
        assert!(reason.starts_with("Forbidden"), "{reason}");
    }
    // A bad header with no token in the payload is refused the same way.
    let mut client = WsClient::connect_with(&app, Some(TRANSPORT), Some("Bearer garbage")).await.unwrap();
    client.send(init_message(Value::Null)).await;
    assert_eq!(client.closed().await.0, 4403);
}

#[tokio::test]
async fn a_bad_token_at_init_gets_connection_error_on_the_legacy_protocol() {
    let app = spawn_app().await;
    let mut client = WsClient::connect(&app, LEGACY).await;
    client.send(init_message(json!({"Authorization": "Bearer not.a.token"}))).await;
    let message = client.recv().await;
    assert_eq!(message["type"], "connection_error", "{message}");
    assert_eq!(message["payload"]["message"], "Forbidden: token invalid");
    assert_eq!(client.closed().await.0, 4403);
}

#[tokio::test]
async fn a_socket_is_closed_when_its_token_expires() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("expiry")).await;
    for protocol in [TRANSPORT, LEGACY] {
        let token = token_expiring_in(&customer.id, 2);
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(json!({"token": token})).await;
        client.subscribe("1", MY_EVENTS, json!({})).await;
        let (code, reason) = client.closed().await;
        assert_eq!((code, reason.as_str()), (4403, "Token expired"), "{protocol}");
    }
}

// --- graphql-transport-ws close codes -------------------------------------------------

#[tokio::test]
async fn no_connection_init_in_time_closes_with_4408() {
    let app = spawn_app_with(&["--ws-init-timeout-ms", "300"]).await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        let (code, reason) = client.closed().await;
        assert_eq!((code, reason.as_str()), (4408, "Connection initialisation timeout"), "{protocol}");
    }
}

#[tokio::test]
async fn an_acknowledged_socket_outlives_the_init_timeout() {
    let app = spawn_app_with(&["--ws-init-timeout-ms", "300"]).await;
    let customer = app.register(&unique_username("late")).await;
    let mut client = WsClient::connect(&app, TRANSPORT).await;
    client.init(json!({"token": customer.token})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(me_over(&mut client).await, customer.username);
}

#[tokio::test]
async fn subscribe_before_connection_init_closes_with_4401() {
    let app = spawn_app().await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        client.subscribe("1", ME, json!({})).await;
        let (code, reason) = client.closed().await;
        assert_eq!((code, reason.as_str()), (4401, "Unauthorized"), "{protocol}");
    }
}

#[tokio::test]
async fn a_malformed_or_unknown_message_closes_with_4400() {
    let app = spawn_app().await;
    let messages = [
        Message::text("not json"),
        Message::text("[1, 2]"),
        Message::text(json!({"id": "1"}).to_string()),
        Message::text(json!({"type": "unheard_of"}).to_string()),
        Message::text(json!({"type": "next", "id": "1", "payload": {}}).to_string()),
        Message::text(json!({"type": "start", "id": "1", "payload": {"query": ME}}).to_string()),
        Message::text(json!({"type": "subscribe", "payload": {"query": ME}}).to_string()),
        Message::text(json!({"type": "subscribe", "id": "1", "payload": {"variables": {}}}).to_string()),
        Message::text(json!({"type": "connection_init", "payload": "Bearer x"}).to_string()),
        Message::binary(b"{\"type\":\"ping\"}".to_vec()),
    ];
    for message in messages {
        let mut client = WsClient::connect(&app, TRANSPORT).await;
        client.init(Value::Null).await;
        client.send_raw(message.clone()).await;
        let (code, reason) = client.closed().await;
        assert_eq!(code, 4400, "{message:?}: {reason}");
        assert!(reason.starts_with("Invalid message"), "{reason}");
    }
}

#[tokio::test]
async fn a_duplicate_operation_id_closes_with_4409() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("dup")).await;
    let mut client = WsClient::connect(&app, TRANSPORT).await;
    client.init(json!({"token": customer.token})).await;
    client.subscribe("op-1", MY_EVENTS, json!({})).await;
    client.subscribe("op-1", MY_EVENTS, json!({})).await;
    let (code, reason) = client.closed().await;
    assert_eq!((code, reason.as_str()), (4409, "Subscriber for op-1 already exists"));
}

#[tokio::test]
async fn an_id_may_be_used_again_once_its_operation_is_complete() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("reuse")).await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(json!({"token": customer.token})).await;
        client.subscribe("op", MY_EVENTS, json!({})).await;
        client.stop("op").await;
        client.subscribe("op", MY_EVENTS, json!({})).await;
        client.barrier().await;
        // And a finished operation's id is free again.
        assert_eq!(me_over(&mut client).await, customer.username);
        assert_eq!(me_over(&mut client).await, customer.username);
    }
}

#[tokio::test]
async fn a_second_connection_init_closes_with_4429() {
    let app = spawn_app().await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(Value::Null).await;
        client.send(init_message(Value::Null)).await;
        let (code, reason) = client.closed().await;
        assert_eq!((code, reason.as_str()), (4429, "Too many initialisation requests"), "{protocol}");
    }
}

#[tokio::test]
async fn connection_terminate_closes_a_legacy_socket_normally() {
    let app = spawn_app().await;
    let mut client = WsClient::connect(&app, LEGACY).await;
    client.init(Value::Null).await;
    client.send(json!({"type": "connection_terminate"})).await;
    assert_eq!(client.closed().await, (1000, "Normal Closure".to_owned()));
}

#[tokio::test]
async fn a_message_over_64_kib_closes_with_1009() {
    let app = spawn_app().await;
    let mut client = WsClient::connect(&app, TRANSPORT).await;
    client.init(Value::Null).await;
    let query = format!("{{ __typename }} # {}", "x".repeat(70 * 1024));
    client.subscribe("big", &query, json!({})).await;
    assert_eq!(client.closed().await.0, 1009);
}

// --- ping, keep-alive, errors, limits ---------------------------------------------------

#[tokio::test]
async fn ping_is_answered_with_pong_carrying_its_payload() {
    let app = spawn_app().await;
    let mut client = WsClient::connect(&app, TRANSPORT).await;
    // Allowed even before connection_init.
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.recv().await, json!({"type": "pong"}));
    client.init(Value::Null).await;
    client.send(json!({"type": "ping", "payload": {"sent": 1}})).await;
    assert_eq!(client.recv().await, json!({"type": "pong", "payload": {"sent": 1}}));
    // An unsolicited pong is a heartbeat, not an error.
    client.send(json!({"type": "pong"})).await;
    client.send(json!({"type": "ping"})).await;
    assert_eq!(client.recv().await, json!({"type": "pong"}));
}

#[tokio::test]
async fn the_server_sends_keep_alives() {
    let app = spawn_app_with(&["--ws-keepalive-ms", "200"]).await;
    let mut transport = WsClient::connect(&app, TRANSPORT).await;
    transport.init(Value::Null).await;
    for _ in 0..2 {
        let Incoming::Json(message) = transport.recv_any().await else { panic!("the socket closed") };
        assert_eq!(message, json!({"type": "ping"}));
        transport.send(json!({"type": "pong"})).await;
    }
    let mut legacy = WsClient::connect(&app, LEGACY).await;
    legacy.send(init_message(Value::Null)).await;
    let Incoming::Json(ack) = legacy.recv_any().await else { panic!("the socket closed") };
    assert_eq!(ack, json!({"type": "connection_ack"}));
    for _ in 0..2 {
        let Incoming::Json(message) = legacy.recv_any().await else { panic!("the socket closed") };
        assert_eq!(message, json!({"type": "ka"}));
    }
}

#[tokio::test]
async fn errors_before_execution_are_error_messages_with_codes() {
    let app = spawn_app().await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(Value::Null).await;
        for (id, query) in [
            ("syntax", "subscription { myOrderEvents { "),
            ("unknown-field", "subscription { myOrderEvents { colour } }"),
            ("variables", "subscription($id: ID!) { orderStatus(orderId: $id) { version } }"),
        ] {
            client.subscribe(id, query, json!({})).await;
            assert_eq!(codes(&client.expect_error(id).await), ["BAD_USER_INPUT"], "{protocol} {id}");
        }
        // The socket lives on after an operation's error.
        client.subscribe("after", "{ __typename }", json!({})).await;
        assert_eq!(client.next_data("after").await, json!({"__typename": "Query"}));
        client.expect_complete("after").await;
    }
}

#[tokio::test]
async fn mutations_run_over_the_socket_too() {
    let app = spawn_app().await;
    let username = unique_username("wsreg");
    let mut client = WsClient::connect(&app, TRANSPORT).await;
    client.init(Value::Null).await;
    client
        .subscribe(
            "register",
            "mutation($input: RegisterInput!) { register(input: $input) { user { username role } } }",
            json!({"input": {"username": username, "email": format!("{username}@example.com"), "password": crate::helpers::PASSWORD, "address": "1 Main St"}}),
        )
        .await;
    let data = client.next_data("register").await;
    assert_eq!(data["register"]["user"], json!({"username": username, "role": "CUSTOMER"}));
    client.expect_complete("register").await;
}

#[tokio::test]
async fn one_socket_runs_at_most_100_operations_at_once() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("many")).await;
    let mut client = WsClient::connect(&app, TRANSPORT).await;
    client.init(json!({"token": customer.token})).await;
    for n in 0..100 {
        client.subscribe(&format!("op-{n}"), MY_EVENTS, json!({})).await;
    }
    client.subscribe("op-100", MY_EVENTS, json!({})).await;
    let errors = client.expect_error("op-100").await;
    assert_eq!(codes(&errors), ["BAD_USER_INPUT"]);
    assert!(errors[0]["message"].as_str().unwrap().contains("at most 100"), "{errors:?}");
    // Completing one makes room for another.
    client.stop("op-0").await;
    client.subscribe("op-101", MY_EVENTS, json!({})).await;
    client.stop("op-1").await;
    // Full again (100 running), so this one is refused too.
    client.subscribe("op-102", MY_EVENTS, json!({})).await;
    client.subscribe("op-103", MY_EVENTS, json!({})).await;
    assert_eq!(codes(&client.expect_error("op-103").await), ["BAD_USER_INPUT"]);
}
