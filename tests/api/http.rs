//! GraphQL over HTTP (the GraphQL-over-HTTP specification's status codes and media types)
//! and the infrastructure around it: the IDE pages, probes, limits and request ids.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn content_type(&self) -> &str {
        self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or_else(|err| panic!("a JSON body ({err}), got {status}: {text}"));
    Answer { status, headers, body }
}

fn graphql_url(app: &TestApp) -> String {
    format!("{}/graphql", app.address)
}

/// POSTs a JSON body to /graphql with an optional `Accept` header.
async fn post(app: &TestApp, accept: Option<&str>, body: &Value) -> Answer {
    let mut request = app.client.post(graphql_url(app)).json(body);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    answer(request.send().await.expect("request sent")).await
}

/// GETs /graphql with `query` (and more) as URL parameters.
async fn get(app: &TestApp, params: &[(&str, &str)]) -> Answer {
    answer(app.client.get(graphql_url(app)).query(params).send().await.expect("request sent")).await
}

/// Every error of a response (or of each response of a batch) carries `extensions.code`.
fn assert_every_error_has_a_code(body: &Value) {
    let responses = match body {
        Value::Array(responses) => responses.clone(),
        other => vec![other.clone()],
    };
    for response in responses {
        for error in response["errors"].as_array().into_iter().flatten() {
            let code =
                error["extensions"]["code"].as_str().unwrap_or_else(|| panic!("an error without a code: {body}"));
            assert!(!code.is_empty(), "{body}");
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "an error without a message: {body}");
        }
    }
}

/// A selection nested `levels` times through `ofType`, inside `__schema { types { fields { type`.
fn introspection_nested(levels: usize) -> String {
    format!(
        "{{ __schema {{ types {{ fields {{ type {{ {}name{} }} }} }} }} }}",
        "ofType { ".repeat(levels),
        " }".repeat(levels)
    )
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/healthz", app.address)).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn the_root_serves_graphiql() {
    let app = spawn_app().await;

    let response = app.client.get(format!("{}/", app.address)).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("graphiql"), "{html}");
    assert!(html.contains("/graphql"), "GraphiQL points at the API: {html}");
}

#[tokio::test]
async fn playground_serves_graphql_playground() {
    let app = spawn_app().await;

    let response = app.client.get(format!("{}/playground", app.address)).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("playground"), "{html}");
    assert!(html.contains("/graphql"), "Playground points at the API: {html}");
}

#[tokio::test]
async fn readyz_reports_the_database_ok() {
    let app = spawn_app().await;

    let ready = answer(app.client.get(format!("{}/readyz", app.address)).send().await.unwrap()).await;

    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["database"], "ok", "{}", ready.body);
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;

    let missing = answer(app.client.get(format!("{}/no/such/route", app.address)).send().await.unwrap()).await;

    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.content_type().starts_with("application/json"), "{}", missing.content_type());
    assert_eq!(missing.body["error"]["code"], "NOT_FOUND", "{}", missing.body);
    assert!(missing.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn a_query_over_get_works() {
    let app = spawn_app().await;

    let got = get(&app, &[("query", "{figurines{id}}")]).await;

    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(got.body["errors"].is_null(), "{}", got.body);
    let figurines = got.body["data"]["figurines"].as_array().expect("figurines");
    assert!(figurines.len() >= 8, "the seeded catalog: {}", got.body);
    assert!(figurines.iter().all(|f| f["id"].as_str().is_some_and(|id| !id.is_empty())));
}

#[tokio::test]
async fn a_query_over_get_takes_variables_and_an_operation_name() {
    let app = spawn_app().await;
    let customer = app.register("get_user").await;

    let response = app
        .client
        .get(graphql_url(&app))
        .query(&[
            ("query", "query A { figurines { id } } query Me($x: Boolean!) { me @include(if: $x) { username } }"),
            ("operationName", "Me"),
            ("variables", r#"{"x": true}"#),
        ])
        .bearer_auth(&customer.token)
        .send()
        .await
        .unwrap();
    let got = answer(response).await;

    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["data"], json!({"me": {"username": "get_user"}}), "{}", got.body);
}

#[tokio::test]
async fn a_mutation_over_get_is_refused_with_405_and_does_nothing() {
    let app = spawn_app().await;
    let mutation = r#"mutation { register(input: {username: "via_get", email: "via_get@example.com", password: "TestTest123@", address: "x"}) { token } }"#;

    let got = get(&app, &[("query", mutation)]).await;

    assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED, "{}", got.body);
    assert_eq!(got.headers["allow"], "POST");
    assert!(got.body.get("data").is_none(), "{}", got.body);
    assert_every_error_has_a_code(&got.body);
    assert_eq!(app.count_rows("users").await, 1, "nothing was registered");
}

