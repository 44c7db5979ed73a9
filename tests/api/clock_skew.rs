//! Instances whose clocks are wrong, run for real under `faketime`: time that is stored or
//! compared comes from the database, so a skewed instance can neither lose a live event,
//! reorder a history, nor hide or hurry an order's redelivery. PostgreSQL only: several
//! processes on one database is the PostgreSQL deployment (SQLite is one process, whose
//! clock is the database's).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::helpers::{spawn_app_on_redis, spawn_process_instance, test_redis_url, unique_username, uses_sqlite};
use crate::websocket::{TRANSPORT, WsClient};

const MY_EVENTS: &str = "subscription { myOrderEvents { orderId status version at } }";

fn at_of(event: &serde_json::Value) -> DateTime<Utc> {
    event["at"].as_str().and_then(|at| at.parse().ok()).unwrap_or_else(|| panic!("an event without a time: {event}"))
}

#[tokio::test]
async fn events_written_by_an_instance_whose_clock_is_behind_reach_my_order_events() {
    if uses_sqlite() {
        return;
    }
    let (app, prefix) = spawn_app_on_redis(&[]).await;
    let behind = spawn_process_instance(&app, &prefix, &["faketime", "-f", "-5m"], &[]).await;
    let customer = app.register(&unique_username("skew")).await;
    let factory = app.factory_token().await;
    let catalog = app.catalog().await;
    let mut client = WsClient::connect(&app, TRANSPORT).await;
    client.init(json!({"Authorization": format!("Bearer {}", customer.token)})).await;
    client.subscribe("mine", MY_EVENTS, json!({})).await;
    client.barrier().await;

    let before = Utc::now();
    let placed = behind
        .graphql(
            Some(&customer.token),
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id createdAt } }",
            json!({"input": {"items": [{"figurineId": catalog.figurine("FIG-KNIGHT"), "quantity": 1}]}}),
        )
        .await;
    let order_id = placed["data"]["placeOrder"]["id"].as_str().unwrap_or_else(|| panic!("{placed}")).to_owned();
    let moved = behind
        .graphql(
            Some(&factory),
            "mutation($input: UpdateOrderStatusInput!) { updateOrderStatus(input: $input) { version updatedAt } }",
            json!({"input": {"orderId": order_id, "status": "ACCEPTED"}}),
        )
        .await;
    assert_eq!(moved["data"]["updateOrderStatus"]["version"], 2, "{moved}");

    let pending = client.next_data("mine").await["myOrderEvents"].clone();
    let accepted = client.next_data("mine").await["myOrderEvents"].clone();
    assert_eq!(
        (&pending["orderId"], &pending["status"], &pending["version"]),
        (&json!(order_id), &json!("PENDING"), &json!(1))
    );
    assert_eq!((&accepted["status"], &accepted["version"]), (&json!("ACCEPTED"), &json!(2)));
    // Stamped by the database's clock, not by the instance five minutes behind.
    let skew = chrono::Duration::seconds(60);
    for event in [&pending, &accepted] {
        assert!(at_of(event) > before - skew, "an event stamped by the skewed clock: {event}");
    }
    assert!(at_of(&accepted) >= at_of(&pending));
}

#[tokio::test]
async fn an_instance_whose_clock_is_ahead_does_not_hand_out_an_order_before_its_time() {
    if uses_sqlite() {
        return;
    }
    let (app, prefix) = spawn_app_on_redis(&[]).await;
    // This instance's sweep runs every 5 s and hands out orders idle for 15 s, by its clock
    // ten minutes ahead: were that clock used, every order would look abandoned at once.
    let _ahead =
        spawn_process_instance(&app, &prefix, &["faketime", "-f", "+10m"], &["--order-redeliver-secs", "15"]).await;
    let customer = app.register(&unique_username("early")).await;
    let order_id = app.place_simple_order(&customer.token, 1).await["id"].as_str().unwrap().to_owned();
    // Long enough for the skewed sweep to run at least once, well short of the 15 s.
    tokio::time::sleep(Duration::from_secs(7)).await;

    let redis = fred::prelude::Builder::from_config(fred::prelude::Config::from_url(&test_redis_url()).unwrap())
        .build()
        .unwrap();
    use fred::prelude::*;
    redis.init().await.unwrap();
    let entries: Vec<(String, std::collections::HashMap<String, String>)> =
        redis.xrange(format!("{prefix}orders"), "-", "+", None).await.unwrap();
    let handed_out = entries.iter().filter(|(_, fields)| fields.get("order_id") == Some(&order_id)).count();
    assert_eq!(handed_out, 1, "the order was handed to the factories again before it was idle for 15 s");
}
