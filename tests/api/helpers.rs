//! `spawn_app()` and a `TestApp` with one method per operation the tests use.

use std::collections::HashMap;

use clap::Parser;
use minifig::config::Settings;
use minifig::startup::Application;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use uuid::Uuid;

pub const FACTORY_USERNAME: &str = "factory";
pub const FACTORY_PASSWORD: &str = "Factory-Pass-123";
/// A password that meets every rule.
pub const PASSWORD: &str = "TestTest123@";
pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";

/// Where the per-test databases live.
enum TestDatabase {
    /// A database created on the PostgreSQL server for this test and dropped after it.
    Postgres { admin_url: String, name: String },
    /// A SQLite file in a directory removed after the test.
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let TestDatabase::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime, which cannot be blocked on; a short-lived
            // runtime on its own thread does the cleanup.
            let cleanup = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        let _ =
                            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                    }
                });
            });
            let _ = cleanup.join();
        }
    }
}

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub client: reqwest::Client,
    /// The URL the server uses, for the rare test that must look underneath the API.
    pub database_url: String,
    _database: TestDatabase,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    /// The Redis keys this test's server created, removed after the test.
    _redis: Option<RedisKeys>,
}

/// The keys under one test's prefix (the orders stream, the login throttle's counts),
/// removed after the test.
pub struct RedisKeys(pub String);

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.0);
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                use fred::prelude::*;
                let Ok(config) = Config::from_url(&test_redis_url()) else { return };
                let Ok(client) = Builder::from_config(config).build() else { return };
                if client.init().await.is_ok() {
                    // KEYS is fine on the tests' small Redis; a prefix is a handful of keys.
                    let keys: Vec<String> = client
                        .custom(fred::types::CustomCommand::new_static("KEYS", None, false), vec![pattern])
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<i64, _> = client.del(keys).await;
                    }
                    let _ = client.quit().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

pub fn uses_sqlite() -> bool {
    std::env::var("MINIFIG_TEST_DATABASE").is_ok_and(|v| v.eq_ignore_ascii_case("sqlite"))
}

async fn create_database() -> (String, TestDatabase) {
    if uses_sqlite() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("minifig.db").display());
        return (url, TestDatabase::Sqlite(dir));
    }
    let admin_url =
        std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let admin = Database::connect(&admin_url).await.unwrap_or_else(|err| {
        panic!("PostgreSQL is not reachable at {admin_url} ({err}); run scripts/test, set TEST_POSTGRES_URL, or set MINIFIG_TEST_DATABASE=sqlite")
    });
    let name = format!("minifig_test_{}", Uuid::new_v4().simple());
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await.expect("create test database");
    let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
    (format!("{base}/{name}"), TestDatabase::Postgres { admin_url, name })
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Spawns the server with extra command-line settings, e.g. `&["--app-env", "production"]`.
pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    let (database_url, database) = create_database().await;
    start_server(database_url, database, extra).await
}

/// Builds and starts a server on `database_url` with the test settings and `extra`; the
/// returned app holds `database` (dropped with it) and stops the server when dropped.
async fn start_server(database_url: String, database: TestDatabase, extra: &[&str]) -> TestApp {
    // Production refuses the secrets written in the repository, these constants among
    // them: a production server gets secrets of its own (so `factory_token` and tokens
    // forged with `JWT_SECRET` do not work on it).
    let production = extra.windows(2).any(|pair| pair == ["--app-env", "production"]);
    let own_secret = Uuid::new_v4().simple().to_string().repeat(2);
    let own_password = format!("Pw-{}!", Uuid::new_v4().simple());
    let (jwt_secret, factory_password) =
        if production { (own_secret.as_str(), own_password.as_str()) } else { (JWT_SECRET, FACTORY_PASSWORD) };
    let mut args = vec![
        "minifig",
        "--database-url",
        &database_url,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--jwt-secret",
        jwt_secret,
        "--factory-username",
        FACTORY_USERNAME,
        "--factory-password",
        factory_password,
    ];
    // The embedded factory would move orders on its own; tests that want it ask for it.
    if !extra.contains(&"--embedded-factory") {
        args.extend_from_slice(&["--embedded-factory", "false"]);
    }
    // A stopped test server is gone at once, as a killed instance would be.
    if !extra.contains(&"--shutdown-drain-ms") {
        args.extend_from_slice(&["--shutdown-drain-ms", "0"]);
    }
    args.extend_from_slice(extra);
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }
    let settings = Cli::try_parse_from(args).expect("test settings").settings;
    let app = Application::build(settings).await.expect("the server builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        database_url,
        _database: database,
        _shutdown: shutdown,
        _redis: None,
    }
}

