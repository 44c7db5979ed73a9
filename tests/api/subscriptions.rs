//! `orderStatus` and `myOrderEvents` (contract section 4, Subscriptions) over a real
//! WebSocket: current state or replay, then live events, versions strictly increasing with
//! no gap, completion after a final status, who may follow what, and fan-out across API
//! instances through Redis. Statuses are driven with `updateOrderStatus` as the FACTORY.

use serde_json::json;

use crate::helpers::{Customer, TestApp, spawn_app, spawn_app_on_redis, spawn_second_instance, unique_username};
use crate::websocket::{LEGACY, TRANSPORT, WsClient, codes};

const ORDER_STATUS: &str = "subscription($id: ID!, $after: Int) { \
    orderStatus(orderId: $id, afterVersion: $after) { orderId status version at note } }";
const MY_EVENTS: &str = "subscription { myOrderEvents { orderId status version at note } }";

/// An acknowledged socket for `token`.
async fn connect(app: &TestApp, protocol: &'static str, token: &str) -> WsClient {
    let mut client = WsClient::connect(app, protocol).await;
    client.init(json!({"Authorization": format!("Bearer {token}")})).await;
    client
}

async fn follow_order(client: &mut WsClient, id: &str, order_id: &str, after_version: Option<i64>) {
    client.subscribe(id, ORDER_STATUS, json!({"id": order_id, "after": after_version})).await;
}

/// `(status, version)` of the next `orderStatus` event of operation `id`, checked to be
/// about `order_id`.
async fn next_status(client: &mut WsClient, id: &str, order_id: &str) -> (String, i64) {
    let data = client.next_data(id).await;
    let event = &data["orderStatus"];
    assert_eq!(event["orderId"], order_id, "{data}");
    (event["status"].as_str().unwrap().to_owned(), event["version"].as_i64().unwrap())
}

/// The next `myOrderEvents` event of operation `id`: `(orderId, status, version)`.
async fn next_mine(client: &mut WsClient, id: &str) -> (String, String, i64) {
    let data = client.next_data(id).await;
    let event = &data["myOrderEvents"];
    (
        event["orderId"].as_str().unwrap().to_owned(),
        event["status"].as_str().unwrap().to_owned(),
        event["version"].as_i64().unwrap(),
    )
}

fn step(status: &str, version: i64) -> (String, i64) {
    (status.to_owned(), version)
}

/// `updateOrderStatus` through `app`, which must succeed.
async fn advance(app: &TestApp, factory: &str, order_id: &str, status: &str) {
    let body = app.update_status(factory, order_id, status, None).await;
    assert!(body.get("errors").is_none(), "updateOrderStatus to {status} failed: {body}");
}

async fn customer_with_order(app: &TestApp, prefix: &str) -> (Customer, String) {
    let customer = app.register(&unique_username(prefix)).await;
    let order = app.place_simple_order(&customer.token, 2).await;
    let id = order["id"].as_str().unwrap().to_owned();
    (customer, id)
}

// --- orderStatus --------------------------------------------------------------------

#[tokio::test]
async fn order_status_starts_with_the_current_state_and_follows_the_order_to_shipped() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let (customer, order_id) = customer_with_order(&app, "owner").await;
    let mut client = connect(&app, TRANSPORT, &customer.token).await;
    follow_order(&mut client, "o", &order_id, None).await;
    let first = client.next_data("o").await;
    assert_eq!(first["orderStatus"]["status"], "PENDING");
    assert_eq!(first["orderStatus"]["version"], 1);
    assert!(first["orderStatus"]["at"].is_string() && first["orderStatus"]["note"].is_null(), "{first}");

    let mut seen = vec![step("PENDING", 1)];
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        advance(&app, &factory, &order_id, status).await;
        seen.push(next_status(&mut client, "o", &order_id).await);
    }
    client.expect_complete("o").await;
    assert_eq!(seen, [step("PENDING", 1), step("ACCEPTED", 2), step("IN_PRODUCTION", 3), step("SHIPPED", 4)]);
}

#[tokio::test]
async fn changes_made_before_the_client_reads_arrive_in_order_without_gaps() {
    // The factory races ahead while the subscriber is not reading: every version still
    // arrives once, in order.
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let (customer, order_id) = customer_with_order(&app, "racer").await;
    let mut client = connect(&app, LEGACY, &customer.token).await;
    follow_order(&mut client, "o", &order_id, None).await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("PENDING", 1));
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        advance(&app, &factory, &order_id, status).await;
    }
    let mut versions = Vec::new();
    for _ in 0..3 {
        versions.push(next_status(&mut client, "o", &order_id).await.1);
    }
    client.expect_complete("o").await;
    assert_eq!(versions, [2, 3, 4]);
}

