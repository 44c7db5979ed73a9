//! Accounts over GraphQL: `register`, `login`, `me`, tokens, throttling and the service
//! accounts (FACTORY from configuration, ADMIN from the `create-admin` command).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{
    FACTORY_PASSWORD, FACTORY_USERNAME, JWT_SECRET, PASSWORD, TestApp, error_code, error_field, spawn_app,
    unique_username,
};

const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { token expiresAt user { id username email address role createdAt } } }";
const ME: &str = "{ me { id username email role } }";

fn register_input(username: &str) -> Value {
    json!({"username": username, "email": format!("{username}@example.com"), "password": PASSWORD, "address": "1 Main St, Springfield"})
}

/// `register` with `input`; the whole body.
async fn register_with(app: &TestApp, input: Value) -> Value {
    app.graphql(None, REGISTER, json!({"input": input})).await
}

/// `register` with one field of a valid input replaced by `value`.
async fn register_with_field(app: &TestApp, field: &str, value: &str) -> Value {
    let mut input = register_input(&unique_username("bad"));
    input[field] = json!(value);
    register_with(app, input).await
}

/// `me` with the given raw `Authorization` bearer token; the whole body.
async fn me(app: &TestApp, token: &str) -> Value {
    app.graphql(Some(token), ME, json!({})).await
}

fn sign(claims: &Value, algorithm: Algorithm) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), claims, &EncodingKey::from_secret(JWT_SECRET.as_bytes()))
        .expect("sign a test token")
}

fn claims(user_id: &str, role: &str, iat: i64, exp: i64) -> Value {
    json!({"sub": user_id, "role": role, "iat": iat, "exp": exp})
}

fn decode_segment(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url segment")).expect("JSON segment")
}

fn assert_unauthenticated(body: &Value, what: &str) {
    assert_eq!(error_code(body), "UNAUTHENTICATED", "{what}: {body}");
    assert!(body["data"].is_null(), "{what} must not return data: {body}");
}

#[tokio::test]
async fn register_returns_a_token_and_the_new_customer() {
    let app = spawn_app().await;
    let username = unique_username("Ada");

    let body = register_with(
        &app,
        json!({"username": username, "email": format!("{username}@Example.COM"), "password": PASSWORD, "address": "12 Analytical Row, London"}),
    )
    .await;

    assert!(body["errors"].is_null(), "{body}");
    let payload = &body["data"]["register"];
    let user = &payload["user"];
    assert!(!user["id"].as_str().unwrap().is_empty());
    assert_eq!(user["username"], json!(username), "the username keeps its case");
    assert_eq!(
        user["email"],
        json!(format!("{}@example.com", username.to_lowercase())),
        "the email is stored lowercased"
    );
    assert_eq!(user["address"], "12 Analytical Row, London");
    assert_eq!(user["role"], "CUSTOMER");
    let created_at: DateTime<Utc> = user["createdAt"].as_str().unwrap().parse().expect("createdAt is RFC 3339");
    let expires_at: DateTime<Utc> = payload["expiresAt"].as_str().unwrap().parse().expect("expiresAt is RFC 3339");
    let lifetime = (expires_at - created_at).num_seconds();
    assert!((3590..=3610).contains(&lifetime), "the token lives the default hour, got {lifetime} s");

    let token = payload["token"].as_str().unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT: {token}");
    assert_eq!(decode_segment(parts[0])["alg"], "HS256");
    let claims = decode_segment(parts[1]);
    assert_eq!(claims["sub"], user["id"]);
    assert_eq!(claims["role"], "CUSTOMER");
    assert_eq!(claims["exp"].as_i64(), Some(expires_at.timestamp()), "expiresAt is the token's exp");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
}

