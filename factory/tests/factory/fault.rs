//! Redis killed and restarted empty under a working factory.

use crate::helpers::{PrivateRedis, RunningFactory, TestRedis, spawn_app};

#[tokio::test]
async fn the_factory_survives_redis_restarting_empty_in_the_middle_of_an_order() {
    // Arrange: a factory on a Redis of the test's own, in the middle of an order.
    let Some(mut private) = PrivateRedis::start().await else {
        eprintln!("redis-server is not installed; skipping");
        return;
    };
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
    crate::helpers::eventually("every entry to be acknowledged", || async {
        (redis.pending().await == 0).then_some(())
    })
    .await;
    factory.stop().await;
}

async fn reconnect(url: &str) -> fred::prelude::Client {
    use fred::prelude::*;
    let client = Builder::from_config(Config::from_url(url).unwrap()).build().unwrap();
    client.init().await.expect("the restarted Redis answers");
    client
}
