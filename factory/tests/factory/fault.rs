//! Redis killed and restarted empty under a working factory.

use crate::helpers::{PrivateRedis, RunningFactory, TestRedis, spawn_app};

#[tokio::test]
async fn the_factory_survives_redis_restarting_empty_in_the_middle_of_an_order() {
    // Arrange: a factory on a Redis of the test's own, in the middle of an order.
    let mut private = PrivateRedis::start().await;
    let shared = TestRedis::new().await;
    let app = spawn_app(&shared).await;
    let redis = TestRedis::at(&private.url()).await;
    let token = app.customer().await;
    let during = app.place_order(&token).await;
    redis.add_order(&during).await;
    let factory = RunningFactory::start(&app, &redis, 400, 2, 30_000).await;
    app.wait_for_status(&token, &during, &["ACCEPTED", "IN_PRODUCTION"]).await;

    // Act: Redis dies and comes back with nothing, then the next order arrives.
    private.restart_empty().await;
    let redis = TestRedis { url: redis.url.clone(), prefix: redis.prefix.clone(), client: reconnect(&redis.url).await };
    let after = app.place_order(&token).await;
    redis.add_order(&after).await;

    // Assert: the order in progress was finished, and the new one too.
    app.wait_for_status(&token, &during, &["SHIPPED"]).await.assert_shipped_once(&during);
    app.wait_for_status(&token, &after, &["SHIPPED"]).await.assert_shipped_once(&after);
    assert!(redis.group_exists().await, "the group was created again");
    redis.wait_until_all_acknowledged().await;
    factory.stop().await;
}

async fn reconnect(url: &str) -> fred::prelude::Client {
    use fred::prelude::*;
    let client = Builder::from_config(Config::from_url(url).unwrap()).build().unwrap();
    client.init().await.expect("the restarted Redis answers");
    client
}

#[tokio::test]
async fn an_acknowledgement_redis_refuses_for_a_moment_is_not_left_held_forever() {
    // Arrange: a factory on a Redis of the test's own that refuses XACK for now. It takes
    // over entries idle for 300 ms, its own included once it no longer holds them.
    let private = PrivateRedis::start().await;
    let shared = TestRedis::new().await;
    let app = spawn_app(&shared).await;
    let redis = TestRedis::at(&private.url()).await;
    redis.refuse(&["xack"]).await;
    let token = app.customer().await;
    let order_id = app.place_order(&token).await;
    redis.add_order(&order_id).await;
    let factory = RunningFactory::start(&app, &redis, 50, 2, 300).await;

    // Act: the order ships, its acknowledgement is refused, then Redis takes XACK again.
    app.wait_for_status(&token, &order_id, &["SHIPPED"]).await.assert_shipped_once(&order_id);
    crate::helpers::eventually("an acknowledgement to be refused", || async {
        (redis.rejected_calls("xack").await >= 1).then_some(())
    })
    .await;
    redis.allow(&["xack"]).await;

    // Assert: the entry is acknowledged in the end (retried, or reclaimed and found final).
    crate::helpers::eventually("the entry to be acknowledged", || async { (redis.pending().await == 0).then_some(()) })
        .await;
    factory.stop().await;
    app.order(&token, &order_id).await.assert_shipped_once(&order_id);
}
