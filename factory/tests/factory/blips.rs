//! A blip is not an outage: one spoiled request (a 502, a dropped connection, a lost
//! answer, a CONFLICT) is retried or re-planned on the spot, and the order is not handed
//! back. Only an API that keeps failing opens the circuit.
//!
//! The server reads its own key prefix, so the factory's stream holds only what the test
//! puts there: one entry per order, plus one more for each time the factory hands an order
//! back (a release is `XACK` + `XADD`). "Not handed back" is then exactly "the stream still
//! holds one entry".

use crate::api_proxy::{ApiProxy, Fault};
use crate::helpers::{RunningFactory, TestApp, TestRedis, eventually, spawn_app};

const STEP: &str = "updateOrderStatus";

/// A server (reading a prefix of its own), the factory's corner of Redis, and a proxy in
/// front of the server.
async fn arrange() -> (TestApp, TestRedis, TestRedis, ApiProxy) {
    let server_redis = TestRedis::new().await;
    let app = spawn_app(&server_redis).await;
    let redis = TestRedis::new().await;
    let proxy = ApiProxy::start(&app.api_url).await;
    (app, server_redis, redis, proxy)
}

async fn factory_behind(proxy: &ApiProxy, app: &TestApp, redis: &TestRedis, step_ms: u64) -> RunningFactory {
    let mut worker = app.worker_settings(step_ms, 2);
    worker.api_url = proxy.url.clone();
    RunningFactory::start_with(worker, redis.settings(30_000)).await
}

/// Shipped once, acknowledged, and never handed back.
async fn assert_finished_without_release(app: &TestApp, redis: &TestRedis, token: &str, order_id: &str) {
    app.wait_for_status(token, order_id, &["SHIPPED"]).await.assert_shipped_once(order_id);
    eventually("the entry to be acknowledged", || async { (redis.pending().await == 0).then_some(()) }).await;
    assert_eq!(redis.len().await, 1, "the order was handed back to the stream");
}

#[tokio::test]
async fn a_502_on_a_step_is_retried_in_place_and_the_order_is_not_handed_back() {
    // Arrange: the next two status changes the factory asks for get a 502.
    let (app, _server_redis, redis, proxy) = arrange().await;
    let token = app.customer().await;
    let order_id = app.place_order(&token).await;
    redis.add_order(&order_id).await;
    proxy.spoil(Fault::BadGateway, 2, STEP);

    // Act
    let factory = factory_behind(&proxy, &app, &redis, 50).await;

    // Assert
    assert_finished_without_release(&app, &redis, &token, &order_id).await;
    assert_eq!(proxy.spoiled(), 2, "both 502s were met");
    factory.stop().await;
}

#[tokio::test]
async fn connections_dropped_for_a_moment_are_retried_in_place_and_the_order_is_not_handed_back() {
    // Arrange: the next two status changes lose their connection before any answer.
    let (app, _server_redis, redis, proxy) = arrange().await;
    let token = app.customer().await;
    let order_id = app.place_order(&token).await;
    redis.add_order(&order_id).await;
    proxy.spoil(Fault::Drop, 2, STEP);

    // Act
    let factory = factory_behind(&proxy, &app, &redis, 50).await;

    // Assert
    assert_finished_without_release(&app, &redis, &token, &order_id).await;
    assert_eq!(proxy.spoiled(), 2, "both drops were met");
    factory.stop().await;
}

#[tokio::test]
async fn a_step_whose_answer_was_lost_is_retried_and_the_same_status_answer_counts_as_progress() {
    // Arrange: the first status change goes through, but the factory gets a 502 for it;
    // the retry then asks for the status the order already has.
    let (app, _server_redis, redis, proxy) = arrange().await;
    let token = app.customer().await;
    let order_id = app.place_order(&token).await;
    redis.add_order(&order_id).await;
    proxy.spoil(Fault::LoseTheAnswer, 1, STEP);

    // Act
    let factory = factory_behind(&proxy, &app, &redis, 50).await;

    // Assert: one event per status (the retry changed nothing), and no release.
    assert_finished_without_release(&app, &redis, &token, &order_id).await;
    assert_eq!(proxy.spoiled(), 1);
    factory.stop().await;
}

#[tokio::test]
async fn a_conflict_is_progress_the_factory_re_reads_the_order_and_carries_on_from_where_it_is() {
    // Arrange: someone else has already taken the order on (it is ACCEPTED), and the
    // factory's next status change meets a CONFLICT, as when that someone is still busy
    // with the order.
    let (app, _server_redis, redis, proxy) = arrange().await;
    let token = app.customer().await;
    let order_id = app.place_order(&token).await;
    let staff = app.factory_token().await;
    assert_eq!(app.move_order(&staff, &order_id, "ACCEPTED").await, "ACCEPTED");
    redis.add_order(&order_id).await;
    proxy.spoil(Fault::Conflict, 1, STEP);

    // Act
    let factory = factory_behind(&proxy, &app, &redis, 50).await;

    // Assert: it went on from ACCEPTED, without a second ACCEPTED and without a release.
    assert_finished_without_release(&app, &redis, &token, &order_id).await;
    assert_eq!(proxy.spoiled(), 1, "the CONFLICT was met");
    factory.stop().await;
}

#[tokio::test]
async fn an_api_that_keeps_answering_502_opens_the_circuit_and_the_orders_are_handed_back() {
    // Arrange: a slow factory holding an order (its next step is a minute away).
    let (app, _server_redis, redis, proxy) = arrange().await;
    let token = app.customer().await;
    let held = app.place_order(&token).await;
    redis.add_order(&held).await;
    let mut worker = app.worker_settings(60_000, 4);
    worker.api_url = proxy.url.clone();
    let factory = RunningFactory::start_with(worker, redis.settings(600_000)).await;
    app.wait_for_status(&token, &held, &["ACCEPTED"]).await;

    // Act: from now on every request gets a 502; the factory finds out with the next order.
    proxy.spoil(Fault::BadGateway, u64::MAX, "");
    let next = app.place_order(&token).await;
    redis.add_order(&next).await;

    // Assert: it holds nothing any more, and both orders are on the stream for others.
    redis.assert_handed_back_to_others(&[&held, &next]).await;
    proxy.heal();
    factory.stop().await;
}
