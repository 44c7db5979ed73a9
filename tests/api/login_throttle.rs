//! The login throttle as an attacker meets it: counted per login and client address, shared
//! by every instance, reserved before the password is checked, never a way to lock the
//! factory (or any owner) out from another address.
//!
//! "Another client address" is real: the whole of 127.0.0.0/8 is this machine, so a client
//! bound to 127.0.0.2 reaches the server from another address.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures::future::join_all;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::helpers::{
    FACTORY_PASSWORD, FACTORY_USERNAME, PASSWORD, TestApp, error_code, spawn_app, spawn_app_on_redis, spawn_app_with,
    spawn_second_instance, unique_username,
};

const WRONG: &str = "Wrong-Pass-123";
/// The contract's limits, as the server applies them.
const PER_LOGIN_AND_ADDRESS: usize = 5;
const PER_ADDRESS: usize = 100;

/// An HTTP client whose connections come from `127.0.0.<last>`.
fn client_at(last: u8) -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, last])).build().expect("client")
}

async fn login(app: &TestApp, client: &reqwest::Client, username: &str, password: &str) -> Value {
    login_forwarded(app, client, username, password, None).await
}

async fn login_forwarded(
    app: &TestApp,
    client: &reqwest::Client,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Value {
    let mut request = client.post(format!("{}/graphql", app.address)).json(&json!({
        "query": "mutation($input: LoginInput!) { login(input: $input) { token } }",
        "variables": {"input": {"username": username, "password": password}},
    }));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("X-Forwarded-For", forwarded_for);
    }
    let response = request.send().await.expect("request sent");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON body")
}

fn is_rate_limited(body: &Value) -> bool {
    body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
}

async fn fail_until_throttled(app: &TestApp, client: &reqwest::Client, username: &str) {
    for attempt in 1..=PER_LOGIN_AND_ADDRESS {
        let body = login(app, client, username, WRONG).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "attempt {attempt}: {body}");
    }
}

#[tokio::test]
async fn an_attackers_failures_do_not_lock_the_factory_out_from_its_own_address() {
    let app = spawn_app().await;
    let (attacker, factory) = (client_at(2), client_at(3));
    fail_until_throttled(&app, &attacker, FACTORY_USERNAME).await;

    let attackers_next = login(&app, &attacker, FACTORY_USERNAME, FACTORY_PASSWORD).await;
    let factorys = login(&app, &factory, FACTORY_USERNAME, FACTORY_PASSWORD).await;

    assert_eq!(
        error_code(&attackers_next),
        "RATE_LIMITED",
        "the attacker is throttled, even with the password: {attackers_next}"
    );
    assert!(factorys["data"]["login"]["token"].is_string(), "the factory logs in from its address: {factorys}");
}

#[tokio::test]
async fn failures_on_one_instance_count_on_every_instance() {
    let (first, prefix) = spawn_app_on_redis(&[]).await;
    let second = spawn_second_instance(&first, &prefix).await;
    let username = unique_username("shared");
    first.register(&username).await;
    let client = client_at(2);
    fail_until_throttled(&first, &client, &username).await;

    let on_second = login(&second, &client, &username, PASSWORD).await;

    assert_eq!(error_code(&on_second), "RATE_LIMITED", "{on_second}");
    assert!(on_second["errors"][0]["extensions"]["retryAfter"].as_u64().is_some_and(|secs| secs > 0), "{on_second}");
}

/// Every guess of a burst is sent before any is answered: only as many as the limit may
/// have their password checked.
async fn a_burst_gets_exactly_the_limit(app: &TestApp) {
    let username = unique_username("burst");
    app.register(&username).await;
    let client = client_at(2);

    let answers = join_all((0..20).map(|_| login(app, &client, &username, WRONG))).await;

    let checked = answers.iter().filter(|body| error_code(body) == "UNAUTHENTICATED").count();
    let refused = answers.iter().filter(|body| error_code(body) == "RATE_LIMITED").count();
    assert_eq!((checked, refused), (PER_LOGIN_AND_ADDRESS, 20 - PER_LOGIN_AND_ADDRESS), "{answers:?}");
}

#[tokio::test]
async fn a_concurrent_burst_of_guesses_gets_exactly_the_limit_in_redis() {
    let (app, _prefix) = spawn_app_on_redis(&[]).await;
    a_burst_gets_exactly_the_limit(&app).await;
}

#[tokio::test]
async fn a_concurrent_burst_of_guesses_gets_exactly_the_limit_in_one_process() {
    a_burst_gets_exactly_the_limit(&spawn_app().await).await;
}

#[tokio::test]
async fn one_address_is_limited_across_every_login_name() {
    let (app, _prefix) = spawn_app_on_redis(&[]).await;
    let (sprayer, bystander) = (client_at(4), client_at(5));
    for n in 0..PER_ADDRESS {
        let body = login(&app, &sprayer, &format!("spray-{n}"), WRONG).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "guess {n}: {body}");
    }

    let sprayers_next = login(&app, &sprayer, "spray-next", WRONG).await;
    let bystanders = login(&app, &bystander, "spray-next", WRONG).await;

    assert_eq!(error_code(&sprayers_next), "RATE_LIMITED", "{sprayers_next}");
    assert_eq!(error_code(&bystanders), "UNAUTHENTICATED", "another address is not limited: {bystanders}");
}

