//! Response objects keep the order of the selection set (GraphQL spec, section 7.2.2,
//! "Serialized Map Ordering"), over HTTP and over WebSocket: clients that compare or show
//! JSON rely on it. The bodies are read as text, since a parsed `serde_json::Value` would
//! sort the keys itself.

use serde_json::{Value, json};

use crate::helpers::spawn_app;
use crate::websocket::{TRANSPORT, WsClient};

/// A nested selection whose keys are out of alphabetical order at every level.
const QUERY: &str = "{ figurines { unitPrice { currency cents amount } sku name id } }";
const FIGURINE_KEYS: [&str; 6] = ["unitPrice", "currency", "cents", "amount", "sku", "name"];

/// Every object key of `text`, in the order it appears.
fn keys(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        let (word, tail) = (&after[..end], &after[end + 1..]);
        if tail.starts_with(':') {
            keys.push(word.to_owned());
        }
        rest = tail;
    }
    keys
}

/// The keys `QUERY` must produce for `count` figurines, after `prefix`.
fn expected(prefix: &[&str], count: usize) -> Vec<String> {
    let mut keys: Vec<String> = prefix.iter().map(|k| (*k).to_owned()).collect();
    for _ in 0..count {
        keys.extend(FIGURINE_KEYS.iter().map(|k| (*k).to_owned()));
        keys.push("id".to_owned());
    }
    keys
}

fn figurine_count(text: &str, path: &[&str]) -> usize {
    let body: Value = serde_json::from_str(text).expect("JSON");
    let figurines = path.iter().fold(&body, |value, key| &value[*key]);
    figurines.as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn http_responses_keep_the_selection_order_at_every_depth() {
    let app = spawn_app().await;
    let text = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({"query": QUERY}))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("a body");
    let count = figurine_count(&text, &["data", "figurines"]);
    assert!(count >= 8, "{text}");
    assert_eq!(keys(&text), expected(&["data", "figurines"], count), "{text}");
}

#[tokio::test]
async fn websocket_results_keep_the_selection_order_at_every_depth() {
    let app = spawn_app().await;
    let mut client = WsClient::connect(&app, TRANSPORT).await;
    client.init(Value::Null).await;
    client.subscribe("1", QUERY, json!({})).await;
    let text = client.recv_text().await;
    let count = figurine_count(&text, &["payload", "data", "figurines"]);
    assert!(count >= 8, "{text}");
    assert_eq!(keys(&text), expected(&["type", "id", "payload", "data", "figurines"], count), "{text}");
}