#[tokio::test]
async fn a_named_mutation_chosen_by_operation_name_over_get_is_refused() {
    let app = spawn_app().await;
    let document =
        r#"query Q { figurines { id } } mutation M { login(input: {username: "factory", password: "x"}) { token } }"#;

    let got = get(&app, &[("query", document), ("operationName", "M")]).await;

    assert_eq!(got.status, StatusCode::METHOD_NOT_ALLOWED, "{}", got.body);
    assert_eq!(got.headers["allow"], "POST");
}

#[tokio::test]
async fn a_post_with_a_non_json_content_type_is_415() {
    let app = spawn_app().await;

    let response = app
        .client
        .post(graphql_url(&app))
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"query": "{ figurines { id } }"}"#)
        .send()
        .await
        .unwrap();
    let got = answer(response).await;

    assert_eq!(got.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", got.body);
    assert_every_error_has_a_code(&got.body);
}

#[tokio::test]
async fn a_post_with_malformed_json_is_400() {
    let app = spawn_app().await;
    for body in [r#"{"query": "{ figurines { id } }""#, "garbage", r#"{"query": 42}"#] {
        let response = app
            .client
            .post(graphql_url(&app))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let got = answer(response).await;

        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{body}: {}", got.body);
        assert!(got.body.get("data").is_none(), "{}", got.body);
        assert_every_error_has_a_code(&got.body);
    }
}

#[tokio::test]
async fn a_syntax_error_with_the_graphql_response_media_type_is_400_without_data() {
    let app = spawn_app().await;

    let got = post(&app, Some(GRAPHQL_RESPONSE_JSON), &json!({"query": "{ figurines { id "})).await;

    assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
    assert!(got.content_type().starts_with(GRAPHQL_RESPONSE_JSON), "{}", got.content_type());
    assert!(got.body.get("data").is_none(), "a request that never executed has no data key: {}", got.body);
    assert!(!got.body["errors"].as_array().unwrap().is_empty());
    assert_every_error_has_a_code(&got.body);
}