/// A registered customer.
#[derive(Debug, Clone)]
pub struct Customer {
    pub id: String,
    pub token: String,
    pub username: String,
}

/// Seeded catalog ids and prices, by SKU or package code.
pub struct Catalog {
    pub figurines: HashMap<String, (String, i64)>,
    pub packages: HashMap<String, (String, i64)>,
}

impl Catalog {
    pub fn figurine(&self, sku: &str) -> &str {
        &self.figurines[sku].0
    }

    pub fn package(&self, code: &str) -> &str {
        &self.packages[code].0
    }
}

impl TestApp {
    /// POSTs a GraphQL request and returns the JSON body; the HTTP status must be 200.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status(), 200, "GraphQL over application/json answers 200");
        response.json().await.expect("JSON body")
    }

    pub async fn register(&self, username: &str) -> Customer {
        let body = self
            .graphql(
                None,
                "mutation($input: RegisterInput!) { register(input: $input) { token user { id username } } }",
                json!({"input": {"username": username, "email": format!("{username}@example.com"), "password": PASSWORD, "address": format!("{username}'s house, 1 Main St")}}),
            )
            .await;
        let payload = &body["data"]["register"];
        assert!(payload.is_object(), "register failed: {body}");
        Customer {
            id: payload["user"]["id"].as_str().unwrap().to_owned(),
            token: payload["token"].as_str().unwrap().to_owned(),
            username: username.to_owned(),
        }
    }

    pub async fn login(&self, username: &str, password: &str) -> Value {
        self.graphql(
            None,
            "mutation($input: LoginInput!) { login(input: $input) { token expiresAt user { id username role } } }",
            json!({"input": {"username": username, "password": password}}),
        )
        .await
    }

    pub async fn factory_token(&self) -> String {
        let body = self.login(FACTORY_USERNAME, FACTORY_PASSWORD).await;
        body["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("factory login failed: {body}")).to_owned()
    }

    pub async fn catalog(&self) -> Catalog {
        let body = self
            .graphql(
                None,
                "{ figurines { id sku unitPrice { cents } } packages { id code price { cents } } }",
                json!({}),
            )
            .await;
        let collect = |list: &Value, key: &str, price: &str| {
            list.as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    (
                        f[key].as_str().unwrap().to_owned(),
                        (f["id"].as_str().unwrap().to_owned(), f[price]["cents"].as_i64().unwrap()),
                    )
                })
                .collect()
        };
        Catalog {
            figurines: collect(&body["data"]["figurines"], "sku", "unitPrice"),
            packages: collect(&body["data"]["packages"], "code", "price"),
        }
    }

    /// `placeOrder` with `input`; returns the whole response body.
    pub async fn place_order(&self, token: &str, input: Value) -> Value {
        self.graphql(
            Some(token),
            &format!("mutation($input: PlaceOrderInput!) {{ placeOrder(input: $input) {{ {ORDER_FIELDS} }} }}"),
            json!({"input": input}),
        )
        .await
    }

    /// Places an order of `quantity` knights and returns it (the `placeOrder` object).
    pub async fn place_simple_order(&self, token: &str, quantity: i64) -> Value {
        let catalog = self.catalog().await;
        let body = self
            .place_order(
                token,
                json!({"items": [{"figurineId": catalog.figurine("FIG-KNIGHT"), "quantity": quantity}]}),
            )
            .await;
        assert!(body["data"]["placeOrder"].is_object(), "placeOrder failed: {body}");
        body["data"]["placeOrder"].clone()
    }

    pub async fn update_status(&self, token: &str, order_id: &str, status: &str, note: Option<&str>) -> Value {
        self.graphql(
            Some(token),
            &format!(
                "mutation($input: UpdateOrderStatusInput!) {{ updateOrderStatus(input: $input) {{ {ORDER_FIELDS} }} }}"
            ),
            json!({"input": {"orderId": order_id, "status": status, "note": note}}),
        )
        .await
    }

    pub async fn cancel_order(&self, token: &str, order_id: &str) -> Value {
        self.graphql(
            Some(token),
            &format!("mutation($id: ID!) {{ cancelOrder(id: $id) {{ {ORDER_FIELDS} }} }}"),
            json!({"id": order_id}),
        )
        .await
    }

    pub async fn order(&self, token: &str, order_id: &str) -> Value {
        self.graphql(
            Some(token),
            &format!("query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"),
            json!({"id": order_id}),
        )
        .await
    }
}

