//! The order state machine through the API: `updateOrderStatus` (FACTORY/ADMIN) and
//! `cancelOrder` (the owner), versions, history, no-ops, refusals and races.

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, error_code, error_field, spawn_app, unique_username};

fn time(value: &Value) -> DateTime<Utc> {
    let text = value.as_str().unwrap_or_else(|| panic!("expected a DateTime string, got {value}"));
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|err| panic!("{text} is not RFC 3339: {err}")).with_timezone(&Utc)
}

/// The order of a successful `updateOrderStatus` response.
fn updated(body: &Value) -> &Value {
    let order = &body["data"]["updateOrderStatus"];
    assert!(order.is_object() && body.get("errors").is_none(), "updateOrderStatus failed: {body}");
    order
}

/// The order of a successful `cancelOrder` response.
fn cancelled(body: &Value) -> &Value {
    let order = &body["data"]["cancelOrder"];
    assert!(order.is_object() && body.get("errors").is_none(), "cancelOrder failed: {body}");
    order
}

fn id_of(order: &Value) -> String {
    order["id"].as_str().unwrap().to_owned()
}

/// `(status, version)` of each history event.
fn history_of(order: &Value) -> Vec<(String, i64)> {
    order["history"]
        .as_array()
        .unwrap_or_else(|| panic!("an order with a history: {order}"))
        .iter()
        .map(|e| (e["status"].as_str().unwrap().to_owned(), e["version"].as_i64().unwrap()))
        .collect()
}

fn steps(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(s, v)| ((*s).to_owned(), *v)).collect()
}

/// The order as its owner reads it now.
async fn current(app: &TestApp, token: &str, id: &str) -> Value {
    let body = app.order(token, id).await;
    assert!(body["data"]["order"].is_object(), "order failed: {body}");
    body["data"]["order"].clone()
}

/// A customer with one PENDING order, and the factory's token.
async fn customer_with_order(app: &TestApp) -> (crate::helpers::Customer, String, String) {
    let customer = app.register(&unique_username("owner")).await;
    let order = app.place_simple_order(&customer.token, 1).await;
    let factory = app.factory_token().await;
    (customer, id_of(&order), factory)
}

/// Asserts an error with `code`, and that the order is still at `(status, version)`.
async fn assert_refused(app: &TestApp, body: &Value, code: &str, token: &str, id: &str, status: &str, version: i64) {
    assert_eq!(error_code(body), code, "{body}");
    let data = &body["data"];
    assert!(
        data.is_null() || data.as_object().is_some_and(|o| o.values().all(Value::is_null)),
        "no order on refusal: {body}"
    );
    let order = current(app, token, id).await;
    assert_eq!(
        (order["status"].as_str().unwrap(), order["version"].as_i64().unwrap()),
        (status, version),
        "the order did not change"
    );
    assert_eq!(order["history"].as_array().unwrap().len() as i64, version, "no event was appended");
}

#[tokio::test]
async fn a_customer_cannot_update_an_order_status() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, _) = customer_with_order(&app).await;

    // Act
    let body = app.update_status(&customer.token, &id, "ACCEPTED", None).await;

    // Assert
    assert_refused(&app, &body, "FORBIDDEN", &customer.token, &id, "PENDING", 1).await;
}

#[tokio::test]
async fn update_order_status_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let (customer, id, _) = customer_with_order(&app).await;

    let body = app
        .graphql(
            None,
            "mutation($input: UpdateOrderStatusInput!) { updateOrderStatus(input: $input) { id } }",
            json!({"input": {"orderId": id, "status": "ACCEPTED"}}),
        )
        .await;

    assert_refused(&app, &body, "UNAUTHENTICATED", &customer.token, &id, "PENDING", 1).await;
}

