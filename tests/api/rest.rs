//! The seed-compatible REST endpoints (contract section 6): `POST /register`, `POST /login`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{FACTORY_PASSWORD, FACTORY_USERNAME, PASSWORD, TestApp, spawn_app};

fn registration(username: &str) -> Value {
    json!({"username": username, "email": format!("{username}@Example.com"), "password": PASSWORD, "address": "1 Main St, Springfield"})
}

/// POSTs `body` as JSON to `path`; the status, the `Retry-After` header and the JSON body.
async fn post_json(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Option<String>, Value) {
    let response = app.client.post(format!("{}{path}", app.address)).json(body).send().await.expect("request sent");
    read(response).await
}

/// POSTs raw bytes to `path` with the given content type.
async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: &'static str,
) -> (StatusCode, Option<String>, Value) {
    let response = app
        .client
        .post(format!("{}{path}", app.address))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .expect("request sent");
    read(response).await
}

async fn read(response: reqwest::Response) -> (StatusCode, Option<String>, Value) {
    let status = response.status();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(content_type.starts_with("application/json"), "REST answers JSON, got {content_type:?}");
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.expect("a JSON body");
    (status, retry_after, body)
}

/// Asserts the contract's REST error envelope `{"error": {"code", "message"}}`.
fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("an error message: {body}"));
    assert!(!message.is_empty(), "{body}");
}

#[tokio::test]
async fn register_answers_201_with_exactly_the_public_fields() {
    let app = spawn_app().await;

    let (status, _, body) = post_json(&app, "/register", &registration("Rest_User")).await;

    assert_eq!(status, StatusCode::CREATED, "{body}");
    let object = body.as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["address", "email", "id", "username"], "{body}");
    assert!(!body["id"].as_str().unwrap().is_empty());
    assert_eq!(body["username"], "Rest_User");
    assert_eq!(body["email"], "rest_user@example.com", "stored lowercased");
    assert_eq!(body["address"], "1 Main St, Springfield");
    let text = body.to_string();
    assert!(!text.contains(PASSWORD) && !text.to_lowercase().contains("argon2"), "{text}");
}

#[tokio::test]
async fn an_account_registered_over_rest_is_a_customer_on_graphql() {
    let app = spawn_app().await;
    let (_, _, registered) = post_json(&app, "/register", &registration("rest_then_gql")).await;

    let body = app.login("rest_then_gql", PASSWORD).await;

    assert_eq!(body["data"]["login"]["user"]["id"], registered["id"], "{body}");
    assert_eq!(body["data"]["login"]["user"]["role"], "CUSTOMER");
}

#[tokio::test]
async fn register_with_an_invalid_field_answers_400_bad_user_input() {
    let app = spawn_app().await;
    let cases = [
        ("username", json!("ab")),
        ("username", json!("has space")),
        ("email", json!("not-an-email")),
        ("password", json!("alllowercase123!")),
        ("address", json!("")),
        ("address", json!("a".repeat(201))),
    ];
    for (field, value) in cases {
        let mut input = registration("valid_name");
        input[field] = value.clone();

        let (status, _, body) = post_json(&app, "/register", &input).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "{field} = {value}: {body}");
        assert_error(&body, "BAD_USER_INPUT");
    }
    assert_eq!(app.count_rows("users").await, 1, "only the factory account exists");
}

#[tokio::test]
async fn register_with_a_too_short_password_answers_400() {
    let app = spawn_app().await;
    let mut input = registration("short_pw");
    input["password"] = json!("aB3$efg");

    let (status, _, body) = post_json(&app, "/register", &input).await;

    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "BAD_USER_INPUT");
    assert!(!body.to_string().contains("aB3$efg"), "the password is echoed: {body}");
}

#[tokio::test]
async fn register_with_a_missing_field_answers_400_bad_user_input() {
    let app = spawn_app().await;
    for missing in ["username", "email", "password", "address"] {
        let mut input = registration("missing_field");
        input.as_object_mut().unwrap().remove(missing);

        let (status, _, body) = post_json(&app, "/register", &input).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "without {missing}: {body}");
        assert_error(&body, "BAD_USER_INPUT");
    }
    assert_eq!(app.count_rows("users").await, 1, "only the factory account exists");
}

#[tokio::test]
async fn register_with_malformed_json_answers_400_bad_user_input() {
    let app = spawn_app().await;
    for body in [
        r#"{"username": "x", "#,
        "not json at all",
        "[1, 2, 3]",
        r#"{"username": 42, "email": "a@b.co", "password": "TestTest123@", "address": "x"}"#,
    ] {
        let (status, _, response) = post_raw(&app, "/register", "application/json", body).await;

        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {response}");
        assert_error(&response, "BAD_USER_INPUT");
    }
}

