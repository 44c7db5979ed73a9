//! `spawn_app()` (a real `minifig` server), `TestRedis` (the test's own key prefix on the
//! shared Redis) and ways to run a factory: in-process, or the real binary.

use std::future::Future;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use factory::{Factory, OrderSource, RedisSettings, RedisStreamSource, WorkerSettings};
use fred::prelude::*;
use fred::types::Value as RedisValue;
use minifig::config::Settings;
use minifig::startup::Application;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

/// The shared Redis: `TEST_REDIS_URL`, as `scripts/test` sets it, or the local default.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}
pub const FACTORY_USERNAME: &str = "factory";
pub const FACTORY_PASSWORD: &str = "Factory-Pass-123";
const PASSWORD: &str = "TestTest123@";
const JWT_SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
/// How long "eventually" may take. Generous: the machine may be busy with other tests.
pub const EVENTUALLY: Duration = Duration::from_secs(60);

/// A running server with its own database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>/graphql`
    pub api_url: String,
    client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _database: tempfile::TempDir,
}

/// Spawns the server. When it knows about Redis, it is given the test's Redis prefix too,
/// so it behaves as in production (and may hand orders to the stream itself: the tests
/// then see duplicate deliveries, which the factory must take in its stride).
pub async fn spawn_app(redis: &TestRedis) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("minifig.db").display());
    let base = vec![
        "minifig".to_owned(),
        "--database-url".into(),
        database_url,
        "--host".into(),
        "127.0.0.1".into(),
        "--port".into(),
        "0".into(),
        "--jwt-secret".into(),
        JWT_SECRET.into(),
        "--factory-username".into(),
        FACTORY_USERNAME.into(),
        "--factory-password".into(),
        FACTORY_PASSWORD.into(),
        // A stopped API goes away at once, as the tests expect of it.
        "--shutdown-drain-ms".into(),
        "0".into(),
    ];
    let mut with_redis = base.clone();
    with_redis.extend(["--redis-url".into(), redis_url(), "--redis-key-prefix".into(), redis.prefix.clone()]);
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }
    let settings =
        Cli::try_parse_from(&with_redis).or_else(|_| Cli::try_parse_from(&base)).expect("test settings").settings;
    let app = Application::build(settings).await.expect("the server builds");
    let api_url = format!("http://127.0.0.1:{}/graphql", app.port());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp { api_url, client: reqwest::Client::new(), shutdown: Some(shutdown), _database: dir }
}

/// An order as its owner sees it.
#[derive(Debug, Clone)]
pub struct OrderView {
    pub status: String,
    pub history: Vec<(i64, String)>,
}

impl OrderView {
    pub fn versions(&self) -> Vec<i64> {
        self.history.iter().map(|(version, _)| *version).collect()
    }

    pub fn statuses(&self) -> Vec<&str> {
        self.history.iter().map(|(_, status)| status.as_str()).collect()
    }

    /// Shipped, with exactly one event per status of the factory's path.
    pub fn assert_shipped_once(&self, order_id: &str) {
        assert_eq!(self.status, "SHIPPED", "order {order_id}: {self:?}");
        assert_eq!(self.versions(), [1, 2, 3, 4], "order {order_id}: {self:?}");
        assert_eq!(self.statuses(), ["PENDING", "ACCEPTED", "IN_PRODUCTION", "SHIPPED"], "order {order_id}: {self:?}");
    }
}

