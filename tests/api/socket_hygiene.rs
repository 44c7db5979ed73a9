//! What keeps sockets from piling up: a client that stops answering is closed, a socket
//! that never authenticates is closed, and the sockets per client address and per
//! instance are capped. Real sockets against the real server; a raw TCP client plays the
//! peer that vanished, since every WebSocket library answers pings on its own.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::helpers::{TestApp, spawn_app_with, unique_username};
use crate::websocket::{Incoming, LEGACY, TRANSPORT, WsClient, init_message};

/// How long anything that should happen may take before a test gives up.
const WAIT: Duration = Duration::from_secs(10);

const MY_EVENTS: &str = "subscription { myOrderEvents { orderId status version } }";

fn local(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

// --- liveness ---------------------------------------------------------------------------

/// A peer that completed the upgrade and `connection_init` and then went silent: it reads
/// what the server sends (so the test sees the close) but never writes a byte, not even the
/// pong a WebSocket library would send for a ping frame.
struct SilentPeer {
    stream: TcpStream,
}

/// One frame from the server (which never masks): its opcode and payload.
struct Frame {
    opcode: u8,
    payload: Vec<u8>,
}

impl SilentPeer {
    async fn connect(app: &TestApp, protocol: &str) -> Self {
        let host = app.address.trim_start_matches("http://");
        let mut stream = TcpStream::connect(host).await.expect("connected");
        let request = format!(
            "GET /graphql HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: {protocol}\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await.expect("upgrade sent");
        // Byte by byte, so that no frame after the head is swallowed.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let byte = tokio::time::timeout(WAIT, stream.read_u8()).await.expect("an answer").expect("a byte");
            head.push(byte);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "the upgrade succeeds: {head}");
        let mut peer = SilentPeer { stream };
        peer.send_text(&init_message(Value::Null).to_string()).await;
        let ack = peer.next_frame().await;
        assert_eq!((ack.opcode, ack.payload.as_slice()), (1, br#"{"type":"connection_ack"}"#.as_slice()));
        peer
    }

    /// One masked text frame (clients must mask).
    async fn send_text(&mut self, text: &str) {
        let mask = [0x1f, 0x2e, 0x3d, 0x4c];
        let length = u8::try_from(text.len()).ok().filter(|&n| n < 126).expect("a short message");
        let mut frame = vec![0x81, 0x80 | length];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, byte)| byte ^ mask[i % 4]));
        self.stream.write_all(&frame).await.expect("frame sent");
    }

    async fn next_frame(&mut self) -> Frame {
        tokio::time::timeout(WAIT, async {
            let mut head = [0u8; 2];
            self.stream.read_exact(&mut head).await.expect("a frame");
            assert_eq!(head[1] & 0x80, 0, "the server does not mask");
            let length = match head[1] & 0x7f {
                126 => u64::from(self.stream.read_u16().await.expect("length")),
                127 => self.stream.read_u64().await.expect("length"),
                short => u64::from(short),
            };
            let mut payload = vec![0u8; usize::try_from(length).expect("a length")];
            self.stream.read_exact(&mut payload).await.expect("the payload");
            Frame { opcode: head[0] & 0x0f, payload }
        })
        .await
        .unwrap_or_else(|_| panic!("no frame from the server within {WAIT:?}"))
    }

    /// Reads until the close frame; returns its code and reason, and the ping frames seen.
    async fn close_frame(&mut self) -> (u16, String, usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut pings = 0;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "not closed within {WAIT:?} ({pings} ping frames)");
            let frame = self.next_frame().await;
            match frame.opcode {
                0x8 => {
                    let code = u16::from_be_bytes([frame.payload[0], frame.payload[1]]);
                    return (code, String::from_utf8_lossy(&frame.payload[2..]).into_owned(), pings);
                }
                0x9 => pings += 1,
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn a_client_that_answers_nothing_is_closed_after_two_keep_alive_intervals() {
    let app = spawn_app_with(&["--ws-keepalive-ms", "200"]).await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut peer = SilentPeer::connect(&app, protocol).await;
        let (code, reason, pings) = peer.close_frame().await;
        assert_eq!((code, reason.as_str()), (4408, "Keep-alive timeout"), "{protocol}");
        assert!(pings >= 1, "{protocol}: the server pinged before it gave up ({pings} pings)");
        // And the connection is gone, not just announced to be.
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WAIT, peer.stream.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(_))), "{protocol}: the server closed the connection: {read:?}");
    }
}

#[tokio::test]
async fn a_client_that_only_answers_ping_frames_stays_connected() {
    // Legacy clients never answer `ka`, and a graphql-transport-ws client need not answer
    // `ping` with `pong`: their WebSocket library's automatic pong is enough.
    let app = spawn_app_with(&["--ws-keepalive-ms", "200"]).await;
    let customer = app.register(&unique_username("passive")).await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(json!({"token": customer.token})).await;
        client.subscribe("events", MY_EVENTS, json!({})).await;
        client.barrier().await;
        // Far more intervals than a silent client survives; only ping frames are answered.
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut pings = 0;
        while pings < 8 {
            assert!(tokio::time::Instant::now() < deadline, "{protocol}: {pings} ping frames within {WAIT:?}");
            match client.recv_frame().await {
                Message::Ping(_) => pings += 1,
                Message::Text(_) | Message::Pong(_) => {}
                other => panic!("{protocol}: the socket ended after {pings} pings: {other:?}"),
            }
        }
        // Still open, and the subscription still delivers.
        let order = app.place_simple_order(&customer.token, 1).await;
        let event = client.next_data("events").await;
        assert_eq!(event["myOrderEvents"]["orderId"], order["id"], "{protocol}");
    }
}