#[tokio::test]
async fn after_version_replays_the_missed_events_then_continues_live() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let (customer, order_id) = customer_with_order(&app, "resume").await;
    advance(&app, &factory, &order_id, "ACCEPTED").await;
    advance(&app, &factory, &order_id, "IN_PRODUCTION").await;

    let mut client = connect(&app, TRANSPORT, &customer.token).await;
    follow_order(&mut client, "o", &order_id, Some(1)).await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("ACCEPTED", 2));
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("IN_PRODUCTION", 3));
    advance(&app, &factory, &order_id, "SHIPPED").await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("SHIPPED", 4));
    client.expect_complete("o").await;
}

#[tokio::test]
async fn after_version_at_the_final_version_completes_at_once() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let (customer, order_id) = customer_with_order(&app, "done").await;
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        advance(&app, &factory, &order_id, status).await;
    }
    let mut client = connect(&app, TRANSPORT, &customer.token).await;
    follow_order(&mut client, "after-4", &order_id, Some(4)).await;
    client.expect_complete("after-4").await;
    // One short of the end: the last event, then the end.
    follow_order(&mut client, "after-3", &order_id, Some(3)).await;
    assert_eq!(next_status(&mut client, "after-3", &order_id).await, step("SHIPPED", 4));
    client.expect_complete("after-3").await;
    // Without afterVersion, a final order's current state, then the end.
    follow_order(&mut client, "now", &order_id, None).await;
    assert_eq!(next_status(&mut client, "now", &order_id).await, step("SHIPPED", 4));
    client.expect_complete("now").await;
}

#[tokio::test]
async fn an_after_version_the_order_has_not_reached_is_bad_user_input() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let (_owner, open) = customer_with_order(&app, "ahead").await;
    let (_, done) = customer_with_order(&app, "ahead-done").await;
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        advance(&app, &factory, &done, status).await;
    }
    let mut client = connect(&app, TRANSPORT, &factory).await;
    // An open order at version 1 would otherwise wait, silently, for version 6.
    for (id, order_id, after) in [("open", &open, 5), ("done", &done, 9)] {
        follow_order(&mut client, id, order_id, Some(after)).await;
        let errors = client.expect_error(id).await;
        assert_eq!(codes(&errors), ["BAD_USER_INPUT"], "{errors:?}");
        assert!(errors[0]["message"].as_str().unwrap().contains("afterVersion"), "{errors:?}");
    }
}

#[tokio::test]
async fn a_negative_after_version_is_bad_user_input() {
    let app = spawn_app().await;
    let (customer, order_id) = customer_with_order(&app, "negative").await;
    let mut client = connect(&app, TRANSPORT, &customer.token).await;
    follow_order(&mut client, "o", &order_id, Some(-1)).await;
    assert_eq!(codes(&client.expect_error("o").await), ["BAD_USER_INPUT"]);
}

#[tokio::test]
async fn another_customers_order_is_not_found() {
    let app = spawn_app().await;
    let (_owner, order_id) = customer_with_order(&app, "owner").await;
    let stranger = app.register(&unique_username("stranger")).await;
    for protocol in [TRANSPORT, LEGACY] {
        let mut client = connect(&app, protocol, &stranger.token).await;
        follow_order(&mut client, "o", &order_id, None).await;
        let errors = client.expect_error("o").await;
        assert_eq!(codes(&errors), ["NOT_FOUND"], "{protocol}");
        assert!(!errors[0]["message"].as_str().unwrap().to_lowercase().contains("another"), "{errors:?}");
    }
}

#[tokio::test]
async fn an_unknown_order_is_not_found() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("unknown")).await;
    let mut client = connect(&app, TRANSPORT, &customer.token).await;
    for (id, order_id) in [("uuid", uuid::Uuid::now_v7().to_string()), ("garbage", "not-an-id".to_owned())] {
        follow_order(&mut client, id, &order_id, None).await;
        assert_eq!(codes(&client.expect_error(id).await), ["NOT_FOUND"], "{order_id}");
    }
}

#[tokio::test]
async fn the_factory_may_follow_any_order() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let (_customer, order_id) = customer_with_order(&app, "any").await;
    let mut client = connect(&app, TRANSPORT, &factory).await;
    follow_order(&mut client, "o", &order_id, None).await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("PENDING", 1));
    advance(&app, &factory, &order_id, "ACCEPTED").await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("ACCEPTED", 2));
}