#[tokio::test]
async fn the_token_from_register_works_for_me() {
    let app = spawn_app().await;
    let body = register_with(&app, register_input("grace_h")).await;
    let token = body["data"]["register"]["token"].as_str().unwrap();

    let me = me(&app, token).await;

    assert!(me["errors"].is_null(), "{me}");
    assert_eq!(me["data"]["me"]["id"], body["data"]["register"]["user"]["id"]);
    assert_eq!(me["data"]["me"]["username"], "grace_h");
    assert_eq!(me["data"]["me"]["email"], "grace_h@example.com");
    assert_eq!(me["data"]["me"]["role"], "CUSTOMER");
}

#[tokio::test]
async fn register_never_sends_the_password_or_its_hash() {
    let app = spawn_app().await;
    let password = "Unguessable-Pa55word!";
    let username = unique_username("secret");

    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({
            "query": "mutation($input: RegisterInput!) { register(input: $input) { token expiresAt user { id username email address role createdAt } } }",
            "variables": {"input": {"username": username, "email": format!("{username}@example.com"), "password": password, "address": "1 Main St"}},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();

    assert!(text.contains("\"register\":{"), "register succeeded: {text}");
    assert!(!text.contains(password), "the password leaked: {text}");
    assert!(!text.to_lowercase().contains("argon2"), "a password hash leaked: {text}");
    let login = app.login(&username, password).await;
    let login_text = login.to_string();
    assert!(login["data"]["login"].is_object(), "{login}");
    assert!(!login_text.contains(password) && !login_text.to_lowercase().contains("argon2"), "{login_text}");
}

#[tokio::test]
async fn register_rejects_every_bad_username() {
    let app = spawn_app().await;
    let too_long = "u".repeat(33);
    for bad in ["ab", "", too_long.as_str(), "has space", "semi;colon", "émile", "at@sign", "slash/name", "tab\tname"]
    {
        let body = register_with_field(&app, "username", bad).await;

        assert_eq!(error_code(&body), "BAD_USER_INPUT", "username {bad:?}: {body}");
        assert_eq!(error_field(&body), "username", "username {bad:?}: {body}");
        assert!(!body["errors"][0]["message"].as_str().unwrap().is_empty());
        assert!(body["data"].is_null(), "{body}");
    }
    assert_eq!(app.count_rows("users").await, 1, "only the factory account exists");
}

#[tokio::test]
async fn register_rejects_every_bad_email() {
    let app = spawn_app().await;
    let long_local = format!("{}@example.com", "a".repeat(65));
    let too_long = format!("a@{}.com", "b".repeat(260));
    for bad in [
        "",
        "plain",
        "@example.com",
        "a@",
        "a@localhost",
        "a@@example.com",
        "a..b@example.com",
        ".a@example.com",
        "a b@example.com",
        "a@exa mple.com",
        "a@-example.com",
        "a@example.c0m",
        long_local.as_str(),
        too_long.as_str(),
    ] {
        let body = register_with_field(&app, "email", bad).await;

        assert_eq!(error_code(&body), "BAD_USER_INPUT", "email {bad:?}: {body}");
        assert_eq!(error_field(&body), "email", "email {bad:?}: {body}");
        assert!(body["data"].is_null(), "{body}");
    }
    assert_eq!(app.count_rows("users").await, 1, "only the factory account exists");
}

#[tokio::test]
async fn register_rejects_every_bad_password_without_echoing_it() {
    let app = spawn_app().await;
    let too_long = format!("aB3${}", "x".repeat(125));
    assert_eq!(too_long.chars().count(), 129);
    for bad in [
        "aB3$efg",         // 7 characters
        too_long.as_str(), // 129 characters
        "TESTTEST123@",    // no lower-case letter
        "testtest123@",    // no upper-case letter
        "TestTestabc@",    // no digit
        "TestTest1234",    // no symbol
        "",
    ] {
        let body = register_with_field(&app, "password", bad).await;

        assert_eq!(error_code(&body), "BAD_USER_INPUT", "password {bad:?}: {body}");
        assert_eq!(error_field(&body), "password", "password {bad:?}: {body}");
        assert!(body["data"].is_null(), "{body}");
        if !bad.is_empty() {
            assert!(!body.to_string().contains(bad), "the error echoes the password: {body}");
        }
    }
    assert_eq!(app.count_rows("users").await, 1, "only the factory account exists");
}

#[tokio::test]
async fn register_rejects_every_bad_address() {
    let app = spawn_app().await;
    let too_long = "a".repeat(201);
    for bad in ["", "   ", too_long.as_str(), "1 Main St\u{7}", "1 Main\u{1b}St", "1 Main St\u{0}"] {
        let body = register_with_field(&app, "address", bad).await;

        assert_eq!(error_code(&body), "BAD_USER_INPUT", "address {bad:?}: {body}");
        assert_eq!(error_field(&body), "address", "address {bad:?}: {body}");
        assert!(body["data"].is_null(), "{body}");
    }
    assert_eq!(app.count_rows("users").await, 1, "only the factory account exists");
}

#[tokio::test]
async fn register_accepts_values_at_every_limit() {
    let app = spawn_app().await;
    let long_password = format!("aB3${}", "x".repeat(124));
    let cases = [
        json!({"username": "abc", "email": "a@b.co", "password": "aB3$efgh", "address": "x"}),
        json!({"username": "u".repeat(32), "email": "first.last+tag@mail.example.org", "password": long_password, "address": "a".repeat(200)}),
        json!({"username": "a.b-c_D", "email": "x_y@sub-domain.example.io", "password": PASSWORD, "address": "1 Main St\nSpringfield"}),
    ];
    for input in cases {
        let body = register_with(&app, input.clone()).await;

        assert!(body["errors"].is_null(), "{input}: {body}");
        assert_eq!(body["data"]["register"]["user"]["username"], input["username"]);
        assert_eq!(body["data"]["register"]["user"]["address"], input["address"]);
    }
    assert_eq!(app.count_rows("users").await, 4);
}

#[tokio::test]
async fn a_username_taken_in_another_letter_case_is_a_conflict() {
    let app = spawn_app().await;
    app.register("Ada_Lovelace").await;

    let body = register_with(
        &app,
        json!({"username": "ada_LOVELACE", "email": "someone.else@example.com", "password": PASSWORD, "address": "2 Main St"}),
    )
    .await;

    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(error_field(&body), "username");
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(app.count_rows("users").await, 2, "the factory and the first Ada");
}

#[tokio::test]
async fn an_email_taken_in_another_letter_case_is_a_conflict() {
    let app = spawn_app().await;
    register_with(
        &app,
        json!({"username": "first", "email": "Shared@Example.com", "password": PASSWORD, "address": "1 Main St"}),
    )
    .await;

    let body = register_with(
        &app,
        json!({"username": "second", "email": "sHARED@example.COM", "password": PASSWORD, "address": "2 Main St"}),
    )
    .await;

    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(error_field(&body), "email");
    assert!(body["data"].is_null(), "{body}");
    assert_eq!(app.count_rows("users").await, 2, "the factory and the first account");
}

#[tokio::test]
async fn concurrent_registrations_of_one_username_let_exactly_one_through() {
    let app = spawn_app().await;
    let attempts = (0..5).map(|i| {
        register_with(&app, json!({"username": "racer", "email": format!("racer{i}@example.com"), "password": PASSWORD, "address": "1 Track Rd"}))
    });

    let bodies = futures::future::join_all(attempts).await;

    let succeeded = bodies.iter().filter(|b| b["data"]["register"].is_object()).count();
    assert_eq!(succeeded, 1, "{bodies:#?}");
    for body in bodies.iter().filter(|b| !b["data"]["register"].is_object()) {
        assert_eq!(error_code(body), "CONFLICT", "{body}");
        assert_eq!(error_field(body), "username", "{body}");
    }
    assert_eq!(app.count_rows("users").await, 2, "the factory and one racer");
}

#[tokio::test]
async fn login_with_the_username_in_another_letter_case_works() {
    let app = spawn_app().await;
    let customer = app.register("Mixed_Case").await;

    let body = app.login("mIXED_cASE", PASSWORD).await;

    let login = &body["data"]["login"];
    assert!(login.is_object(), "{body}");
    assert_eq!(login["user"]["id"], json!(customer.id));
    assert_eq!(login["user"]["username"], "Mixed_Case");
    assert_eq!(login["user"]["role"], "CUSTOMER");
    let me = me(&app, login["token"].as_str().unwrap()).await;
    assert_eq!(me["data"]["me"]["id"], json!(customer.id), "{me}");
}

#[tokio::test]
async fn login_with_the_email_in_any_letter_case_works() {
    let app = spawn_app().await;
    let customer = app.register("mail_user").await;

    for login in ["mail_user@example.com", "MAIL_USER@Example.Com"] {
        let body = app.login(login, PASSWORD).await;

        assert!(body["errors"].is_null(), "{login}: {body}");
        assert_eq!(body["data"]["login"]["user"]["id"], json!(customer.id), "{login}");
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_give_the_same_unauthenticated_error() {
    let app = spawn_app().await;
    app.register("known_user").await;

    let wrong_password = app.login("known_user", "TestTest123!").await;
    let unknown_user = app.login("nobody_here", PASSWORD).await;

    assert_eq!(error_code(&wrong_password), "UNAUTHENTICATED", "{wrong_password}");
    assert_eq!(error_code(&unknown_user), "UNAUTHENTICATED", "{unknown_user}");
    assert!(wrong_password["data"].is_null() && unknown_user["data"].is_null());
    assert_eq!(wrong_password["errors"][0]["message"], unknown_user["errors"][0]["message"]);
    assert_eq!(wrong_password["errors"][0]["extensions"], unknown_user["errors"][0]["extensions"]);
}

#[tokio::test]
async fn login_with_an_empty_username_or_password_is_bad_user_input() {
    let app = spawn_app().await;
    app.register("empty_case").await;

    let no_username = app.login("", PASSWORD).await;
    let blank_username = app.login("   ", PASSWORD).await;
    let no_password = app.login("empty_case", "").await;

    for (body, field) in [(&no_username, "username"), (&blank_username, "username"), (&no_password, "password")] {
        assert_eq!(error_code(body), "BAD_USER_INPUT", "{body}");
        assert_eq!(error_field(body), field, "{body}");
    }
}

#[tokio::test]
async fn the_sixth_login_after_five_failures_is_rate_limited_even_with_the_right_password() {
    let app = spawn_app().await;
    app.register("target").await;
    for attempt in 1..=5 {
        let body = app.login("target", "Wrong-Pass-123").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "attempt {attempt}: {body}");
    }

    let body = app.login("target", PASSWORD).await;

    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
    assert!(body["data"].is_null(), "{body}");
    let retry_after = &body["errors"][0]["extensions"]["retryAfter"];
    assert!(retry_after.is_u64(), "retryAfter is an integer: {body}");
    assert!(retry_after.as_u64().unwrap() > 0, "{body}");
}

#[tokio::test]
async fn throttling_ignores_the_letter_case_of_the_username() {
    let app = spawn_app().await;
    app.register("CaseThrottle").await;
    for attempt in 0..5 {
        let login = if attempt % 2 == 0 { "casethrottle" } else { "CASETHROTTLE" };
        let body = app.login(login, "Wrong-Pass-123").await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }

    let body = app.login("CaseThrottle", PASSWORD).await;

    assert_eq!(error_code(&body), "RATE_LIMITED", "{body}");
}

#[tokio::test]
async fn a_throttled_username_does_not_lock_out_other_users() {
    let app = spawn_app().await;
    app.register("victim").await;
    let bystander = app.register("bystander").await;
    for _ in 0..5 {
        app.login("victim", "Wrong-Pass-123").await;
    }
    assert_eq!(error_code(&app.login("victim", PASSWORD).await), "RATE_LIMITED");

    let body = app.login("bystander", PASSWORD).await;

    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["login"]["user"]["id"], json!(bystander.id));
}

#[tokio::test]
async fn me_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;

    let body = app.graphql(None, ME, json!({})).await;

    assert_unauthenticated(&body, "no token");
}

#[tokio::test]
async fn me_with_a_garbage_token_is_unauthenticated() {
    let app = spawn_app().await;

    for garbage in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "Bearer"] {
        let body = me(&app, garbage).await;

        assert_unauthenticated(&body, garbage);
    }
}