#[tokio::test]
async fn register_with_a_taken_username_or_email_answers_409_conflict() {
    let app = spawn_app().await;
    let (status, _, _) = post_json(&app, "/register", &registration("dupe")).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut same_name = registration("DUPE");
    same_name["email"] = json!("other@example.com");
    let mut same_email = registration("other_name");
    same_email["email"] = json!("DUPE@example.com");

    for input in [same_name, same_email] {
        let (status, _, body) = post_json(&app, "/register", &input).await;

        assert_eq!(status, StatusCode::CONFLICT, "{input}: {body}");
        assert_error(&body, "CONFLICT");
    }
    assert_eq!(app.count_rows("users").await, 2);
}

#[tokio::test]
async fn login_answers_200_with_a_token_that_works_on_graphql() {
    let app = spawn_app().await;
    let (_, _, registered) = post_json(&app, "/register", &registration("rest_login")).await;

    let (status, _, body) = post_json(&app, "/login", &json!({"username": "rest_login", "password": PASSWORD})).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["token"], "{body}");
    let token = body["token"].as_str().unwrap();
    let me = app.graphql(Some(token), "{ me { id username role } }", json!({})).await;
    assert_eq!(me["data"]["me"]["id"], registered["id"], "{me}");
    assert_eq!(me["data"]["me"]["username"], "rest_login");
    assert_eq!(me["data"]["me"]["role"], "CUSTOMER");
}

#[tokio::test]
async fn login_accepts_the_email_and_any_letter_case() {
    let app = spawn_app().await;
    let (_, _, registered) = post_json(&app, "/register", &registration("Rest_Case")).await;

    for login in ["REST_CASE", "Rest_Case@EXAMPLE.com"] {
        let (status, _, body) = post_json(&app, "/login", &json!({"username": login, "password": PASSWORD})).await;

        assert_eq!(status, StatusCode::OK, "{login}: {body}");
        let me = app.graphql(Some(body["token"].as_str().unwrap()), "{ me { id } }", json!({})).await;
        assert_eq!(me["data"]["me"]["id"], registered["id"], "{me}");
    }
}

#[tokio::test]
async fn login_with_a_wrong_password_or_unknown_user_answers_401() {
    let app = spawn_app().await;
    post_json(&app, "/register", &registration("rest_wrong")).await;

    let (wrong_status, _, wrong) =
        post_json(&app, "/login", &json!({"username": "rest_wrong", "password": "Wrong-Pass-123"})).await;
    let (unknown_status, _, unknown) =
        post_json(&app, "/login", &json!({"username": "rest_nobody", "password": PASSWORD})).await;

    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED, "{wrong}");
    assert_eq!(unknown_status, StatusCode::UNAUTHORIZED, "{unknown}");
    assert_error(&wrong, "UNAUTHENTICATED");
    assert_eq!(wrong, unknown, "the same answer whether or not the account exists");
    assert!(wrong.get("token").is_none());
}

#[tokio::test]
async fn login_with_a_missing_field_or_malformed_json_answers_400() {
    let app = spawn_app().await;

    let (no_password, _, body) = post_json(&app, "/login", &json!({"username": "someone"})).await;
    assert_eq!(no_password, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "BAD_USER_INPUT");
    let (malformed, _, body) = post_raw(&app, "/login", "application/json", "{\"username\":").await;
    assert_eq!(malformed, StatusCode::BAD_REQUEST, "{body}");
    assert_error(&body, "BAD_USER_INPUT");
}

#[tokio::test]
async fn login_after_five_failures_answers_429_with_retry_after() {
    let app = spawn_app().await;
    post_json(&app, "/register", &registration("rest_throttled")).await;
    for attempt in 1..=5 {
        let (status, retry_after, body) =
            post_json(&app, "/login", &json!({"username": "rest_throttled", "password": "Wrong-Pass-123"})).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {attempt}: {body}");
        assert_eq!(retry_after, None);
    }

    let (status, retry_after, body) =
        post_json(&app, "/login", &json!({"username": "rest_throttled", "password": PASSWORD})).await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_error(&body, "RATE_LIMITED");
    let seconds: u64 = retry_after.expect("a Retry-After header").parse().expect("Retry-After in seconds");
    assert!(seconds > 0);
    assert!(body.get("token").is_none());
    let (other, _, _) =
        post_json(&app, "/login", &json!({"username": FACTORY_USERNAME, "password": FACTORY_PASSWORD})).await;
    assert_eq!(other, StatusCode::OK, "other accounts still log in");
}