#[tokio::test]
async fn the_factory_moves_an_order_from_pending_to_shipped() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;
    let placed = current(&app, &customer.token, &id).await;
    let mut previous_updated = time(&placed["updatedAt"]);

    for (status, version) in [("ACCEPTED", 2), ("IN_PRODUCTION", 3), ("SHIPPED", 4)] {
        // Act
        let body = app.update_status(&factory, &id, status, None).await;

        // Assert
        let order = updated(&body);
        assert_eq!((order["status"].as_str().unwrap(), order["version"].as_i64().unwrap()), (status, version));
        assert_eq!(history_of(order).last(), Some(&(status.to_owned(), version)));
        let updated_at = time(&order["updatedAt"]);
        assert!(updated_at >= previous_updated, "updatedAt never goes back: {updated_at} < {previous_updated}");
        assert_eq!(order["createdAt"], placed["createdAt"], "createdAt is fixed");
        previous_updated = updated_at;
    }

    let order = current(&app, &customer.token, &id).await;
    assert_eq!((order["status"].as_str().unwrap(), order["version"].as_i64().unwrap()), ("SHIPPED", 4));
    assert_eq!(history_of(&order), steps(&[("PENDING", 1), ("ACCEPTED", 2), ("IN_PRODUCTION", 3), ("SHIPPED", 4)]));
    let events = order["history"].as_array().unwrap();
    for event in events {
        assert_eq!(event["orderId"], json!(id));
        assert!(event["note"].is_null(), "{event}");
    }
    let times: Vec<DateTime<Utc>> = events.iter().map(|e| time(&e["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "event times never go back: {times:?}");
    assert!(time(&order["updatedAt"]) > time(&order["createdAt"]), "updatedAt moved on: {order}");
}

#[tokio::test]
async fn the_same_status_again_is_a_no_op() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;
    let pending = app.update_status(&factory, &id, "PENDING", None).await;
    let accepted = updated(&app.update_status(&factory, &id, "ACCEPTED", None).await).clone();

    // Act
    let again = app.update_status(&factory, &id, "ACCEPTED", None).await;

    // Assert
    assert_eq!(
        (updated(&pending)["status"].as_str(), updated(&pending)["version"].as_i64()),
        (Some("PENDING"), Some(1))
    );
    let again = updated(&again);
    assert_eq!(again, &accepted, "the retry returns the order exactly as it was");
    assert_eq!(history_of(again), steps(&[("PENDING", 1), ("ACCEPTED", 2)]));
    let order = current(&app, &customer.token, &id).await;
    assert_eq!(history_of(&order), steps(&[("PENDING", 1), ("ACCEPTED", 2)]));
}

#[tokio::test]
async fn the_same_final_status_again_is_a_no_op() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        updated(&app.update_status(&factory, &id, status, None).await);
    }

    // Act
    let again = app.update_status(&factory, &id, "SHIPPED", None).await;

    // Assert
    assert_eq!(updated(&again)["version"], 4);
    assert_eq!(current(&app, &customer.token, &id).await["history"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn skipping_ahead_or_going_back_is_an_invalid_transition() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;

    // Act + Assert: from PENDING nothing skips ahead.
    for status in ["SHIPPED", "IN_PRODUCTION"] {
        let body = app.update_status(&factory, &id, status, None).await;
        assert_refused(&app, &body, "INVALID_TRANSITION", &customer.token, &id, "PENDING", 1).await;
    }
    updated(&app.update_status(&factory, &id, "ACCEPTED", None).await);
    for status in ["SHIPPED", "PENDING"] {
        let body = app.update_status(&factory, &id, status, None).await;
        assert_refused(&app, &body, "INVALID_TRANSITION", &customer.token, &id, "ACCEPTED", 2).await;
    }
}

#[tokio::test]
async fn a_final_status_is_never_left() {
    // Arrange: one order SHIPPED, one CANCELLED, one FAILED.
    let app = spawn_app().await;
    let customer = app.register(&unique_username("owner")).await;
    let factory = app.factory_token().await;
    let shipped = id_of(&app.place_simple_order(&customer.token, 1).await);
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        updated(&app.update_status(&factory, &shipped, status, None).await);
    }
    let cancelled_id = id_of(&app.place_simple_order(&customer.token, 1).await);
    cancelled(&app.cancel_order(&customer.token, &cancelled_id).await);
    let failed = id_of(&app.place_simple_order(&customer.token, 1).await);
    updated(&app.update_status(&factory, &failed, "FAILED", Some("mould cracked")).await);

    // Act + Assert
    for (id, status, version) in [(&shipped, "SHIPPED", 4), (&cancelled_id, "CANCELLED", 2), (&failed, "FAILED", 2)] {
        for to in ["PENDING", "ACCEPTED", "IN_PRODUCTION", "SHIPPED", "CANCELLED", "FAILED"] {
            if to == status {
                continue;
            }
            let body = app.update_status(&factory, id, to, Some("trying anyway")).await;
            assert_refused(&app, &body, "INVALID_TRANSITION", &customer.token, id, status, version).await;
        }
    }
    let body = app.cancel_order(&customer.token, &shipped).await;
    assert_refused(&app, &body, "INVALID_TRANSITION", &customer.token, &shipped, "SHIPPED", 4).await;
}