#[tokio::test]
async fn me_with_a_malformed_authorization_header_is_unauthenticated() {
    let app = spawn_app().await;
    let customer = app.register("basic_user").await;

    for header in [format!("Basic {}", customer.token), customer.token.clone(), "Bearer ".to_owned()] {
        let response = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("Authorization", &header)
            .json(&json!({"query": ME}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();

        assert_unauthenticated(&body, &header);
    }
}

#[tokio::test]
async fn me_with_a_tampered_token_is_unauthenticated() {
    let app = spawn_app().await;
    let customer = app.register("tamperer").await;
    let parts: Vec<&str> = customer.token.split('.').collect();
    let mut payload = decode_segment(parts[1]);
    payload["role"] = json!("ADMIN");
    let escalated = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
    let mut flipped_payload = parts[1].to_owned().into_bytes();
    flipped_payload[5] = if flipped_payload[5] == b'A' { b'B' } else { b'A' };
    let flipped = format!("{}.{}.{}", parts[0], String::from_utf8(flipped_payload).unwrap(), parts[2]);
    let mut flipped_signature = parts[2].to_owned().into_bytes();
    flipped_signature[3] = if flipped_signature[3] == b'x' { b'y' } else { b'x' };
    let bad_signature = format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(flipped_signature).unwrap());
    assert_eq!(me(&app, &customer.token).await["data"]["me"]["id"], json!(customer.id), "the untouched token works");

    for (what, token) in
        [("escalated role", escalated), ("changed payload character", flipped), ("changed signature", bad_signature)]
    {
        let body = me(&app, &token).await;

        assert_unauthenticated(&body, what);
    }
}

#[tokio::test]
async fn me_with_an_expired_token_is_unauthenticated() {
    let app = spawn_app().await;
    let customer = app.register("expired_user").await;
    let now = Utc::now().timestamp();
    let valid = sign(&claims(&customer.id, "CUSTOMER", now, now + 600), Algorithm::HS256);
    assert_eq!(me(&app, &valid).await["data"]["me"]["id"], json!(customer.id), "a token we sign ourselves is accepted");
    let expired = sign(&claims(&customer.id, "CUSTOMER", now - 7200, now - 3600), Algorithm::HS256);

    let body = me(&app, &expired).await;

    assert_unauthenticated(&body, "expired");
}

#[tokio::test]
async fn me_with_a_token_signed_with_another_algorithm_or_key_is_unauthenticated() {
    let app = spawn_app().await;
    let customer = app.register("alg_user").await;
    let now = Utc::now().timestamp();
    let claims = claims(&customer.id, "CUSTOMER", now, now + 600);
    let hs512 = sign(&claims, Algorithm::HS512);
    let hs384 = sign(&claims, Algorithm::HS384);
    let other_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"another-secret-that-is-long-enough-too!"),
    )
    .unwrap();

    for (what, token) in [("HS512", hs512), ("HS384", hs384), ("another key", other_key)] {
        let body = me(&app, &token).await;

        assert_unauthenticated(&body, what);
    }
}