impl TestApp {
    /// Stops the server (it stops accepting connections).
    pub fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self.client.post(&self.api_url).json(&json!({"query": query, "variables": variables}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        response.json().await.expect("JSON body")
    }

    /// Registers a fresh customer; returns their token.
    pub async fn customer(&self) -> String {
        let username = format!("c_{}", &Uuid::new_v4().simple().to_string()[..10]);
        let body = self
            .graphql(
                None,
                "mutation($input: RegisterInput!) { register(input: $input) { token } }",
                json!({"input": {"username": username, "email": format!("{username}@example.com"), "password": PASSWORD, "address": "1 Main St"}}),
            )
            .await;
        body["data"]["register"]["token"].as_str().unwrap_or_else(|| panic!("register failed: {body}")).to_owned()
    }

    /// Places an order of two of the first figurine; returns its id.
    pub async fn place_order(&self, token: &str) -> String {
        let catalog = self.graphql(None, "{ figurines { id } }", json!({})).await;
        let figurine = catalog["data"]["figurines"][0]["id"].as_str().expect("a figurine").to_owned();
        let body = self
            .graphql(
                Some(token),
                "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status version } }",
                json!({"input": {"items": [{"figurineId": figurine, "quantity": 2}]}}),
            )
            .await;
        body["data"]["placeOrder"]["id"].as_str().unwrap_or_else(|| panic!("placeOrder failed: {body}")).to_owned()
    }

    pub async fn cancel_order(&self, token: &str, order_id: &str) {
        let body = self
            .graphql(Some(token), "mutation($id: ID!) { cancelOrder(id: $id) { status } }", json!({"id": order_id}))
            .await;
        assert_eq!(body["data"]["cancelOrder"]["status"], "CANCELLED", "cancelOrder failed: {body}");
    }

    pub async fn order(&self, token: &str, order_id: &str) -> OrderView {
        let body = self
            .graphql(
                Some(token),
                "query($id: ID!) { order(id: $id) { status history { version status } } }",
                json!({"id": order_id}),
            )
            .await;
        let order = &body["data"]["order"];
        assert!(order.is_object(), "order failed: {body}");
        OrderView {
            status: order["status"].as_str().unwrap().to_owned(),
            history: order["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|event| (event["version"].as_i64().unwrap(), event["status"].as_str().unwrap().to_owned()))
                .collect(),
        }
    }

    /// Waits until the order's status is one of `statuses`.
    pub async fn wait_for_status(&self, token: &str, order_id: &str, statuses: &[&str]) -> OrderView {
        eventually(&format!("order {order_id} to reach {statuses:?}"), || async {
            let order = self.order(token, order_id).await;
            statuses.contains(&order.status.as_str()).then_some(order)
        })
        .await
    }

    /// A token of the FACTORY account, for a test that moves an order itself.
    pub async fn factory_token(&self) -> String {
        let body = self
            .graphql(
                None,
                "mutation($input: LoginInput!) { login(input: $input) { token } }",
                json!({"input": {"username": FACTORY_USERNAME, "password": FACTORY_PASSWORD}}),
            )
            .await;
        body["data"]["login"]["token"].as_str().unwrap_or_else(|| panic!("factory login failed: {body}")).to_owned()
    }

    /// `updateOrderStatus` as `token`; the order's status afterwards.
    pub async fn move_order(&self, token: &str, order_id: &str, status: &str) -> String {
        let body = self
            .graphql(
                Some(token),
                "mutation($input: UpdateOrderStatusInput!) { updateOrderStatus(input: $input) { status } }",
                json!({"input": {"orderId": order_id, "status": status}}),
            )
            .await;
        body["data"]["updateOrderStatus"]["status"]
            .as_str()
            .unwrap_or_else(|| panic!("updateOrderStatus failed: {body}"))
            .to_owned()
    }

    /// Worker settings against this server.
    pub fn worker_settings(&self, step_ms: u64, concurrency: u32) -> WorkerSettings {
        WorkerSettings {
            api_url: self.api_url.clone(),
            username: FACTORY_USERNAME.into(),
            password: SecretString::from(FACTORY_PASSWORD),
            step_ms,
            concurrency,
        }
    }
}

/// Polls `probe` until it returns `Some`, panicking after [`EVENTUALLY`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The test's own corner of the shared Redis: every key starts with `test:<uuid>:`, and
/// they are all deleted when the test ends.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
    pub client: Client,
}

impl TestRedis {
    pub async fn new() -> Self {
        Self::at(&redis_url()).await
    }

    /// The test's prefix on the Redis at `url`.
    pub async fn at(url: &str) -> Self {
        let client = Builder::from_config(Config::from_url(url).unwrap()).build().unwrap();
        client.init().await.unwrap_or_else(|err| panic!("Redis is not reachable at {url}: {err}"));
        TestRedis { url: url.to_owned(), prefix: format!("test:{}:", Uuid::new_v4().simple()), client }
    }

    /// `<prefix>orders`
    pub fn stream(&self) -> String {
        format!("{}orders", self.prefix)
    }

    /// The factory's Redis settings for this prefix, defaults for the rest (parsed as the
    /// binary parses them, so that a new setting takes its documented default here too).
    pub fn settings(&self, claim_idle_ms: u64) -> RedisSettings {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            redis: RedisSettings,
        }
        let claim_idle_ms = claim_idle_ms.to_string();
        let args = ["factory", "--redis-url", &self.url, "--redis-key-prefix", &self.prefix];
        let args = args.into_iter().chain(["--factory-claim-idle-ms", &claim_idle_ms]);
        Cli::try_parse_from(args).expect("Redis settings").redis
    }

    /// Hands an order to the factory as the server would: `XADD <prefix>orders * order_id <id>`.
    pub async fn add_order(&self, order_id: &str) -> String {
        self.client.xadd(self.stream(), false, None, "*", vec![("order_id", order_id)]).await.expect("XADD")
    }