#[tokio::test]
async fn failing_an_order_needs_a_note() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;

    for note in [None, Some(""), Some("   ")] {
        // Act
        let body = app.update_status(&factory, &id, "FAILED", note).await;

        // Assert
        assert_eq!(error_field(&body), "note", "{note:?}: {body}");
        assert_refused(&app, &body, "BAD_USER_INPUT", &customer.token, &id, "PENDING", 1).await;
    }
}

#[tokio::test]
async fn failing_an_order_with_a_note_records_the_note() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;
    updated(&app.update_status(&factory, &id, "ACCEPTED", None).await);
    updated(&app.update_status(&factory, &id, "IN_PRODUCTION", None).await);

    // Act
    let body = app.update_status(&factory, &id, "FAILED", Some("the resin ran out")).await;

    // Assert
    let order = updated(&body);
    assert_eq!((order["status"].as_str().unwrap(), order["version"].as_i64().unwrap()), ("FAILED", 4));
    let order = current(&app, &customer.token, &id).await;
    assert_eq!(history_of(&order), steps(&[("PENDING", 1), ("ACCEPTED", 2), ("IN_PRODUCTION", 3), ("FAILED", 4)]));
    assert_eq!(order["history"][3]["note"], "the resin ran out");
    assert!(order["history"][2]["note"].is_null());
}

#[tokio::test]
async fn a_note_longer_than_five_hundred_characters_is_bad_input() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;

    // Act
    let too_long = app.update_status(&factory, &id, "FAILED", Some(&"n".repeat(501))).await;

    // Assert
    assert_eq!(error_field(&too_long), "note", "{too_long}");
    assert_refused(&app, &too_long, "BAD_USER_INPUT", &customer.token, &id, "PENDING", 1).await;
    // Exactly 500 is fine, and is kept whole.
    let at_limit = app.update_status(&factory, &id, "FAILED", Some(&"n".repeat(500))).await;
    assert_eq!(updated(&at_limit)["history"][1]["note"], json!("n".repeat(500)));
}

#[tokio::test]
async fn the_owner_cancels_a_pending_order_and_cancelling_again_is_a_no_op() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, _) = customer_with_order(&app).await;

    // Act
    let first = app.cancel_order(&customer.token, &id).await;
    let second = app.cancel_order(&customer.token, &id).await;

    // Assert
    let first = cancelled(&first);
    assert_eq!((first["status"].as_str().unwrap(), first["version"].as_i64().unwrap()), ("CANCELLED", 2));
    assert_eq!(history_of(first), steps(&[("PENDING", 1), ("CANCELLED", 2)]));
    assert_eq!(cancelled(&second), first, "a second cancel returns the order unchanged");
    assert_eq!(history_of(&current(&app, &customer.token, &id).await), steps(&[("PENDING", 1), ("CANCELLED", 2)]));
}

#[tokio::test]
async fn the_owner_can_cancel_an_accepted_order() {
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;
    updated(&app.update_status(&factory, &id, "ACCEPTED", None).await);

    let body = app.cancel_order(&customer.token, &id).await;

    let order = cancelled(&body);
    assert_eq!(history_of(order), steps(&[("PENDING", 1), ("ACCEPTED", 2), ("CANCELLED", 3)]));
}

#[tokio::test]
async fn cancelling_once_production_started_is_an_invalid_transition() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;
    updated(&app.update_status(&factory, &id, "ACCEPTED", None).await);
    updated(&app.update_status(&factory, &id, "IN_PRODUCTION", None).await);

    // Act
    let body = app.cancel_order(&customer.token, &id).await;

    // Assert
    assert_refused(&app, &body, "INVALID_TRANSITION", &customer.token, &id, "IN_PRODUCTION", 3).await;
}