/// Every field of an order, so that tests see all of it.
pub const ORDER_FIELDS: &str = "id status version customer { id username } \
    lines { kind figurine { id sku } package { id code } quantity unitPrice { cents } subtotal { cents } discount { cents } total { cents } } \
    subtotal { cents amount currency } discount { cents } total { cents amount } appliedDiscounts { code description amount { cents } } \
    shippingAddress createdAt updatedAt history { orderId status version at note }";

/// The first error's `extensions.code`.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("expected an error with a code: {body}"))
}

/// The first error's `extensions.field`.
pub fn error_field(body: &Value) -> &str {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error with a field: {body}"))
}

/// A fresh unique username, so tests never collide.
pub fn unique_username(prefix: &str) -> String {
    format!("{prefix}_{}", &Uuid::new_v4().simple().to_string()[..8])
}

/// The pricing fields of a quote, selected exactly as [`ORDER_FIELDS`] selects them on an
/// order, so that a quote and the order placed from it compare as JSON.
pub const QUOTE_FIELDS: &str = "lines { kind figurine { id sku } package { id code } quantity unitPrice { cents } subtotal { cents } discount { cents } total { cents } } \
    subtotal { cents amount currency } discount { cents } total { cents amount } appliedDiscounts { code description amount { cents } }";

impl TestApp {
    /// `quote` with `input` (an `OrderInput`), with or without a token; the whole body.
    pub async fn quote(&self, token: Option<&str>, input: Value) -> Value {
        self.graphql(
            token,
            &format!("query($input: OrderInput!) {{ quote(input: $input) {{ {QUOTE_FIELDS} }} }}"),
            json!({"input": input}),
        )
        .await
    }