    /// How many entries of the stream name `order_id`.
    pub async fn entries_of(&self, order_id: &str) -> usize {
        let entries: RedisValue = self.client.xrange(self.stream(), "-", "+", None).await.expect("XRANGE");
        entries
            .into_array()
            .into_iter()
            .filter(|entry| {
                let fields =
                    entry.clone().into_array().into_iter().nth(1).map(RedisValue::into_array).unwrap_or_default();
                fields.chunks(2).any(|pair| {
                    pair[0].as_str().as_deref() == Some("order_id")
                        && pair.get(1).and_then(|value| value.as_string()).as_deref() == Some(order_id)
                })
            })
            .count()
    }

    /// Entries delivered to the group and not acknowledged.
    pub async fn pending(&self) -> i64 {
        let summary: RedisValue = match self.client.xpending(self.stream(), "factory", ()).await {
            Ok(summary) => summary,
            Err(err) if err.details().contains("NOGROUP") => return 0,
            Err(err) => panic!("XPENDING: {err}"),
        };
        summary.into_array().into_iter().next().and_then(|count| count.as_i64()).unwrap_or(0)
    }

    /// Waits until the group holds no entry unacknowledged.
    pub async fn wait_until_all_acknowledged(&self) {
        eventually("every entry to be acknowledged", || async { (self.pending().await == 0).then_some(()) }).await;
    }

    /// Waits until a factory handed back what it held (nothing pending, at least the four
    /// entries of two orders taken and handed back), then checks that another consumer
    /// receives each of `orders`.
    pub async fn assert_handed_back_to_others(&self, orders: &[&str]) {
        eventually("the factory to hand its orders back", || async {
            (self.pending().await == 0 && self.len().await >= 4).then_some(())
        })
        .await;
        let other = RedisStreamSource::connect(&self.settings(600_000)).await.unwrap();
        let mut seen = std::collections::HashSet::new();
        let deadline = tokio::time::Instant::now() + EVENTUALLY;
        while !orders.iter().all(|order| seen.contains(*order)) {
            assert!(tokio::time::Instant::now() < deadline, "another consumer never got {orders:?}: {seen:?}");
            seen.extend(other.receive(10).await.unwrap().into_iter().map(|delivery| delivery.order_id));
        }
    }

    /// How many entries the stream holds.
    pub async fn len(&self) -> i64 {
        self.client.xlen(self.stream()).await.expect("XLEN")
    }

    /// Whether the group `factory` exists on the stream.
    pub async fn group_exists(&self) -> bool {
        let groups: RedisValue = match self.client.xinfo_groups(self.stream()).await {
            Ok(groups) => groups,
            Err(_) => return false,
        };
        groups.into_array().into_iter().any(|group| {
            let fields = group.into_array();
            fields.chunks(2).any(|pair| {
                pair[0].as_str().as_deref() == Some("name")
                    && pair.get(1).and_then(|v| v.as_string()).as_deref() == Some("factory")
            })
        })
    }

    /// Makes Redis refuse `commands` (`NOPERM`) to the default user, i.e. to the factory.
    /// Only for a [`PrivateRedis`]: it changes the whole server.
    pub async fn refuse(&self, commands: &[&str]) {
        let rules: Vec<String> = commands.iter().map(|command| format!("-{command}")).collect();
        self.acl(rules).await;
    }

    /// Undoes [`refuse`](Self::refuse).
    pub async fn allow(&self, commands: &[&str]) {
        let rules: Vec<String> = commands.iter().map(|command| format!("+{command}")).collect();
        self.acl(rules).await;
    }

    async fn acl(&self, rules: Vec<String>) {
        let mut args = vec!["SETUSER".to_owned(), "default".to_owned()];
        args.extend(rules);
        let _: RedisValue = self.client.custom(fred::cmd!("ACL"), args).await.expect("ACL SETUSER");
    }

    /// How many times Redis refused `command` (ACL, OOM, ...) since it started.
    pub async fn rejected_calls(&self, command: &str) -> u64 {
        let stats: String = self.client.custom(fred::cmd!("INFO"), vec!["commandstats"]).await.expect("INFO");
        let prefix = format!("cmdstat_{command}:");
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|fields| fields.split(',').find_map(|field| field.strip_prefix("rejected_calls=")))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Deletes every entry of the stream, pending or not, as a cap on its length does to the
    /// oldest ones; the group and its pending list stay.
    pub async fn trim_everything(&self) {
        let _: i64 = self.client.xtrim(self.stream(), ("MAXLEN", 0)).await.expect("XTRIM");
    }