#[tokio::test]
async fn another_customer_cannot_cancel_an_order() {
    // Arrange
    let app = spawn_app().await;
    let (owner, id, _) = customer_with_order(&app).await;
    let stranger = app.register(&unique_username("stranger")).await;

    // Act
    let body = app.cancel_order(&stranger.token, &id).await;

    // Assert
    assert_refused(&app, &body, "NOT_FOUND", &owner.token, &id, "PENDING", 1).await;
}

#[tokio::test]
async fn cancel_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let (owner, id, _) = customer_with_order(&app).await;

    let body = app.graphql(None, "mutation($id: ID!) { cancelOrder(id: $id) { id } }", json!({"id": id})).await;

    assert_refused(&app, &body, "UNAUTHENTICATED", &owner.token, &id, "PENDING", 1).await;
}

#[tokio::test]
async fn changing_an_unknown_order_is_not_found() {
    // Arrange
    let app = spawn_app().await;
    let customer = app.register(&unique_username("owner")).await;
    let factory = app.factory_token().await;

    for id in [Uuid::new_v4().to_string(), "garbage".to_owned()] {
        // Act
        let update = app.update_status(&factory, &id, "ACCEPTED", None).await;
        let cancel = app.cancel_order(&customer.token, &id).await;

        // Assert
        assert_eq!(error_code(&update), "NOT_FOUND", "{update}");
        assert_eq!(error_code(&cancel), "NOT_FOUND", "{cancel}");
    }
}

// Several worker threads, so that the server really runs the writers side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_updates_move_the_order_once() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;

    // Act
    let bodies = join_all((0..10).map(|_| app.update_status(&factory, &id, "ACCEPTED", None))).await;

    // Assert
    for body in &bodies {
        let order = updated(body);
        assert_eq!((order["status"].as_str().unwrap(), order["version"].as_i64().unwrap()), ("ACCEPTED", 2), "{body}");
    }
    let order = current(&app, &customer.token, &id).await;
    assert_eq!(order["version"], 2);
    assert_eq!(history_of(&order), steps(&[("PENDING", 1), ("ACCEPTED", 2)]));
}

// Several worker threads, so that the server really runs the writers side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_accept_and_cancel_leaves_a_consistent_history() {
    // Arrange
    let app = spawn_app().await;
    let (customer, id, factory) = customer_with_order(&app).await;

    // Act: factory ACCEPTED and owner cancels, interleaved, all at once.
    let bodies = join_all((0..10).map(|i| {
        let (app, id, factory, token) = (&app, &id, &factory, &customer.token);
        async move {
            if i % 2 == 0 {
                ("ACCEPTED", app.update_status(factory, id, "ACCEPTED", None).await)
            } else {
                ("CANCELLED", app.cancel_order(token, id).await)
            }
        }
    }))
    .await;

    // Assert: cancelling is allowed from PENDING and ACCEPTED, so every cancel succeeds and
    // the order ends CANCELLED; an accept that comes after the cancel is refused.
    let order = current(&app, &customer.token, &id).await;
    let history = history_of(&order);
    let version = order["version"].as_i64().unwrap();
    assert_eq!(order["status"], "CANCELLED", "{order}");
    assert!(
        history == steps(&[("PENDING", 1), ("CANCELLED", 2)])
            || history == steps(&[("PENDING", 1), ("ACCEPTED", 2), ("CANCELLED", 3)]),
        "history must be a legal path with contiguous versions: {history:?}"
    );
    assert_eq!(version, history.len() as i64, "version = number of events");
    let times: Vec<DateTime<Utc>> = order["history"].as_array().unwrap().iter().map(|e| time(&e["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    for (asked, body) in &bodies {
        let field = if *asked == "ACCEPTED" { "updateOrderStatus" } else { "cancelOrder" };
        let returned = &body["data"][field];
        if returned.is_object() {
            // A success reports a state the history really went through.
            let (status, version) = (returned["status"].as_str().unwrap(), returned["version"].as_i64().unwrap());
            assert_eq!(status, *asked, "{body}");
            assert_eq!(history.get(version as usize - 1), Some(&(status.to_owned(), version)), "{body} vs {history:?}");
        } else {
            assert_eq!(*asked, "ACCEPTED", "a cancel never fails here: {body}");
            assert_eq!(error_code(body), "INVALID_TRANSITION", "{body}");
        }
    }
}