    /// `myOrders` with the given arguments (JSON null leaves one out); the whole body.
    /// Each node carries `id status version customer { id }`.
    /// Quotes `input` until its first line's unit price is `cents` (a catalog change takes
    /// effect shortly after its commit), or fails after a few seconds.
    pub async fn quote_once_unit_price_is(&self, input: Value, cents: i64) -> Value {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let quote = self.quote(None, input.clone()).await;
            if quote["data"]["quote"]["lines"][0]["unitPrice"]["cents"] == cents {
                return quote;
            }
            assert!(tokio::time::Instant::now() < deadline, "the quote never used the new price: {quote}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub async fn my_orders(&self, token: &str, first: Value, after: Value, status: Value) -> Value {
        self.graphql(
            Some(token),
            "query($first: Int, $after: String, $status: OrderStatus) { myOrders(first: $first, after: $after, status: $status) { \
                edges { cursor node { id status version customer { id } } } pageInfo { hasNextPage endCursor } } }",
            json!({"first": first, "after": after, "status": status}),
        )
        .await
    }

    /// The ids of the caller's orders on the first page of `myOrders` (up to 100), newest first.
    pub async fn my_order_ids(&self, token: &str) -> Vec<String> {
        let body = self.my_orders(token, json!(100), Value::Null, Value::Null).await;
        let edges = body["data"]["myOrders"]["edges"].as_array().unwrap_or_else(|| panic!("myOrders failed: {body}"));
        edges.iter().map(|edge| edge["node"]["id"].as_str().unwrap().to_owned()).collect()
    }
}

impl TestApp {
    /// How many rows `table` holds, read underneath the API (for "nothing was stored" checks).
    pub async fn count_rows(&self, table: &str) -> i64 {
        let db = Database::connect(&self.database_url).await.expect("connect to the test database");
        let statement =
            sea_orm::Statement::from_string(db.get_database_backend(), format!("SELECT COUNT(*) AS n FROM {table}"));
        let row = db.query_one_raw(statement).await.expect("count query").expect("one row");
        row.try_get::<i64>("", "n").expect("a count")
    }
}

/// The Redis the tests use (`TEST_REDIS_URL`, default the local one `scripts/test` starts).
pub fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix of its own for one test, so that tests sharing a Redis never see each other.
pub fn unique_redis_prefix() -> String {
    format!("test:{}:", Uuid::new_v4().simple())
}

/// Spawns the server on Redis (under a fresh key prefix, returned) with extra settings.
pub async fn spawn_app_on_redis(extra: &[&str]) -> (TestApp, String) {
    spawn_app_on_redis_at(&test_redis_url(), extra).await
}

/// [`spawn_app_on_redis`] through another address of the test Redis (a proxy, say).
pub async fn spawn_app_on_redis_at(url: &str, extra: &[&str]) -> (TestApp, String) {
    let prefix = unique_redis_prefix();
    let mut args = vec!["--redis-url", url, "--redis-key-prefix", prefix.as_str()];
    args.extend_from_slice(extra);
    let mut app = spawn_app_with(&args).await;
    app._redis = Some(RedisKeys(prefix.clone()));
    (app, prefix)
}

/// A second server beside `app`, as a load balancer would run it: the same database and
/// the same Redis under `prefix` (from [`spawn_app_on_redis`]). `app` owns the database;
/// dropping this instance leaves it alone.
pub async fn spawn_second_instance(app: &TestApp, prefix: &str) -> TestApp {
    let url = test_redis_url();
    // An empty directory of its own stands in for the database it does not own.
    let not_owned = TestDatabase::Sqlite(tempfile::tempdir().expect("temp dir"));
    start_server(app.database_url.clone(), not_owned, &["--redis-url", url.as_str(), "--redis-key-prefix", prefix])
        .await
}

/// A server as its own process beside `app` (the same database, the same Redis under
/// `prefix`), started through `wrapper`: `["faketime", "-f", "-5m"]` runs an instance whose
/// clock is five minutes behind. Killed when dropped.
pub struct ProcessInstance {
    pub address: String,
    child: std::process::Child,
    /// The database of a server started on its own ([`spawn_server_process`]).
    _database: Option<TestDatabase>,
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        // The whole process group: `faketime` runs the server as a child of its own, which
        // killing `faketime` alone would leave running.
        if let Ok(group) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill only sends a signal, to the group this instance's child leads.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn spawn_process_instance(app: &TestApp, prefix: &str, wrapper: &[&str], extra: &[&str]) -> ProcessInstance {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
    let (program, wrapper_args) = wrapper.split_first().expect("a wrapper command");
    let mut command = std::process::Command::new(program);
    for variable in ["JWT_SECRET", "APP_ENV", "FACTORY_USERNAME", "FACTORY_PASSWORD", "PORT", "HOST", "RUST_LOG"] {
        command.env_remove(variable);
    }
    command
        .args(wrapper_args)
        .arg(env!("CARGO_BIN_EXE_minifig"))
        .args(["--database-url", &app.database_url, "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--jwt-secret", JWT_SECRET, "--factory-username", FACTORY_USERNAME])
        .args(["--factory-password", FACTORY_PASSWORD, "--embedded-factory", "false"])
        .args(["--redis-url", &test_redis_url(), "--redis-key-prefix", prefix])
        .args(extra)
        // Only the wall clock is wrong; timers keep running at the right pace.
        .env("DONT_FAKE_MONOTONIC", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().unwrap_or_else(|err| panic!("starting {program} with the server: {err}"));
    wait_until_ready(ProcessInstance { address: format!("http://127.0.0.1:{port}"), child, _database: None }).await
}

/// The real server binary as a process of its own on a database of its own, with the
/// in-process bus (and so the embedded factory, unless `extra` turns it off). Killed when
/// dropped.
pub async fn spawn_server_process(extra: &[&str]) -> ProcessInstance {
    spawn_server_process_with_env(extra, &[]).await
}

/// [`spawn_server_process`] with more environment variables.
pub async fn spawn_server_process_with_env(extra: &[&str], env: &[(&str, &str)]) -> ProcessInstance {
    let (database_url, database) = create_database().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_minifig"));
    for variable in ["JWT_SECRET", "APP_ENV", "FACTORY_USERNAME", "FACTORY_PASSWORD", "PORT", "HOST", "RUST_LOG"] {
        command.env_remove(variable);
    }
    command
        .args(["--database-url", &database_url, "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--jwt-secret", JWT_SECRET, "--factory-username", FACTORY_USERNAME])
        .args(["--factory-password", FACTORY_PASSWORD])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().unwrap_or_else(|err| panic!("starting the server: {err}"));
    let instance = ProcessInstance { address: format!("http://127.0.0.1:{port}"), child, _database: Some(database) };
    wait_until_ready(instance).await
}

async fn wait_until_ready(instance: ProcessInstance) -> ProcessInstance {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client.get(format!("{}/readyz", instance.address)).send().await.is_ok_and(|r| r.status().is_success()) {
            return instance;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the server process at {} did not become ready", instance.address);
}

impl ProcessInstance {
    /// Sends SIGTERM, as an orchestrator stopping the instance does.
    pub fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill only sends a signal, to the child this instance owns.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
    }

    /// Waits for the process to exit (at most `limit`) and returns how it did.
    pub async fn exit_status(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return status;
            }
            assert!(tokio::time::Instant::now() < deadline, "the server process did not exit within {limit:?}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// POSTs a GraphQL request to this instance and returns the JSON body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{}/graphql", self.address))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request sent").json().await.expect("JSON body")
    }
}