#[tokio::test]
async fn a_validation_error_with_the_graphql_response_media_type_is_400() {
    let app = spawn_app().await;

    let got = post(&app, Some(GRAPHQL_RESPONSE_JSON), &json!({"query": "{ figurines { noSuchField } }"})).await;

    assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
    assert!(got.body.get("data").is_none(), "{}", got.body);
    assert_eq!(got.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{}", got.body);
}

#[tokio::test]
async fn a_valid_query_with_the_graphql_response_media_type_is_200() {
    let app = spawn_app().await;

    let got = post(&app, Some(GRAPHQL_RESPONSE_JSON), &json!({"query": "{ figurines { id } }"})).await;

    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(got.content_type().starts_with(GRAPHQL_RESPONSE_JSON), "{}", got.content_type());
    assert!(got.body["data"]["figurines"].as_array().is_some_and(|f| !f.is_empty()), "{}", got.body);
    assert!(got.body.get("errors").is_none(), "{}", got.body);
}

#[tokio::test]
async fn a_resolver_error_with_the_graphql_response_media_type_is_200_with_data() {
    let app = spawn_app().await;

    let got = post(&app, Some(GRAPHQL_RESPONSE_JSON), &json!({"query": "{ me { id } }"})).await;

    assert_eq!(got.status, StatusCode::OK, "an executed request is 200 even when a field fails: {}", got.body);
    assert!(got.body.get("data").is_some(), "{}", got.body);
    assert_eq!(got.body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{}", got.body);
}

#[tokio::test]
async fn a_validation_error_with_application_json_is_200_with_a_coded_error_and_no_data() {
    let app = spawn_app().await;

    let got = post(&app, Some("application/json"), &json!({"query": "{ figurines { noSuchField } }"})).await;

    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(got.content_type().starts_with("application/json"), "{}", got.content_type());
    assert!(got.body.get("data").is_none(), "{}", got.body);
    assert_eq!(got.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{}", got.body);
}

#[tokio::test]
async fn a_request_without_accept_is_answered_with_application_json() {
    let app = spawn_app().await;

    let got = post(&app, None, &json!({"query": "{ figurines { id } }"})).await;

    assert_eq!(got.status, StatusCode::OK);
    assert!(got.content_type().starts_with("application/json"), "{}", got.content_type());
}

#[tokio::test]
async fn accepting_only_html_is_406() {
    let app = spawn_app().await;

    let response = app
        .client
        .post(graphql_url(&app))
        .header(ACCEPT, "text/html")
        .json(&json!({"query": "{ figurines { id } }"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
}

#[tokio::test]
async fn a_batch_of_two_queries_answers_an_array_of_two_results() {
    let app = spawn_app().await;
    let customer = app.register("batcher").await;

    let response = app
        .client
        .post(graphql_url(&app))
        .bearer_auth(&customer.token)
        .json(&json!([{"query": "{ figurines { id } }"}, {"query": "query($x: Boolean!) { me @include(if: $x) { username } }", "variables": {"x": true}}]))
        .send()
        .await
        .unwrap();
    let got = answer(response).await;

    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let results = got.body.as_array().expect("an array of results");
    assert_eq!(results.len(), 2, "{}", got.body);
    assert!(results[0]["data"]["figurines"].as_array().is_some_and(|f| !f.is_empty()), "{}", got.body);
    assert_eq!(results[1]["data"]["me"]["username"], "batcher", "results keep the order of the batch: {}", got.body);
}

#[tokio::test]
async fn a_batch_keeps_each_operations_errors_to_itself() {
    let app = spawn_app().await;

    let got = post(
        &app,
        None,
        &json!([{"query": "{ me { id } }"}, {"query": "{ figurines { id } }"}, {"query": "{ nope }"}]),
    )
    .await;

    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    let results = got.body.as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{}", got.body);
    assert!(results[1].get("errors").is_none() && results[1]["data"]["figurines"].is_array(), "{}", got.body);
    assert_eq!(results[2]["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{}", got.body);
    assert_every_error_has_a_code(&got.body);
}

#[tokio::test]
async fn a_batch_of_ten_is_accepted_and_of_eleven_is_400() {
    let app = spawn_app().await;
    let batch = |n: usize| Value::Array(vec![json!({"query": "{ figurines { id } }"}); n]);

    let ten = post(&app, None, &batch(10)).await;
    let eleven = post(&app, None, &batch(11)).await;

    assert_eq!(ten.status, StatusCode::OK, "{}", ten.body);
    assert_eq!(ten.body.as_array().map(Vec::len), Some(10));
    assert_eq!(eleven.status, StatusCode::BAD_REQUEST, "{}", eleven.body);
    assert!(eleven.body.get("data").is_none() && !eleven.body.is_array(), "{}", eleven.body);
    assert_every_error_has_a_code(&eleven.body);
}

#[tokio::test]
async fn an_empty_batch_is_400() {
    let app = spawn_app().await;

    let got = post(&app, None, &json!([])).await;

    assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
    assert_every_error_has_a_code(&got.body);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let padding = "#".repeat(65 * 1024);
    let body = json!({"query": format!("{padding}\n{{ figurines {{ id }} }}")}).to_string();

    let response =
        app.client.post(graphql_url(&app)).header(CONTENT_TYPE, "application/json").body(body).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_served() {
    let app = spawn_app().await;
    let padding = "#".repeat(60 * 1024);

    let got = post(&app, None, &json!({"query": format!("{padding}\n{{ figurines {{ id }} }}")})).await;

    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(got.body["data"]["figurines"].is_array(), "{}", got.body);
}

#[tokio::test]
async fn a_query_deeper_than_the_limit_is_refused_as_bad_user_input() {
    let app = spawn_app().await;

    let got = post(&app, None, &json!({"query": introspection_nested(20)})).await;

    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(got.body.get("data").is_none(), "nothing was executed: {}", got.body);
    assert_eq!(got.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{}", got.body);
    assert_every_error_has_a_code(&got.body);
}

#[tokio::test]
async fn the_nesting_of_a_standard_introspection_query_is_within_the_limit() {
    let app = spawn_app().await;

    let got = post(&app, None, &json!({"query": introspection_nested(7)})).await;

    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert!(got.body.get("errors").is_none(), "{}", got.body);
    assert!(got.body["data"]["__schema"]["types"].as_array().is_some_and(|t| !t.is_empty()), "{}", got.body);
}

#[tokio::test]
async fn introspection_works_in_development() {
    let app = spawn_app().await;

    let got = post(&app, None, &json!({"query": "{ __schema { types { name } } }"})).await;

    assert!(got.body.get("errors").is_none(), "{}", got.body);
    let names: Vec<&str> =
        got.body["data"]["__schema"]["types"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    for expected in ["Figurine", "Order", "User", "Role"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
}

#[tokio::test]
async fn introspection_is_refused_in_production() {
    let app = spawn_app_with(&["--app-env", "production"]).await;

    let schema = post(&app, None, &json!({"query": "{ __schema { types { name } } }"})).await;
    let type_query = post(&app, None, &json!({"query": "{ __type(name: \"User\") { fields { name } } }"})).await;
    let ordinary = post(&app, None, &json!({"query": "{ figurines { id } }"})).await;

    for got in [&schema, &type_query] {
        assert!(got.status.is_success() || got.status.is_client_error(), "{}", got.status);
        assert!(got.body["data"]["__schema"].is_null() && got.body["data"]["__type"].is_null(), "{}", got.body);
        assert!(
            got.body["errors"].as_array().is_some_and(|e| !e.is_empty()),
            "introspection must be refused with an error: {}",
            got.body
        );
        assert_every_error_has_a_code(&got.body);
    }
    assert!(
        ordinary.body["data"]["figurines"].as_array().is_some_and(|f| !f.is_empty()),
        "queries still work: {}",
        ordinary.body
    );
}

#[tokio::test]
async fn every_kind_of_failure_carries_an_error_code() {
    let app = spawn_app().await;
    let requests = [
        json!({"query": "{ figurines { id "}),
        json!({"query": "{ figurines { nope } }"}),
        json!({"query": "query($n: Int!) { figurines { id } }"}),
        json!({"query": "query($n: Int!) { figurines { id } }", "variables": {"n": "not a number"}}),
        json!({"query": "{ me { id } }"}),
        json!({"query": "{ order(id: \"not-an-id\") { id } }"}),
        json!({"query": "query A { figurines { id } } query B { packages { id } }"}),
        json!({"query": "{ figurines { id } }", "operationName": "Missing"}),
        json!({"query": "mutation { login(input: {username: \"\", password: \"\"}) { token } }"}),
        json!({"query": "{ quote(input: {items: []}) { total { cents } } }"}),
        json!({"query": introspection_nested(20)}),
        json!({"query": ""}),
    ];
    for request in requests {
        let got = post(&app, None, &request).await;

        assert!(!got.status.is_server_error(), "{request}: {}", got.status);
        assert!(got.body["errors"].as_array().is_some_and(|e| !e.is_empty()), "{request} must fail: {}", got.body);
        assert_every_error_has_a_code(&got.body);
    }
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = spawn_app().await;

    let graphql =
        app.client.post(graphql_url(&app)).json(&json!({"query": "{ figurines { id } }"})).send().await.unwrap();
    let missing = app.client.get(format!("{}/nowhere", app.address)).send().await.unwrap();
    let other =
        app.client.post(graphql_url(&app)).json(&json!({"query": "{ figurines { id } }"})).send().await.unwrap();

    let id =
        |response: &reqwest::Response| response.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let first = id(&graphql).expect("x-request-id on /graphql");
    let second = id(&other).expect("x-request-id on /graphql");
    assert!(!first.is_empty());
    assert_ne!(first, second, "each request gets its own id");
    assert!(id(&missing).is_some_and(|v| !v.is_empty()), "x-request-id on a 404");
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_echoed_back() {
    let app = spawn_app().await;

    let response = app
        .client
        .post(graphql_url(&app))
        .header("x-request-id", "trace-me-123")
        .json(&json!({"query": "{ figurines { id } }"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["x-request-id"], "trace-me-123");
}

#[tokio::test]
async fn a_get_without_a_query_or_with_variables_that_are_not_json_is_400() {
    let app = spawn_app().await;

    let no_query = get(&app, &[("variables", "{}")]).await;
    let bad_variables =
        get(&app, &[("query", "query($x: Int) { figurines { id } }"), ("variables", "{not json")]).await;

    for got in [no_query, bad_variables] {
        assert_eq!(got.status, StatusCode::BAD_REQUEST, "{}", got.body);
        assert!(got.body.get("data").is_none(), "{}", got.body);
        assert_every_error_has_a_code(&got.body);
    }
}
