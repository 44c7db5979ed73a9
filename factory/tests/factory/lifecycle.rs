//! Orders through the whole pipeline: the server, the stream, an in-process factory.

use std::sync::Arc;

use factory::MemorySource;
use uuid::Uuid;

use crate::helpers::{RunningFactory, TestRedis, spawn_app};

#[tokio::test]
async fn every_order_ends_shipped_with_exactly_one_event_per_status() {
    // Arrange
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let token = app.customer().await;
    let mut orders = Vec::new();
    for _ in 0..6 {
        let order_id = app.place_order(&token).await;
        redis.add_order(&order_id).await;
        orders.push(order_id);
    }
    // A duplicate delivery of some orders, as a relay retrying after a timeout would make.
    redis.add_order(&orders[0]).await;
    redis.add_order(&orders[3]).await;

    // Act
    let factory = RunningFactory::start(&app, &redis, 50, 4, 30_000).await;

    // Assert
    for order_id in &orders {
        app.wait_for_status(&token, order_id, &["SHIPPED"]).await.assert_shipped_once(order_id);
    }
    redis.wait_until_all_acknowledged().await;
    factory.stop().await;
    for order_id in &orders {
        app.order(&token, order_id).await.assert_shipped_once(order_id);
    }
}

#[tokio::test]
async fn an_order_cancelled_before_the_factory_gets_to_it_is_acknowledged_and_left_cancelled() {
    // Arrange
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let token = app.customer().await;
    let cancelled = app.place_order(&token).await;
    app.cancel_order(&token, &cancelled).await;
    redis.add_order(&cancelled).await;
    let after = app.place_order(&token).await;
    redis.add_order(&after).await;

    // Act
    let factory = RunningFactory::start(&app, &redis, 50, 2, 30_000).await;

    // Assert: the order behind it is done, and nothing is left pending.
    app.wait_for_status(&token, &after, &["SHIPPED"]).await.assert_shipped_once(&after);
    redis.wait_until_all_acknowledged().await;
    factory.stop().await;
    let order = app.order(&token, &cancelled).await;
    assert_eq!(order.status, "CANCELLED");
    assert_eq!(order.versions(), [1, 2]);
    assert_eq!(order.statuses(), ["PENDING", "CANCELLED"]);
}

#[tokio::test]
async fn two_factories_on_one_stream_process_each_order_once() {
    // Arrange
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let token = app.customer().await;
    let one = RunningFactory::start(&app, &redis, 50, 3, 30_000).await;
    let two = RunningFactory::start(&app, &redis, 50, 3, 30_000).await;
    assert_ne!(one.source.consumer_name(), two.source.consumer_name());

    // Act
    let mut orders = Vec::new();
    for _ in 0..10 {
        let order_id = app.place_order(&token).await;
        redis.add_order(&order_id).await;
        orders.push(order_id);
    }

    // Assert
    for order_id in &orders {
        app.wait_for_status(&token, order_id, &["SHIPPED"]).await.assert_shipped_once(order_id);
    }
    redis.wait_until_all_acknowledged().await;
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn the_factory_recreates_the_consumer_group_after_redis_loses_the_stream() {
    // Arrange: a factory at work, then Redis forgets everything under it.
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let token = app.customer().await;
    let factory = RunningFactory::start(&app, &redis, 50, 2, 30_000).await;
    let before = app.place_order(&token).await;
    redis.add_order(&before).await;
    app.wait_for_status(&token, &before, &["SHIPPED"]).await;
    redis.lose_the_stream().await;

    // Act: the next order arrives on a stream that has no group.
    let after = app.place_order(&token).await;
    redis.add_order(&after).await;

    // Assert
    app.wait_for_status(&token, &after, &["SHIPPED"]).await.assert_shipped_once(&after);
    assert!(redis.group_exists().await, "the group was created again");
    redis.wait_until_all_acknowledged().await;
    factory.stop().await;
    app.order(&token, &before).await.assert_shipped_once(&before);
}

#[tokio::test]
async fn a_factory_that_cannot_reach_the_api_hands_its_orders_back_at_once() {
    // Arrange: a slow factory holding an order (its next step is a minute away).
    let redis = TestRedis::new().await;
    let mut app = spawn_app(&redis).await;
    let token = app.customer().await;
    let held = app.place_order(&token).await;
    redis.add_order(&held).await;
    let factory = RunningFactory::start(&app, &redis, 60_000, 4, 600_000).await;
    app.wait_for_status(&token, &held, &["ACCEPTED"]).await;

    // Act: the API goes away; the factory finds out when it reads the next order.
    app.stop();
    let next = Uuid::now_v7().to_string();
    redis.add_order(&next).await;

    // Assert: it holds nothing any more, and the orders are on the stream for others.
    redis.assert_handed_back_to_others(&[&held, &next]).await;
    factory.stop().await;
}

#[tokio::test]
async fn an_unknown_order_is_acknowledged_and_skipped() {
    // Arrange
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let token = app.customer().await;
    redis.add_order(&Uuid::now_v7().to_string()).await;
    redis.add_order("not-even-an-id").await;
    let real = app.place_order(&token).await;
    redis.add_order(&real).await;

    // Act
    let factory = RunningFactory::start(&app, &redis, 50, 1, 30_000).await;

    // Assert
    app.wait_for_status(&token, &real, &["SHIPPED"]).await.assert_shipped_once(&real);
    redis.wait_until_all_acknowledged().await;
    factory.stop().await;
}

#[tokio::test]
async fn the_same_factory_code_runs_embedded_on_an_in_process_queue() {
    // Arrange: no Redis for the factory, as in the server's embedded mode.
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let token = app.customer().await;
    let queue = Arc::new(MemorySource::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(factory::run_with_source(queue.clone(), app.worker_settings(50, 2), async {
        let _ = stopped.await;
    }));

    // Act
    let mut orders = Vec::new();
    for _ in 0..3 {
        let order_id = app.place_order(&token).await;
        queue.push(order_id.clone());
        orders.push(order_id);
    }
    queue.push(orders[1].clone());

    // Assert
    for order_id in &orders {
        app.wait_for_status(&token, order_id, &["SHIPPED"]).await.assert_shipped_once(order_id);
    }
    crate::helpers::eventually("every delivery to be acknowledged", || async {
        (queue.queued() == 0 && queue.held() == 0).then_some(())
    })
    .await;
    let _ = stop.send(());
    running.await.expect("no panic").expect("the factory ends with Ok");
}