#[tokio::test]
async fn me_with_an_unsigned_alg_none_token_is_unauthenticated() {
    let app = spawn_app().await;
    let customer = app.register("none_user").await;
    let now = Utc::now().timestamp();
    let payload = URL_SAFE_NO_PAD.encode(claims(&customer.id, "ADMIN", now, now + 600).to_string());

    for header in [r#"{"alg":"none","typ":"JWT"}"#, r#"{"alg":"None","typ":"JWT"}"#, r#"{"alg":"NONE"}"#] {
        let token = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header));

        let body = me(&app, &token).await;

        assert_unauthenticated(&body, header);
    }
}

#[tokio::test]
async fn me_with_a_token_missing_a_claim_or_naming_an_unknown_role_is_unauthenticated() {
    let app = spawn_app().await;
    let customer = app.register("claims_user").await;
    let now = Utc::now().timestamp();
    let tokens = [
        ("no exp", json!({"sub": customer.id, "role": "CUSTOMER", "iat": now})),
        ("no sub", json!({"role": "CUSTOMER", "iat": now, "exp": now + 600})),
        ("no role", json!({"sub": customer.id, "iat": now, "exp": now + 600})),
        ("unknown role", json!({"sub": customer.id, "role": "SUPERUSER", "iat": now, "exp": now + 600})),
        ("sub not an id", json!({"sub": "1", "role": "CUSTOMER", "iat": now, "exp": now + 600})),
    ];

    for (what, claims) in tokens {
        let body = me(&app, &sign(&claims, Algorithm::HS256)).await;

        assert_unauthenticated(&body, what);
    }
}