// --- sockets that never authenticate ------------------------------------------------------

#[tokio::test]
async fn pings_before_connection_init_do_not_postpone_the_4408() {
    let app = spawn_app_with(&["--ws-init-timeout-ms", "300"]).await;
    let mut client = WsClient::connect(&app, TRANSPORT).await;
    let closed = loop {
        client.send(json!({"type": "ping"})).await;
        match client.recv_any().await {
            Incoming::Json(pong) => assert_eq!(pong, json!({"type": "pong"})),
            Incoming::Closed(code, reason) => break (code, reason),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(closed, (4408, "Connection initialisation timeout".to_owned()));
}

#[tokio::test]
async fn an_anonymous_socket_with_nothing_running_is_closed_after_the_init_timeout() {
    let app = spawn_app_with(&["--ws-init-timeout-ms", "300"]).await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = WsClient::connect(&app, protocol).await;
        client.init(Value::Null).await;
        // Public operations run; the socket is closed only once it sits idle.
        client.barrier().await;
        client.barrier().await;
        if client.is_legacy() {
            let told = client.recv().await;
            assert_eq!(told, json!({"type": "connection_error", "payload": {"message": "Anonymous connection idle"}}));
        }
        assert_eq!(client.closed().await, (4408, "Anonymous connection idle".to_owned()), "{protocol}");
    }
}

// --- caps ---------------------------------------------------------------------------------

/// The refusal of an upgrade: its status, `Retry-After` and JSON body.
fn refusal(result: Result<WsClient, tungstenite::Error>) -> (u16, Option<String>, Value) {
    let Err(tungstenite::Error::Http(response)) = result else {
        panic!("the upgrade must be refused with an HTTP answer");
    };
    let retry_after = response.headers().get("Retry-After").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = serde_json::from_slice(response.body().as_deref().unwrap_or_default()).expect("a JSON body");
    (response.status().as_u16(), retry_after, body)
}

fn assert_rate_limited(body: &Value) {
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{body}");
    assert!(error["extensions"]["retryAfter"].as_u64().is_some_and(|s| s > 0), "{body}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("WebSocket")), "{body}");
}

/// Connects from `source` as soon as a place is free (the server frees it when the closed
/// socket's task ends, shortly after the close handshake).
async fn connect_once_there_is_room(app: &TestApp, source: IpAddr) -> WsClient {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match WsClient::connect_from(app, source, TRANSPORT).await {
            Ok(client) => return client,
            Err(tungstenite::Error::Http(_)) => {
                assert!(tokio::time::Instant::now() < deadline, "no place freed up within {WAIT:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("the upgrade failed: {err}"),
        }
    }
}

async fn close(mut client: WsClient) {
    client.send_raw(Message::Close(None)).await;
    let _ = client.closed().await;
}

#[tokio::test]
async fn sockets_per_client_address_are_capped() {
    let app = spawn_app_with(&["--ws-max-sockets-per-address", "2"]).await;
    let first = WsClient::connect_from(&app, local(1), TRANSPORT).await.expect("first socket");
    let _second = WsClient::connect_from(&app, local(1), LEGACY).await.expect("second socket");
    let (status, retry_after, body) = refusal(WsClient::connect_from(&app, local(1), TRANSPORT).await);
    assert_eq!(status, 429, "{body}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0)), "a Retry-After in seconds");
    assert_rate_limited(&body);
    // Another address has places of its own, and its sockets work.
    let mut other = WsClient::connect_from(&app, local(2), TRANSPORT).await.expect("another address");
    other.init(Value::Null).await;
    other.barrier().await;
    // Closing a socket frees its place.
    close(first).await;
    let mut again = connect_once_there_is_room(&app, local(1)).await;
    again.init(Value::Null).await;
    again.barrier().await;
}

#[tokio::test]
async fn sockets_per_instance_are_capped() {
    let app = spawn_app_with(&["--ws-max-sockets", "2"]).await;
    let _one = WsClient::connect_from(&app, local(1), TRANSPORT).await.expect("first socket");
    let two = WsClient::connect_from(&app, local(2), TRANSPORT).await.expect("second socket");
    let (status, retry_after, body) = refusal(WsClient::connect_from(&app, local(3), TRANSPORT).await);
    assert_eq!(status, 503, "{body}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s > 0)), "a Retry-After in seconds");
    assert_rate_limited(&body);
    // Plain HTTP is not capped.
    let body = app.graphql(None, "{ __typename }", json!({})).await;
    assert_eq!(body, json!({"data": {"__typename": "Query"}}));
    close(two).await;
    let mut third = connect_once_there_is_room(&app, local(3)).await;
    third.init(Value::Null).await;
    third.barrier().await;
}
