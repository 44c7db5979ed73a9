//! Which code an error gets when nothing in our code gave it one.

use super::*;
use crate::domain::Cart;
use crate::domain::cart::RawCartLine;
use crate::services::accounts::{self, NewAccount};
use crate::services::orders::{self, PlaceOrder};

#[tokio::test]
async fn a_request_that_fails_validation_is_bad_user_input_and_never_executes() {
    let harness = Harness::new().await;
    let unknown_field = harness.run(Caller::Anonymous, "{ figurines { nope } }").await;
    assert_eq!(codes(&unknown_field), ["BAD_USER_INPUT"]);
    assert_eq!(unknown_field["data"], Value::Null);

    let syntax = harness.run(Caller::Anonymous, "{ figurines { id }").await;
    assert_eq!(codes(&syntax), ["BAD_USER_INPUT"]);

    let wrong_type = run(
        &harness.engine,
        Some(caller(Role::Customer)),
        "query($first: Int) { myOrders(first: $first) { edges { cursor } } }",
        Variables::from_json(serde_json::json!({"first": "ten"})),
    )
    .await;
    let wrong_type = codes(&wrong_type);
    assert!(!wrong_type.is_empty() && wrong_type.iter().all(|code| *code == "BAD_USER_INPUT"), "{wrong_type:?}");
}

#[tokio::test]
async fn a_required_variable_left_out_is_bad_user_input_though_execution_finds_it() {
    let harness = Harness::new().await;
    let query = "query($id: ID!) { order(id: $id) { id } }";
    let response = run(&harness.engine, Some(caller(Role::Admin)), query, Variables::default()).await;
    assert_eq!(codes(&response), ["BAD_USER_INPUT"]);
    // Raised inside the field, not before execution: that is what makes it the hard case.
    assert_eq!(response["errors"][0]["path"], serde_json::json!(["order"]));
}

#[tokio::test]
async fn a_fault_inside_a_field_without_a_code_is_an_internal_error_and_says_nothing_of_it() {
    let harness = Harness::new().await;
    let order = place_an_order(&harness).await;
    let query = format!(r#"{{ order(id: "{}") {{ id customer {{ id }} }} }}"#, order.id);
    let response = run(
        &harness.engine_without_loaders(),
        Some(Caller::Authenticated(Principal { user_id: order.customer, role: Role::Customer })),
        &query,
        Variables::default(),
    )
    .await;
    assert_eq!(codes(&response), ["INTERNAL_SERVER_ERROR"]);
    assert_eq!(first_message(&response), "internal server error");
    assert_eq!(response["errors"][0]["path"], serde_json::json!(["order", "customer"]));
}

#[tokio::test]
async fn a_request_without_a_caller_is_an_internal_error_not_an_anonymous_one() {
    let harness = Harness::new().await;
    let response = run(&harness.engine, None, "{ me { id } }", Variables::default()).await;
    assert_eq!(codes(&response), ["INTERNAL_SERVER_ERROR"]);
    assert_eq!(first_message(&response), "internal server error");
    let staff_only = run(
        &harness.engine,
        None,
        r#"mutation { updateOrderStatus(input: {orderId: "x", status: SHIPPED}) { id } }"#,
        Variables::default(),
    )
    .await;
    assert_eq!(codes(&staff_only), ["INTERNAL_SERVER_ERROR"]);
}

struct PlacedOrder {
    id: Uuid,
    customer: Uuid,
}

/// An order of one figurine by a new customer.
async fn place_an_order(harness: &Harness) -> PlacedOrder {
    let state = &harness.state;
    let new = NewAccount::parse("buyer", "buyer@example.com", "TestTest123@", "1 Main Street").expect("valid");
    let account = accounts::register(&state.db, &state.hasher, new, Role::Customer).await.expect("registered");
    let catalog = state.catalog.current(&state.db).await.expect("a catalog");
    let figurine = catalog.figurines()[0].id.to_string();
    let cart = Cart::parse(&[RawCartLine { id: figurine, quantity: 1 }], &[]).expect("a cart");
    let customer = Principal { user_id: account.id, role: Role::Customer };
    let request = PlaceOrder { cart, shipping_address: None, idempotency_key: None };
    let order = orders::place(&state.db, &catalog, &state.outbox, customer, request).await.expect("placed");
    PlacedOrder { id: order.id, customer: account.id }
}
