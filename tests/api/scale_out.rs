//! The whole pipeline under load and faults: several API instances and factories sharing
//! one database and one Redis. In each test every order ends SHIPPED with history versions
//! exactly 1..4: nothing lost, nothing repeated.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::helpers::{
    Customer, FACTORY_PASSWORD, FACTORY_USERNAME, TestApp, spawn_app_on_redis, spawn_app_with, spawn_second_instance,
    test_redis_url, unique_redis_prefix, unique_username,
};
use crate::pipeline::PrivateRedis;

const EVENTUALLY: Duration = Duration::from_secs(60);

/// A factory worker running in this process against `api`, reading the stream under `prefix`.
struct RunningFactory {
    task: JoinHandle<anyhow::Result<()>>,
    stop: Option<oneshot::Sender<()>>,
}

impl RunningFactory {
    async fn start(api: &TestApp, redis_url: &str, prefix: &str, claim_idle_ms: u64) -> Self {
        let source = factory::RedisStreamSource::connect(&factory::RedisSettings {
            redis_url: secrecy::SecretString::from(redis_url),
            redis_key_prefix: prefix.to_owned(),
            claim_idle_ms,
            stream_max_len: factory::config::DEFAULT_STREAM_MAX_LEN,
        })
        .await
        .expect("factory connects to Redis");
        let settings = factory::WorkerSettings {
            api_url: format!("{}/graphql", api.address),
            username: FACTORY_USERNAME.to_owned(),
            password: secrecy::SecretString::from(FACTORY_PASSWORD),
            step_ms: 20,
            concurrency: 8,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(factory::run_with_source(Arc::new(source), settings, async move {
            let _ = stopped.await;
        }));
        RunningFactory { task, stop: Some(stop) }
    }

    /// Dies without a word: no release, no acknowledgement (like SIGKILL).
    fn crash(self) {
        self.task.abort();
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

async fn place_orders(apps: &[&TestApp], customer: &Customer, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let app = apps[i % apps.len()];
        let order = app.place_simple_order(&customer.token, (i % 12 + 1) as i64).await;
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Waits until every order is final and checks each history is exactly PENDING..SHIPPED.
async fn assert_all_shipped_once(app: &TestApp, token: &str, ids: &[String]) -> usize {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    let mut events = 0;
    for id in ids {
        let order: Value = loop {
            let body = app.order(token, id).await;
            let order = body["data"]["order"].clone();
            if order["status"] == "SHIPPED" {
                break order;
            }
            assert!(!matches!(order["status"].as_str(), Some("CANCELLED" | "FAILED")), "{body}");
            assert!(tokio::time::Instant::now() < deadline, "order {id} never shipped: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let history: Vec<(&str, i64)> = order["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["status"].as_str().unwrap(), e["version"].as_i64().unwrap()))
            .collect();
        assert_eq!(history, [("PENDING", 1), ("ACCEPTED", 2), ("IN_PRODUCTION", 3), ("SHIPPED", 4)], "order {id}");
        assert_eq!(order["version"], 4);
        events += history.len();
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_and_two_factories_ship_every_order_once() {
    let (a, prefix) = spawn_app_on_redis(&[]).await;
    let b = spawn_second_instance(&a, &prefix).await;
    let redis = test_redis_url();
    let one = RunningFactory::start(&a, &redis, &prefix, 2_000).await;
    let two = RunningFactory::start(&b, &redis, &prefix, 2_000).await;
    let customer = a.register(&unique_username("ada")).await;

    let ids = place_orders(&[&a, &b], &customer, 30).await;
    let events = assert_all_shipped_once(&b, &customer.token, &ids).await;
    assert_eq!(events, 120);
    join_all([one.stop(), two.stop()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_of_a_crashed_factory_are_finished_by_another() {
    let (a, prefix) = spawn_app_on_redis(&[]).await;
    let redis = test_redis_url();
    let doomed = RunningFactory::start(&a, &redis, &prefix, 500).await;
    let customer = a.register(&unique_username("ada")).await;
    let ids = place_orders(&[&a], &customer, 12).await;
    // Let the doomed factory take orders and get partway through them.
    tokio::time::sleep(Duration::from_millis(60)).await;
    doomed.crash();
    let survivor = RunningFactory::start(&a, &redis, &prefix, 500).await;

    assert_all_shipped_once(&a, &customer.token, &ids).await;
    survivor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_restarting_empty_mid_run_loses_no_order() {
    let mut redis = PrivateRedis::start();
    let url = redis.url();
    PrivateRedis::wait_until_up(&url).await;
    let prefix = unique_redis_prefix();
    let settings = ["--redis-url", url.as_str(), "--redis-key-prefix", prefix.as_str(), "--order-redeliver-secs", "1"];
    let a = spawn_app_with(&settings).await;
    let one = RunningFactory::start(&a, &url, &prefix, 1_000).await;
    let two = RunningFactory::start(&a, &url, &prefix, 1_000).await;
    let customer = a.register(&unique_username("ada")).await;

    let mut ids = place_orders(&[&a], &customer, 10).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    redis.kill();
    ids.extend(place_orders(&[&a], &customer, 5).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let port = redis.port();
    drop(redis);
    let _redis = PrivateRedis::start_on(port);

    let events = assert_all_shipped_once(&a, &customer.token, &ids).await;
    assert_eq!(events, 60);
    join_all([one.stop(), two.stop()]).await;
}
