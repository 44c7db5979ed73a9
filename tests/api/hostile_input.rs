//! Hostile input: NUL characters in text, bodies far over the limit, a query that asks for
//! the catalog a thousand times. Each gets a clear `BAD_USER_INPUT` (or 413) that the
//! client can read, never a server error or a dropped connection.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, error_code, spawn_app, unique_username};

const LOGIN: &str = "mutation($input: LoginInput!) { login(input: $input) { token } }";

async fn rest(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = app.client.post(format!("{}{path}", app.address)).json(body).send().await.expect("answered");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn a_nul_character_in_any_text_input_is_bad_user_input() {
    let app = spawn_app().await;
    let customer = app.register(&unique_username("nul")).await;

    let bodies = [
        app.graphql(None, LOGIN, json!({"input": {"username": "ada\u{0}", "password": "x"}})).await,
        app.graphql(None, r#"mutation { login(input: {username: "ada\u0000", password: "x"}) { token } }"#, json!({}))
            .await,
        app.graphql(
            None,
            "mutation($input: RegisterInput!) { register(input: $input) { token } }",
            json!({"input": {"username": unique_username("n"), "email": "n@example.com",
                             "password": crate::helpers::PASSWORD, "address": "1 Main\u{0} St"}}),
        )
        .await,
        app.place_order(&customer.token, json!({"items": [], "shippingAddress": "x\u{0}"})).await,
    ];
    for body in &bodies {
        assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("NUL"), "{body}");
        assert!(body["data"].is_null(), "nothing ran: {body}");
    }

    for (path, body) in [
        ("/login", json!({"username": "ada\u{0}", "password": "x"})),
        ("/register", json!({"username": "ada", "email": "a@example.com", "password": "x\u{0}", "address": "1"})),
    ] {
        let (status, answer) = rest(&app, path, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "BAD_USER_INPUT", "{path}: {answer}");
    }
}

#[tokio::test]
async fn a_body_far_over_the_limit_is_answered_413_and_the_client_reads_why() {
    let app = spawn_app().await;
    let huge_query = json!({"query": format!("{}\n{{ figurines {{ id }} }}", "#".repeat(5 * 1024 * 1024))});
    let huge_string =
        json!({"query": LOGIN, "variables": {"input": {"username": "x".repeat(1_000_000), "password": "x"}}});
    for body in [huge_query, huge_string] {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("the 413 is read, not a broken pipe");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let answer: Value = response.json().await.expect("a JSON body");
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    }

    let (status, answer) = rest(&app, "/login", &json!({"username": "x".repeat(2_000_000), "password": "x"})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["error"]["code"], "BAD_USER_INPUT", "{answer}");
}

#[tokio::test]
async fn a_client_that_expects_100_continue_is_refused_before_it_sends_the_body() {
    let app = spawn_app().await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\ncontent-type: application/json\r\n\
         content-length: 5000000\r\nexpect: 100-continue\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server answered and closed without waiting for the body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("BAD_USER_INPUT"), "{answer}");
}

#[tokio::test]
async fn the_catalog_under_a_thousand_aliases_is_refused_before_it_runs() {
    let app = spawn_app().await;
    let aliases: String = (0..1000).map(|n| format!("a{n}: figurines {{ id name unitPrice {{ cents }} }} ")).collect();
    let body = app.graphql(None, &format!("{{ {aliases} }}"), json!({})).await;
    // The catalog a thousand times over is a megabyte: only the start is worth a message.
    let start: String = body.to_string().chars().take(300).collect();
    assert!(body["data"].is_null(), "it was executed: {start}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT", "{start}");
    // One alias, or a few, are fine.
    let body = app.graphql(None, "{ a: figurines { id } b: figurines { name } packages { code } }", json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn graphiqls_introspection_query_is_within_every_limit() {
    let app = spawn_app().await;
    let body = app.graphql(None, INTROSPECTION_QUERY, json!({})).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert!(body["data"]["__schema"]["types"].as_array().is_some_and(|types| types.len() > 10), "{body}");
}

#[tokio::test]
async fn schema_graphql_specifies_date_time_as_introspection_does() {
    let app = spawn_app().await;
    let body = app.graphql(None, r#"{ __type(name: "DateTime") { specifiedByURL } }"#, json!({})).await;
    let url = body["data"]["__type"]["specifiedByURL"].as_str().unwrap_or_else(|| panic!("{body}"));
    let file = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    let expected = format!("scalar DateTime @specifiedBy(url: \"{url}\")");
    assert!(file.lines().any(|line| line.trim() == expected), "schema.graphql lacks `{expected}`");
}

/// The query GraphiQL (graphql-js 16 `getIntrospectionQuery` with every option on) sends
/// to build its documentation and autocompletion.
const INTROSPECTION_QUERY: &str = r#"
query IntrospectionQuery {
  __schema {
    description
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives {
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) { ...InputValue }
    }
  }
}
fragment FullType on __Type {
  kind
  name
  description
  specifiedByURL
  fields(includeDeprecated: true) {
    name
    description
    args(includeDeprecated: true) { ...InputValue }
    type { ...TypeRef }
    isDeprecated
    deprecationReason
  }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue {
  name
  description
  type { ...TypeRef }
  defaultValue
  isDeprecated
  deprecationReason
}
fragment TypeRef on __Type {
  kind
  name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;