#[tokio::test]
async fn a_cancelled_order_completes_after_cancelled() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let (customer, order_id) = customer_with_order(&app, "cancel").await;
    advance(&app, &factory, &order_id, "ACCEPTED").await;
    let mut client = connect(&app, TRANSPORT, &customer.token).await;
    follow_order(&mut client, "o", &order_id, None).await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("ACCEPTED", 2));
    let body = app.cancel_order(&customer.token, &order_id).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("CANCELLED", 3));
    client.expect_complete("o").await;
}

#[tokio::test]
async fn a_failed_order_completes_after_failed_with_its_note() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let (customer, order_id) = customer_with_order(&app, "failed").await;
    let mut client = connect(&app, TRANSPORT, &customer.token).await;
    follow_order(&mut client, "o", &order_id, None).await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("PENDING", 1));
    let body = app.update_status(&factory, &order_id, "FAILED", Some("the kiln cracked")).await;
    assert!(body.get("errors").is_none(), "{body}");
    let data = client.next_data("o").await;
    assert_eq!(data["orderStatus"]["status"], "FAILED");
    assert_eq!(data["orderStatus"]["version"], 2);
    assert_eq!(data["orderStatus"]["note"], "the kiln cracked");
    client.expect_complete("o").await;
}

// --- myOrderEvents ------------------------------------------------------------------

#[tokio::test]
async fn my_order_events_reports_each_of_my_orders_from_placing_on_and_nobody_elses() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let me = app.register(&unique_username("me")).await;
    let other = app.register(&unique_username("other")).await;
    let mut client = connect(&app, TRANSPORT, &me.token).await;
    client.subscribe("mine", MY_EVENTS, json!({})).await;
    client.barrier().await;

    // Someone else's order moves before and while mine does.
    let theirs = app.place_simple_order(&other.token, 1).await["id"].as_str().unwrap().to_owned();
    advance(&app, &factory, &theirs, "ACCEPTED").await;
    let mine = app.place_simple_order(&me.token, 1).await["id"].as_str().unwrap().to_owned();
    advance(&app, &factory, &theirs, "IN_PRODUCTION").await;
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        advance(&app, &factory, &mine, status).await;
    }
    advance(&app, &factory, &theirs, "SHIPPED").await;

    let mut seen = Vec::new();
    for _ in 0..4 {
        let (order_id, status, version) = next_mine(&mut client, "mine").await;
        assert_eq!(order_id, mine, "an event of someone else's order reached me: {status} v{version}");
        seen.push(step(&status, version));
    }
    assert_eq!(seen, [step("PENDING", 1), step("ACCEPTED", 2), step("IN_PRODUCTION", 3), step("SHIPPED", 4)]);
    // Nothing else was sent meanwhile (a barrier's result comes next, not another event).
    client.barrier().await;
}

#[tokio::test]
async fn my_order_events_follows_several_orders_each_in_order() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let me = app.register(&unique_username("several")).await;
    let mut client = connect(&app, LEGACY, &me.token).await;
    client.subscribe("mine", MY_EVENTS, json!({})).await;
    client.barrier().await;
    let first = app.place_simple_order(&me.token, 1).await["id"].as_str().unwrap().to_owned();
    let second = app.place_simple_order(&me.token, 3).await["id"].as_str().unwrap().to_owned();
    advance(&app, &factory, &first, "ACCEPTED").await;
    advance(&app, &factory, &second, "ACCEPTED").await;
    let body = app.cancel_order(&me.token, &first).await;
    assert!(body.get("errors").is_none(), "{body}");

    let mut by_order: std::collections::HashMap<String, Vec<(String, i64)>> = Default::default();
    for _ in 0..5 {
        let (order_id, status, version) = next_mine(&mut client, "mine").await;
        by_order.entry(order_id).or_default().push(step(&status, version));
    }
    assert_eq!(by_order[&first], [step("PENDING", 1), step("ACCEPTED", 2), step("CANCELLED", 3)]);
    assert_eq!(by_order[&second], [step("PENDING", 1), step("ACCEPTED", 2)]);
}

const MY_EVENTS_AFTER: &str =
    "subscription($after: String) { myOrderEvents(after: $after) { orderId status version cursor } }";

/// One `myOrderEvents` event as `(orderId, status, version)`, and its cursor.
type Mine = ((String, String, i64), String);