#[tokio::test]
async fn a_stale_or_invalid_token_does_not_block_login() {
    let app = spawn_app().await;
    let customer = app.register("stale_user").await;
    let now = Utc::now().timestamp();
    let expired = sign(&claims(&customer.id, "CUSTOMER", now - 7200, now - 3600), Algorithm::HS256);

    for header_token in [expired.as_str(), "garbage"] {
        let body = app
            .graphql(
                Some(header_token),
                "mutation($input: LoginInput!) { login(input: $input) { token user { id } } }",
                json!({"input": {"username": "stale_user", "password": PASSWORD}}),
            )
            .await;

        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(body["data"]["login"]["user"]["id"], json!(customer.id));
        let fresh = body["data"]["login"]["token"].as_str().unwrap();
        assert_eq!(me(&app, fresh).await["data"]["me"]["id"], json!(customer.id));
    }
}

#[tokio::test]
async fn the_configured_factory_account_logs_in_as_factory() {
    let app = spawn_app().await;

    let body = app.login(FACTORY_USERNAME, FACTORY_PASSWORD).await;

    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["login"]["user"]["username"], FACTORY_USERNAME);
    assert_eq!(body["data"]["login"]["user"]["role"], "FACTORY");
    let me = me(&app, body["data"]["login"]["token"].as_str().unwrap()).await;
    assert_eq!(me["data"]["me"]["role"], "FACTORY", "{me}");
}

