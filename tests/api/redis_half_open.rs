//! A Redis connection that stays open but goes silent (a failover behind a proxy, a dropped
//! NAT entry), caused for real by freezing it in a TCP proxy. The instance notices by its
//! PINGs going unanswered, reconnects, subscribes again and re-reads: its subscribers miss
//! nothing.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};
use serde_json::json;

use crate::helpers::{spawn_app_on_redis_at, spawn_second_instance, test_redis_url, unique_username, uses_sqlite};
use crate::tcp_proxy::FreezableProxy;
use crate::websocket::{TRANSPORT, WsClient};

const ORDER_STATUS: &str = "subscription($id: ID!) { orderStatus(orderId: $id) { status version } }";

#[tokio::test]
async fn a_subscriber_whose_redis_connection_goes_silent_reconnects_and_misses_nothing() {
    let redis = test_redis_url();
    let target = redis.trim_start_matches("redis://").trim_end_matches('/');
    let proxy = FreezableProxy::start(target).await;
    let (behind_proxy, prefix) = spawn_app_on_redis_at(&format!("redis://{}", proxy.address), &[]).await;
    let direct = spawn_second_instance(&behind_proxy, &prefix).await;
    let factory = direct.factory_token().await;
    let customer = direct.register(&unique_username("silent")).await;
    let order_id = direct.place_simple_order(&customer.token, 1).await["id"].as_str().unwrap().to_owned();

    let mut client = WsClient::connect(&behind_proxy, TRANSPORT).await;
    client.init(json!({"Authorization": format!("Bearer {}", customer.token)})).await;
    client.subscribe("o", ORDER_STATUS, json!({"id": order_id})).await;
    assert_eq!(client.next_data("o").await["orderStatus"], json!({"status": "PENDING", "version": 1}));

    let connections = proxy.connections();
    proxy.freeze_open_connections();
    // Changed through the other instance, whose Redis connection is fine: the event is on
    // the channel, but not on the frozen connection.
    for status in ["ACCEPTED", "IN_PRODUCTION"] {
        let body = direct.update_status(&factory, &order_id, status, None).await;
        assert!(body.get("errors").is_none(), "{body}");
    }

    // Unanswered PINGs close the frozen connections within seconds; the reconnect, the
    // SUBSCRIBE and the re-read bring both events. (Keep-alives keep the socket busy, so
    // the deadline is on the events, not on the next message.)
    let both = tokio::time::timeout(Duration::from_secs(30), async {
        [client.next_data("o").await, client.next_data("o").await]
    })
    .await
    .expect("the events changed through the other instance arrive within 30 s");
    assert_eq!(both[0]["orderStatus"], json!({"status": "ACCEPTED", "version": 2}));
    assert_eq!(both[1]["orderStatus"], json!({"status": "IN_PRODUCTION", "version": 3}));
    assert!(proxy.connections() > connections, "the instance opened new connections to Redis");

    // Live again on the new connection.
    let body = direct.update_status(&factory, &order_id, "SHIPPED", None).await;
    assert!(body.get("errors").is_none(), "{body}");
    assert_eq!(client.next_data("o").await["orderStatus"], json!({"status": "SHIPPED", "version": 4}));
}

/// While Redis is silent, the relay's publishes hang until they time out. Rows it reads
/// from the table must not stay locked meanwhile, in a transaction left idle on a
/// database connection: that lock would hold up whoever else touches those rows (the
/// writer's own `DELETE` after publishing them) for as long as Redis takes to fail.
#[tokio::test]
async fn a_silent_redis_leaves_no_transaction_open_on_the_database() {
    if uses_sqlite() {
        return; // One instance, no row locks: the relay never holds a transaction there.
    }
    let redis = test_redis_url();
    let proxy = FreezableProxy::start(redis.trim_start_matches("redis://").trim_end_matches('/')).await;
    let (app, prefix) = spawn_app_on_redis_at(&format!("redis://{}", proxy.address), &[]).await;
    let customer = app.register(&unique_username("held")).await;
    let db = Database::connect(&app.database_url).await.unwrap();
    proxy.freeze_everything();
    let order_id = app.place_simple_order(&customer.token, 1).await["id"].as_str().unwrap().to_owned();

    // Long enough for the publish from memory to time out and the relay to read the
    // table and publish from it (into the same silence) at least once.
    let mut longest_idle_in_transaction: f64 = 0.0;
    let mut claimed = false;
    for _ in 0..75 {
        let row = db
            .query_one_raw(Statement::from_string(
                DatabaseBackend::Postgres,
                "SELECT COALESCE(max(EXTRACT(EPOCH FROM now() - state_change)), 0)::float8 AS idle, \
                 (SELECT count(*) FROM outbox WHERE claimed_until IS NOT NULL) AS claimed \
                 FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction'",
            ))
            .await
            .unwrap()
            .unwrap();
        longest_idle_in_transaction = longest_idle_in_transaction.max(row.try_get::<f64>("", "idle").unwrap());
        claimed |= row.try_get::<i64>("", "claimed").unwrap() > 0;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    assert!(
        longest_idle_in_transaction < 1.0,
        "a transaction sat idle for {longest_idle_in_transaction:.1} s while Redis was silent"
    );
    assert!(claimed, "the relay read the table while Redis was silent (else this test proves nothing)");
    proxy.thaw_new_connections();
    let redis = fred::prelude::Builder::from_config(fred::prelude::Config::from_url(&redis).unwrap()).build().unwrap();
    fred::prelude::ClientLike::init(&redis).await.unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let entries: Vec<(String, std::collections::HashMap<String, String>)> =
                fred::prelude::StreamsInterface::xrange(&redis, format!("{prefix}orders"), "-", "+", None)
                    .await
                    .unwrap_or_default();
            if entries.iter().any(|(_, fields)| fields.get("order_id") == Some(&order_id)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(delivered.is_ok(), "the order reached the stream once Redis answered again");
}