async fn next_mine_with_cursor(client: &mut WsClient, id: &str) -> Mine {
    let data = client.next_data(id).await;
    let event = &data["myOrderEvents"];
    let cursor = event["cursor"].as_str().unwrap_or_else(|| panic!("an event without a cursor: {data}")).to_owned();
    (
        (
            event["orderId"].as_str().unwrap().to_owned(),
            event["status"].as_str().unwrap().to_owned(),
            event["version"].as_i64().unwrap(),
        ),
        cursor,
    )
}

fn mine(order_id: &str, status: &str, version: i64) -> (String, String, i64) {
    (order_id.to_owned(), status.to_owned(), version)
}

#[tokio::test]
async fn my_order_events_resumes_after_a_cursor_with_every_missed_event_once_in_commit_order() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let me = app.register(&unique_username("resume")).await;
    let mut client = connect(&app, TRANSPORT, &me.token).await;
    client.subscribe("mine", MY_EVENTS_AFTER, json!({})).await;
    client.barrier().await;
    let a = app.place_simple_order(&me.token, 1).await["id"].as_str().unwrap().to_owned();
    advance(&app, &factory, &a, "ACCEPTED").await;
    let first = next_mine_with_cursor(&mut client, "mine").await;
    let second = next_mine_with_cursor(&mut client, "mine").await;
    assert_eq!((first.0.clone(), second.0.clone()), (mine(&a, "PENDING", 1), mine(&a, "ACCEPTED", 2)));
    assert_ne!(first.1, second.1, "each event has its own cursor");
    drop(client);

    // While the client is away: a new order, and both orders move.
    let b = app.place_simple_order(&me.token, 2).await["id"].as_str().unwrap().to_owned();
    advance(&app, &factory, &a, "IN_PRODUCTION").await;
    advance(&app, &factory, &b, "ACCEPTED").await;
    let missed = [mine(&b, "PENDING", 1), mine(&a, "IN_PRODUCTION", 3), mine(&b, "ACCEPTED", 2)];

    let mut client = connect(&app, LEGACY, &me.token).await;
    client.subscribe("mine", MY_EVENTS_AFTER, json!({"after": second.1})).await;
    let mut replayed = Vec::new();
    for _ in 0..missed.len() {
        replayed.push(next_mine_with_cursor(&mut client, "mine").await.0);
    }
    assert_eq!(replayed, missed, "the missed events, in the order they were committed");
    // Then live, with nothing repeated in between.
    advance(&app, &factory, &a, "SHIPPED").await;
    assert_eq!(next_mine_with_cursor(&mut client, "mine").await.0, mine(&a, "SHIPPED", 4));
    client.barrier().await;

    // An older cursor replays from there, the same events in the same order.
    client.subscribe("again", MY_EVENTS_AFTER, json!({"after": first.1})).await;
    let mut again = Vec::new();
    for _ in 0..5 {
        again.push(next_mine_with_cursor(&mut client, "again").await.0);
    }
    let expected = [mine(&a, "ACCEPTED", 2), missed[0].clone(), missed[1].clone(), missed[2].clone()];
    assert_eq!(again[..4], expected);
    assert_eq!(again[4], mine(&a, "SHIPPED", 4));
    client.barrier().await;
}

#[tokio::test]
async fn my_order_events_live_and_replayed_agree_on_the_order_of_concurrent_changes() {
    let app = spawn_app().await;
    let factory = app.factory_token().await;
    let me = app.register(&unique_username("busy")).await;
    let mut client = connect(&app, TRANSPORT, &me.token).await;
    client.subscribe("mine", MY_EVENTS_AFTER, json!({})).await;
    client.barrier().await;
    // One customer's orders placed and moved concurrently: their events race each other.
    let orders = futures::future::join_all((0..8).map(|_| app.place_simple_order(&me.token, 1))).await;
    let ids: Vec<String> = orders.iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect();
    futures::future::join_all(ids.iter().map(|id| advance(&app, &factory, id, "ACCEPTED"))).await;

    let mut live = Vec::new();
    for _ in 0..16 {
        live.push(next_mine_with_cursor(&mut client, "mine").await);
    }
    let mut per_order: std::collections::HashMap<&str, Vec<i64>> = Default::default();
    for ((order_id, _, version), _) in &live {
        per_order.entry(order_id.as_str()).or_default().push(*version);
    }
    assert!(per_order.values().all(|versions| versions == &[1, 2]), "each order once per version, in order: {live:?}");
    let cursors: std::collections::HashSet<&String> = live.iter().map(|(_, cursor)| cursor).collect();
    assert_eq!(cursors.len(), live.len(), "every event has a cursor of its own");

    // Resuming after any of them gives exactly the ones that came after it live.
    for from in [0, 5, 14] {
        let id = format!("from-{from}");
        client.subscribe(&id, MY_EVENTS_AFTER, json!({"after": live[from].1})).await;
        for expected in &live[from + 1..] {
            assert_eq!(next_mine_with_cursor(&mut client, &id).await.0, expected.0, "resumed after event {from}");
        }
        client.stop(&id).await;
        client.barrier().await;
    }
}

