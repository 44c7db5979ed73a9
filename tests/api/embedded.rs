//! With no Redis, the server runs the factory itself on the in-process bus: an order goes
//! from PENDING to SHIPPED on its own, through the same GraphQL mutation a factory process uses.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{spawn_app_with, unique_username};

async fn wait_until_final(app: &crate::helpers::TestApp, token: &str, order_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = app.order(token, order_id).await;
        let order = body["data"]["order"].clone();
        if matches!(order["status"].as_str(), Some("SHIPPED" | "CANCELLED" | "FAILED")) {
            return order;
        }
        assert!(tokio::time::Instant::now() < deadline, "order never became final: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn history(order: &Value) -> Vec<(String, i64)> {
    order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap().to_owned(), e["version"].as_i64().unwrap()))
        .collect()
}

#[tokio::test]
async fn the_embedded_factory_ships_every_order_exactly_once_per_status() {
    let app = spawn_app_with(&["--embedded-factory", "true", "--factory-step-ms", "20"]).await;
    let customer = app.register(&unique_username("ada")).await;
    let mut ids = Vec::new();
    for quantity in 1..=5 {
        ids.push(app.place_simple_order(&customer.token, quantity).await["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let order = wait_until_final(&app, &customer.token, id).await;
        assert_eq!(
            history(&order),
            [("PENDING", 1), ("ACCEPTED", 2), ("IN_PRODUCTION", 3), ("SHIPPED", 4)].map(|(s, v)| (s.to_owned(), v))
        );
    }
}

#[tokio::test]
async fn the_embedded_factory_leaves_an_order_cancelled_in_time_cancelled() {
    let app = spawn_app_with(&["--embedded-factory", "true", "--factory-step-ms", "1000"]).await;
    let customer = app.register(&unique_username("ada")).await;
    let order = app.place_simple_order(&customer.token, 1).await;
    let id = order["id"].as_str().unwrap();
    let cancelled = app.cancel_order(&customer.token, id).await;
    assert_eq!(cancelled["data"]["cancelOrder"]["status"], "CANCELLED", "{cancelled}");
    let order = wait_until_final(&app, &customer.token, id).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = app.order(&customer.token, id).await;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(again["data"]["order"]["version"], order["version"], "the factory changed nothing after the cancel");
}

#[tokio::test]
async fn the_embedded_factory_is_refused_next_to_redis() {
    let settings = ["--redis-url", "redis://127.0.0.1:6379", "--embedded-factory", "true"];
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("x.db").display());
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_minifig"))
        .args(["--database-url", &url, "--port", "0"])
        .args(settings)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("EMBEDDED_FACTORY needs the in-process bus"));
}
