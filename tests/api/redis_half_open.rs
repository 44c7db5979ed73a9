//! A Redis connection that stays open but goes silent (a failover behind a proxy, a dropped
//! NAT entry), caused for real by freezing it in a TCP proxy. The instance notices by its
//! PINGs going unanswered, reconnects, subscribes again and re-reads: its subscribers miss
//! nothing.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app_on_redis_at, spawn_second_instance, test_redis_url, unique_username};
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