#[tokio::test]
async fn my_order_events_refuses_a_cursor_it_did_not_make() {
    let app = spawn_app().await;
    let me = app.register(&unique_username("forger")).await;
    let mut client = connect(&app, TRANSPORT, &me.token).await;
    for (n, after) in ["nonsense", "", "ZTF8OTk5OQ"].into_iter().enumerate() {
        let id = format!("bad-{n}");
        client.subscribe(&id, MY_EVENTS_AFTER, json!({"after": after})).await;
        let errors = client.expect_error(&id).await;
        assert_eq!(codes(&errors), ["BAD_USER_INPUT"], "after = {after:?}: {errors:?}");
        assert!(errors[0]["message"].as_str().unwrap().contains("after"), "{errors:?}");
    }
}

// --- across instances, through Redis -------------------------------------------------

/// Asserts that `versions` are 1, 2, … with no gap and no repeat.
fn assert_consecutive(versions: &[i64]) {
    let expected: Vec<i64> = (1..=versions.len() as i64).collect();
    assert_eq!(versions, expected, "versions must increase by one, with no gap and no repeat");
}

#[tokio::test]
async fn events_written_through_one_instance_reach_subscribers_on_another() {
    let (first, prefix) = spawn_app_on_redis(&[]).await;
    let second = spawn_second_instance(&first, &prefix).await;
    let factory = first.factory_token().await;
    let customer = first.register(&unique_username("scale")).await;

    // Two followers on each instance, of both subprotocols, and the owner's feed on the
    // second instance; the order is placed and driven through the first.
    let mut feed = connect(&second, TRANSPORT, &customer.token).await;
    feed.subscribe("mine", MY_EVENTS, json!({})).await;
    feed.barrier().await;
    let order_id = first.place_simple_order(&customer.token, 1).await["id"].as_str().unwrap().to_owned();
    let mut followers = Vec::new();
    for (app, protocol, token) in [
        (&second, TRANSPORT, &customer.token),
        (&second, LEGACY, &factory),
        (&first, TRANSPORT, &factory),
        (&first, LEGACY, &customer.token),
    ] {
        let mut client = connect(app, protocol, token).await;
        follow_order(&mut client, "o", &order_id, None).await;
        assert_eq!(next_status(&mut client, "o", &order_id).await, step("PENDING", 1));
        followers.push(client);
    }
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        advance(&first, &factory, &order_id, status).await;
    }
    for client in &mut followers {
        let mut versions = vec![1];
        for _ in 0..3 {
            versions.push(next_status(client, "o", &order_id).await.1);
        }
        client.expect_complete("o").await;
        assert_consecutive(&versions);
    }
    let mut versions = Vec::new();
    for _ in 0..4 {
        let (event_order, _status, version) = next_mine(&mut feed, "mine").await;
        assert_eq!(event_order, order_id);
        versions.push(version);
    }
    assert_consecutive(&versions);
}

#[tokio::test]
async fn a_subscriber_on_redis_resumes_with_after_version_on_the_other_instance() {
    // A client that lost its socket on one instance reconnects to another and resumes.
    let (first, prefix) = spawn_app_on_redis(&[]).await;
    let second = spawn_second_instance(&first, &prefix).await;
    let factory = first.factory_token().await;
    let (customer, order_id) = customer_with_order(&first, "resumer").await;

    let mut client = connect(&first, TRANSPORT, &customer.token).await;
    follow_order(&mut client, "o", &order_id, None).await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("PENDING", 1));
    advance(&second, &factory, &order_id, "ACCEPTED").await;
    let (_, last_seen) = next_status(&mut client, "o", &order_id).await;
    drop(client);

    advance(&second, &factory, &order_id, "IN_PRODUCTION").await;
    let mut client = connect(&second, LEGACY, &customer.token).await;
    follow_order(&mut client, "o", &order_id, Some(last_seen)).await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("IN_PRODUCTION", 3));
    advance(&first, &factory, &order_id, "SHIPPED").await;
    assert_eq!(next_status(&mut client, "o", &order_id).await, step("SHIPPED", 4));
    client.expect_complete("o").await;
}
