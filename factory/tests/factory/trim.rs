//! The stream is capped (`XADD … MAXLEN ~`): entries go, pending or not, and the factory
//! carries on. The database and the server's redelivery sweep are the record.

use fred::prelude::*;

use crate::helpers::{EVENTUALLY, RunningFactory, TestRedis, eventually, spawn_app, spawn_binary, spawn_binary_with};

#[tokio::test]
async fn an_entry_trimmed_while_pending_in_a_dead_factory_does_not_wedge_the_next_one() {
    // Arrange: a factory process takes an order on and is killed; then the stream is
    // trimmed to nothing, the dead factory's pending entry with it.
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let token = app.customer().await;
    let abandoned = app.place_order(&token).await;
    redis.add_order(&abandoned).await;
    let mut process = spawn_binary(&app, &redis, 60_000, 600_000);
    app.wait_for_status(&token, &abandoned, &["ACCEPTED"]).await;
    process.kill().expect("SIGKILL");
    process.wait().expect("the process is reaped");
    redis.trim_everything().await;
    assert!(redis.pending().await >= 1, "the trimmed entry is still pending in the group");

    // Act: a factory that takes over entries idle for 300 ms, and a new order.
    let factory = RunningFactory::start(&app, &redis, 50, 2, 300).await;
    let next = app.place_order(&token).await;
    redis.add_order(&next).await;

    // Assert: the new order ships, and the entry that no longer exists is no longer
    // pending (nothing waits on it).
    app.wait_for_status(&token, &next, &["SHIPPED"]).await.assert_shipped_once(&next);
    eventually("every entry to be acknowledged or forgotten", || async { (redis.pending().await == 0).then_some(()) })
        .await;
    factory.stop().await;
}

#[tokio::test]
async fn an_order_the_factory_hands_back_goes_on_a_capped_stream() {
    // Arrange: a long stream that nobody will read (the group starts after it), and a
    // slow factory, capped at 20 entries, holding an order.
    let redis = TestRedis::new().await;
    let server_redis = TestRedis::new().await;
    let app = spawn_app(&server_redis).await;
    const OLD: usize = 1_000;
    for chunk in 0..OLD / 100 {
        let pipeline = redis.client.pipeline();
        for i in 0..100 {
            let _: () = pipeline
                .xadd(redis.stream(), false, None, "*", vec![("old", (chunk * 100 + i).to_string())])
                .await
                .unwrap();
        }
        let _: Vec<String> = pipeline.all().await.unwrap();
    }
    let _: () = redis.client.xgroup_create(redis.stream(), "factory", "$", false).await.unwrap();
    let token = app.customer().await;
    let order_id = app.place_order(&token).await;
    redis.add_order(&order_id).await;
    let mut process = spawn_binary_with(&app, &redis, 60_000, 600_000, &[("FACTORY_STREAM_MAX_LEN", "20")]);
    app.wait_for_status(&token, &order_id, &["ACCEPTED"]).await;

    // Act: SIGTERM makes it hand the order back.
    let sent = std::process::Command::new("kill").args(["-TERM", &process.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let deadline = std::time::Instant::now() + EVENTUALLY;
    let status = loop {
        if let Some(status) = process.try_wait().expect("try_wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the factory did not stop after SIGTERM");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // Assert: the order went back on the stream, and the stream was cut down to about the
    // cap (`~` trims whole nodes, of at most 100 entries by default).
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(redis.pending().await, 0);
    assert!(redis.entries_of(&order_id).await >= 2, "the first entry and the one handed back");
    let length = redis.len().await;
    assert!(length < 200, "the stream was not capped: {length} entries");
}