#[tokio::test]
async fn nobody_can_register_the_factory_username() {
    let app = spawn_app().await;

    let body = register_with(&app, json!({"username": FACTORY_USERNAME.to_uppercase(), "email": "fake@example.com", "password": PASSWORD, "address": "x"})).await;

    assert_eq!(error_code(&body), "CONFLICT", "{body}");
    assert_eq!(error_field(&body), "username");
}

#[tokio::test]
async fn an_admin_created_with_the_cli_logs_in_as_admin() {
    let app = spawn_app().await;
    let admin_password = "Admin-Pass-456!";
    let database_url = app.database_url.clone();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_minifig"));
        for variable in ["JWT_SECRET", "APP_ENV", "FACTORY_USERNAME", "FACTORY_PASSWORD", "PORT", "HOST"] {
            command.env_remove(variable);
        }
        command
            .args(["create-admin", "--username", "Chief", "--email", "Chief@Example.com"])
            .env("DATABASE_URL", database_url)
            .env("ADMIN_PASSWORD", admin_password)
            .output()
            .expect("run minifig create-admin")
    })
    .await
    .unwrap();
    assert!(output.status.success(), "create-admin failed: {}", String::from_utf8_lossy(&output.stderr));

    let body = app.login("chief", admin_password).await;

    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["login"]["user"]["username"], "Chief");
    assert_eq!(body["data"]["login"]["user"]["role"], "ADMIN");
    let me = me(&app, body["data"]["login"]["token"].as_str().unwrap()).await;
    assert_eq!(me["data"]["me"]["role"], "ADMIN", "{me}");
    assert_eq!(me["data"]["me"]["email"], "chief@example.com", "{me}");
}
