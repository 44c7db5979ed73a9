//! Who may resolve what: the guards on authenticated and staff-only fields.

use super::*;
use crate::auth::tokens::TokenError;

const UPDATE_STATUS: &str = r#"mutation {
    updateOrderStatus(input: {orderId: "0190a1b2-0000-7000-8000-000000000000", status: ACCEPTED}) { id }
}"#;

#[tokio::test]
async fn a_staff_only_field_refuses_anonymous_callers_and_customers_and_admits_staff() {
    let harness = Harness::new().await;

    let anonymous = harness.run(Caller::Anonymous, UPDATE_STATUS).await;
    assert_eq!(codes(&anonymous), ["UNAUTHENTICATED"]);
    assert_eq!(first_message(&anonymous), "you must be logged in: send Authorization: Bearer <token>");

    let customer = harness.run(caller(Role::Customer), UPDATE_STATUS).await;
    assert_eq!(codes(&customer), ["FORBIDDEN"]);
    assert_eq!(first_message(&customer), "only the factory or an administrator may do that");

    // Past the guard, the resolver runs and finds no such order.
    for role in [Role::Factory, Role::Admin] {
        let staff = harness.run(caller(role), UPDATE_STATUS).await;
        assert_eq!(codes(&staff), ["NOT_FOUND"], "{role:?}");
    }
}

#[tokio::test]
async fn an_authenticated_field_says_what_is_wrong_with_the_token() {
    let harness = Harness::new().await;
    let expired = harness.run(Caller::Rejected(TokenError::Expired), "{ me { id } }").await;
    assert_eq!(codes(&expired), ["UNAUTHENTICATED"]);
    assert_eq!(first_message(&expired), "your token has expired; log in again");
    let invalid = harness.run(Caller::Rejected(TokenError::Invalid), "{ myOrders { edges { cursor } } }").await;
    assert_eq!(codes(&invalid), ["UNAUTHENTICATED"]);
    assert_eq!(first_message(&invalid), "your token is invalid; log in again");
    let anonymous = harness.run(Caller::Anonymous, r#"{ order(id: "x") { id } }"#).await;
    assert_eq!(codes(&anonymous), ["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn public_fields_need_no_account_even_with_a_rejected_token() {
    let harness = Harness::new().await;
    let response = harness.run(Caller::Rejected(TokenError::Expired), "{ figurines { id } }").await;
    assert_eq!(response.get("errors"), None);
    assert!(!response["data"]["figurines"].as_array().is_some_and(Vec::is_empty));
}