#[tokio::test]
async fn an_unknown_username_is_throttled_exactly_like_a_known_one() {
    let app = spawn_app().await;
    let known = unique_username("known");
    app.register(&known).await;
    let client = client_at(2);
    let known_window_opens = std::time::Instant::now();
    fail_until_throttled(&app, &client, &known).await;
    fail_until_throttled(&app, &client, "nobody-by-this-name").await;
    // The unknown name's window opened at most this long after the known one's.
    let windows_apart = known_window_opens.elapsed();

    let for_known = login(&app, &client, &known, WRONG).await;
    let for_unknown = login(&app, &client, "nobody-by-this-name", WRONG).await;

    assert_eq!(error_code(&for_known), "RATE_LIMITED", "{for_known}");
    assert_eq!(error_code(&for_known), error_code(&for_unknown));
    // The two windows opened a few logins apart, so "try again in N seconds" may differ by
    // the time those logins took (however loaded the machine), and by nothing else.
    let message = |body: &serde_json::Value| {
        body["errors"][0]["message"].as_str().unwrap_or_default().replace(|c: char| c.is_ascii_digit(), "#")
    };
    assert_eq!(message(&for_known), message(&for_unknown));
    let retry_after = |body: &serde_json::Value| body["errors"][0]["extensions"]["retryAfter"].as_i64();
    let (known_wait, unknown_wait) = (retry_after(&for_known), retry_after(&for_unknown));
    assert!(
        known_wait.zip(unknown_wait).is_some_and(|(known, unknown)| {
            let apart = i64::try_from(windows_apart.as_secs()).unwrap_or(i64::MAX);
            (-1..=apart.saturating_add(1)).contains(&(unknown - known))
        }),
        "{for_known} {for_unknown} (windows opened {windows_apart:?} apart)"
    );
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    let app = spawn_app().await;
    let username = unique_username("forged");
    app.register(&username).await;
    let client = client_at(2);
    for n in 1..=PER_LOGIN_AND_ADDRESS {
        let forged = format!("203.0.113.{n}");
        let body = login_forwarded(&app, &client, &username, WRONG, Some(&forged)).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }

    let with_a_fresh_header = login_forwarded(&app, &client, &username, PASSWORD, Some("203.0.113.99")).await;

    assert_eq!(
        error_code(&with_a_fresh_header),
        "RATE_LIMITED",
        "a made-up header buys no new tries: {with_a_fresh_header}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_counted_on_its_own() {
    let app = spawn_app_with(&["--trusted-proxies", "127.0.0.2,10.0.0.0/8"]).await;
    let username = unique_username("proxied");
    app.register(&username).await;
    let proxy = client_at(2);
    for _ in 0..PER_LOGIN_AND_ADDRESS {
        let body = login_forwarded(&app, &proxy, &username, WRONG, Some("203.0.113.7, 10.1.1.1")).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    }

    let attacker = login_forwarded(&app, &proxy, &username, PASSWORD, Some("203.0.113.7")).await;
    let owner = login_forwarded(&app, &proxy, &username, PASSWORD, Some("198.51.100.1")).await;
    let proxy_itself = login(&app, &proxy, &username, PASSWORD).await;

    assert_eq!(error_code(&attacker), "RATE_LIMITED", "the client behind the proxies is throttled: {attacker}");
    assert!(owner["data"]["login"]["token"].is_string(), "another client behind the same proxy logs in: {owner}");
    assert!(proxy_itself["data"]["login"]["token"].is_string(), "{proxy_itself}");
}

#[tokio::test]
async fn a_flood_of_registrations_does_not_turn_a_login_away() {
    let app = spawn_app().await;
    let refused = Notify::new();
    let stop = AtomicBool::new(false);
    let turned_away = AtomicUsize::new(0);
    // Clients that register again as soon as they are answered, until the login is done:
    // the registrations' share of the hashing threads stays full all along.
    let flood = join_all((0..200).map(|client| {
        let (app, refused, stop, turned_away) = (&app, &refused, &stop, &turned_away);
        async move {
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let username = unique_username(&format!("flood{client}x{n}"));
                let body = app
                    .graphql(
                        None,
                        "mutation($input: RegisterInput!) { register(input: $input) { token } }",
                        json!({"input": {"username": username, "email": format!("{username}@example.com"), "password": PASSWORD, "address": "1 Main St"}}),
                    )
                    .await;
                if is_rate_limited(&body) {
                    turned_away.fetch_add(1, Ordering::Relaxed);
                    refused.notify_one();
                }
            }
        }
    }));
    let login_amid_the_flood = async {
        refused.notified().await;
        let login = app.login(FACTORY_USERNAME, FACTORY_PASSWORD).await;
        stop.store(true, Ordering::Relaxed);
        login
    };

    let (_, login) = tokio::join!(flood, login_amid_the_flood);

    assert!(turned_away.load(Ordering::Relaxed) > 0, "the flood exceeded the registrations' share");
    assert!(login["data"]["login"]["token"].is_string(), "the factory's login gets through: {login}");
}

#[tokio::test]
async fn an_accounts_username_and_email_share_one_count() {
    let app = spawn_app().await;
    let username = unique_username("twonames");
    app.register(&username).await;
    let client = client_at(2);
    for attempt in 1..=PER_LOGIN_AND_ADDRESS {
        let name = if attempt % 2 == 0 { format!("{username}@example.com") } else { username.to_uppercase() };
        let body = login(&app, &client, &name, WRONG).await;
        assert_eq!(error_code(&body), "UNAUTHENTICATED", "attempt {attempt}: {body}");
    }

    let by_email = login(&app, &client, &format!("{username}@EXAMPLE.com"), PASSWORD).await;

    assert_eq!(error_code(&by_email), "RATE_LIMITED", "{by_email}");
}