    /// Deletes the stream (and the group with it), as a Redis restarted empty would.
    pub async fn lose_the_stream(&self) {
        let _: i64 = self.client.del(self.stream()).await.expect("DEL");
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let pattern = format!("{}*", self.prefix);
        let url = self.url.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                let Ok(config) = Config::from_url(&url) else { return };
                let Ok(client) = Builder::from_config(config).build() else { return };
                if client.init().await.is_err() {
                    return;
                }
                let mut cursor = "0".to_owned();
                loop {
                    let reply: RedisValue = match client
                        .custom(
                            fred::cmd!("SCAN"),
                            vec![cursor.clone(), "MATCH".into(), pattern.clone(), "COUNT".into(), "1000".into()],
                        )
                        .await
                    {
                        Ok(reply) => reply,
                        Err(_) => return,
                    };
                    let mut parts = reply.into_array().into_iter();
                    cursor = parts.next().and_then(|c| c.as_string()).unwrap_or_else(|| "0".into());
                    let keys: Vec<String> = parts
                        .next()
                        .map(RedisValue::into_array)
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|k| k.as_string())
                        .collect();
                    if !keys.is_empty() {
                        let _: Result<i64, _> = client.del(keys).await;
                    }
                    if cursor == "0" {
                        break;
                    }
                }
                let _ = client.quit().await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A factory running in this process.
pub struct RunningFactory {
    pub source: Arc<RedisStreamSource>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningFactory {
    pub async fn start(app: &TestApp, redis: &TestRedis, step_ms: u64, concurrency: u32, claim_idle_ms: u64) -> Self {
        Self::start_with(app.worker_settings(step_ms, concurrency), redis.settings(claim_idle_ms)).await
    }

    /// A factory with settings of the test's choosing (an API behind a proxy, say).
    pub async fn start_with(worker: WorkerSettings, redis: RedisSettings) -> Self {
        if std::env::var_os("FACTORY_TEST_LOGS").is_some() {
            // The writer lives as long as the test process: tests never flush logs on exit.
            std::mem::forget(minifig_common::telemetry::init(
                factory::config::LogFormat::Pretty,
                "info",
                "minifig-factory",
            ));
        }
        let source = Arc::new(RedisStreamSource::connect(&redis).await.expect("source"));
        let factory = Factory::build(&worker, source.clone()).expect("factory");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(factory.run_until(async {
            let _ = stopped.await;
        }));
        RunningFactory { source, stop: Some(stop), handle }
    }

    /// Stops it as SIGTERM would; it must end cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(EVENTUALLY, &mut self.handle).await.expect("the factory stops in time");
        result.expect("the factory task did not panic").expect("the factory ends with Ok");
        self.source.close().await;
    }
}

/// The real `factory` binary.
pub fn spawn_binary(app: &TestApp, redis: &TestRedis, step_ms: u64, claim_idle_ms: u64) -> std::process::Child {
    spawn_binary_with(app, redis, step_ms, claim_idle_ms, &[])
}

/// The real `factory` binary, with more environment variables.
pub fn spawn_binary_with(
    app: &TestApp,
    redis: &TestRedis,
    step_ms: u64,
    claim_idle_ms: u64,
    env: &[(&str, &str)],
) -> std::process::Child {
    let verbose = std::env::var_os("FACTORY_TEST_LOGS").is_some();
    std::process::Command::new(env!("CARGO_BIN_EXE_factory"))
        .envs(env.iter().copied())
        .env("API_URL", &app.api_url)
        .env("REDIS_URL", &redis.url)
        .env("REDIS_KEY_PREFIX", &redis.prefix)
        .env("FACTORY_USERNAME", FACTORY_USERNAME)
        .env("FACTORY_PASSWORD", FACTORY_PASSWORD)
        .env("FACTORY_STEP_MS", step_ms.to_string())
        .env("FACTORY_CONCURRENCY", "4")
        .env("FACTORY_CLAIM_IDLE_MS", claim_idle_ms.to_string())
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "pretty")
        .stdout(if verbose { Stdio::inherit() } else { Stdio::null() })
        .stderr(if verbose { Stdio::inherit() } else { Stdio::null() })
        .spawn()
        .expect("the factory binary starts")
}

/// A Redis server of the test's own (nothing on disk), for tests that kill it: the shared
/// one must never be restarted or flushed.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl PrivateRedis {
    /// Starts `redis-server` on a free port (`scripts/test` installs it when missing: a
    /// test that skipped itself without it would pass while proving nothing).
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address");
        let mut redis = PrivateRedis { port: port.port(), child: None };
        assert!(redis.spawn().await, "redis-server starts (scripts/test installs it)");
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the server: everything it held is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again, empty, on the same port.
    pub async fn restart_empty(&mut self) {
        self.kill();
        assert!(self.spawn().await, "redis-server restarts");
    }

    async fn spawn(&mut self) -> bool {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::time::Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
