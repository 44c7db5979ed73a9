//! The real `factory` binary: killed in the middle of an order, and stopped with SIGTERM.

use crate::helpers::{EVENTUALLY, RunningFactory, TestRedis, eventually, spawn_app, spawn_binary};

#[tokio::test]
async fn an_order_left_by_a_killed_factory_is_reclaimed_and_finished_by_another() {
    // Arrange: a slow factory process takes an order on.
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let token = app.customer().await;
    let order_id = app.place_order(&token).await;
    redis.add_order(&order_id).await;
    let mut process = spawn_binary(&app, &redis, 60_000, 600_000);
    app.wait_for_status(&token, &order_id, &["ACCEPTED"]).await;

    // Act: SIGKILL, then a second factory that reclaims entries idle for 300 ms.
    process.kill().expect("SIGKILL");
    process.wait().expect("the process is reaped");
    assert!(redis.pending().await >= 1, "the dead factory's entry is still pending");
    let rescuer = RunningFactory::start(&app, &redis, 50, 2, 300).await;

    // Assert
    app.wait_for_status(&token, &order_id, &["SHIPPED"]).await.assert_shipped_once(&order_id);
    eventually("every entry to be acknowledged", || async { (redis.pending().await == 0).then_some(()) }).await;
    rescuer.stop().await;
}

#[tokio::test]
async fn sigterm_stops_the_factory_cleanly_and_hands_back_what_it_had_not_finished() {
    // Arrange: a slow factory process in the middle of an order.
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let token = app.customer().await;
    let order_id = app.place_order(&token).await;
    redis.add_order(&order_id).await;
    let mut process = spawn_binary(&app, &redis, 60_000, 600_000);
    app.wait_for_status(&token, &order_id, &["ACCEPTED"]).await;

    // Act
    let pid = process.id().to_string();
    let sent = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    assert!(sent.success());
    let deadline = std::time::Instant::now() + EVENTUALLY;
    let status = loop {
        if let Some(status) = process.try_wait().expect("try_wait") {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the factory did not stop after SIGTERM");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // Assert: exit 0, nothing pending, and the order finishes elsewhere without a claim
    // timeout (this factory only reclaims entries idle for ten minutes).
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(redis.pending().await, 0, "the unfinished order was handed back");
    assert_eq!(app.order(&token, &order_id).await.status, "ACCEPTED", "no step after SIGTERM");
    let other = RunningFactory::start(&app, &redis, 50, 2, 600_000).await;
    app.wait_for_status(&token, &order_id, &["SHIPPED"]).await.assert_shipped_once(&order_id);
    eventually("every entry to be acknowledged", || async { (redis.pending().await == 0).then_some(()) }).await;
    other.stop().await;
}
