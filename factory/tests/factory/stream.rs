//! `RedisStreamSource` on its own: what each of receive, keep, release and ack does to the
//! stream and its consumer group.

use std::time::Duration;

use factory::{OrderSource, RedisStreamSource};

use crate::helpers::{EVENTUALLY, PrivateRedis, TestRedis};

#[tokio::test]
async fn release_hands_an_entry_back_at_once() {
    // Arrange: one consumer holds the only order; another finds nothing.
    let redis = TestRedis::new().await;
    let first = RedisStreamSource::connect(&redis.settings(600_000)).await.unwrap();
    let second = RedisStreamSource::connect(&redis.settings(600_000)).await.unwrap();
    redis.add_order("order-1").await;
    let held = first.receive(5).await.unwrap();
    assert_eq!(held.len(), 1);
    assert!(second.receive(5).await.unwrap().is_empty());

    // Act
    first.release(&held[0]).await.unwrap();

    // Assert: the other consumer gets it straight away, as a new entry.
    let taken = second.receive(5).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].order_id, "order-1");
    assert_ne!(taken[0].id, held[0].id);
    assert_eq!(redis.pending().await, 1, "only the new entry is pending");
    second.ack(&taken[0]).await.unwrap();
    assert_eq!(redis.pending().await, 0);
}

#[tokio::test]
async fn releasing_an_entry_that_was_already_acknowledged_adds_nothing() {
    let redis = TestRedis::new().await;
    let source = RedisStreamSource::connect(&redis.settings(600_000)).await.unwrap();
    redis.add_order("order-1").await;
    let held = source.receive(5).await.unwrap();
    source.ack(&held[0]).await.unwrap();

    source.release(&held[0]).await.unwrap();

    assert_eq!(redis.len().await, 1);
    assert_eq!(redis.pending().await, 0);
}

#[tokio::test]
async fn an_entry_idle_in_a_dead_consumer_is_reclaimed_and_a_kept_one_is_not() {
    // Arrange: a consumer takes two orders and "dies" (stops touching them), except that
    // it keeps one of them alive.
    let redis = TestRedis::new().await;
    let dead = RedisStreamSource::connect(&redis.settings(600_000)).await.unwrap();
    redis.add_order("abandoned").await;
    redis.add_order("kept").await;
    let held = dead.receive(5).await.unwrap();
    assert_eq!(held.len(), 2);
    let kept = held.iter().find(|delivery| delivery.order_id == "kept").unwrap().clone();
    let rescuer = RedisStreamSource::connect(&redis.settings(300)).await.unwrap();

    // Act: keep one alive while the idle time passes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let reclaimed = loop {
        dead.keep(&kept).await.unwrap();
        let taken = rescuer.receive(5).await.unwrap();
        if !taken.is_empty() {
            break taken;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing was reclaimed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Assert: the abandoned entry moved to the rescuer, under its original entry id.
    assert_eq!(reclaimed.len(), 1, "{reclaimed:?}");
    assert_eq!(reclaimed[0].order_id, "abandoned");
    assert_eq!(reclaimed[0].id, held.iter().find(|d| d.order_id == "abandoned").unwrap().id);
    rescuer.ack(&reclaimed[0]).await.unwrap();
    dead.ack(&kept).await.unwrap();
    assert_eq!(redis.pending().await, 0);
}

#[tokio::test]
async fn the_group_comes_back_when_redis_loses_the_stream() {
    // Arrange: the group exists, then the stream (and the group) is gone, and an order
    // arrives on a fresh stream that has no group.
    let redis = TestRedis::new().await;
    let source = RedisStreamSource::connect(&redis.settings(600_000)).await.unwrap();
    assert!(redis.group_exists().await, "connect creates the group");
    redis.lose_the_stream().await;
    redis.add_order("after-the-loss").await;

    // Act
    let taken = source.receive(5).await.unwrap();

    // Assert: the group was made again from the start of the stream, so the order that
    // came before it is read too.
    assert!(redis.group_exists().await);
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].order_id, "after-the-loss");
}

#[tokio::test]
async fn an_entry_without_an_order_id_is_dropped_not_handed_out() {
    let redis = TestRedis::new().await;
    let source = RedisStreamSource::connect(&redis.settings(600_000)).await.unwrap();
    let _: String = fred::prelude::StreamsInterface::xadd(
        &redis.client,
        redis.stream(),
        false,
        None,
        "*",
        vec![("something", "else")],
    )
    .await
    .unwrap();
    redis.add_order("good").await;

    let taken = source.receive(5).await.unwrap();

    assert_eq!(taken.iter().map(|d| d.order_id.as_str()).collect::<Vec<_>>(), ["good"]);
    assert_eq!(redis.pending().await, 1, "the broken entry was acknowledged");
}

#[tokio::test]
async fn an_entry_whose_acknowledgement_failed_is_no_longer_held_and_comes_back() {
    // Arrange: a consumer that takes over entries idle for 300 ms holds one, and Redis
    // refuses XACK.
    let private = PrivateRedis::start().await;
    let redis = TestRedis::at(&private.url()).await;
    let source = RedisStreamSource::connect(&redis.settings(300)).await.unwrap();
    redis.add_order("order-1").await;
    let held = source.receive(5).await.unwrap();
    assert_eq!(held.len(), 1);
    redis.refuse(&["xack"]).await;

    // Act
    assert!(source.ack(&held[0]).await.is_err(), "Redis refused the XACK");
    redis.allow(&["xack"]).await;

    // Assert: still pending in Redis, so it comes back (to this very consumer) once idle.
    let again = come_back(&source).await;
    assert_eq!(again.id, held[0].id);
    source.ack(&again).await.unwrap();
    assert_eq!(redis.pending().await, 0);
}

#[tokio::test]
async fn an_entry_whose_release_failed_is_no_longer_held_and_comes_back() {
    // Arrange: as above, with Redis refusing the release script.
    let private = PrivateRedis::start().await;
    let redis = TestRedis::at(&private.url()).await;
    let source = RedisStreamSource::connect(&redis.settings(300)).await.unwrap();
    redis.add_order("order-1").await;
    let held = source.receive(5).await.unwrap();
    assert_eq!(held.len(), 1);
    redis.refuse(&["eval", "evalsha"]).await;

    // Act
    assert!(source.release(&held[0]).await.is_err(), "Redis refused the release");
    redis.allow(&["eval", "evalsha"]).await;

    // Assert
    let again = come_back(&source).await;
    assert_eq!(again.id, held[0].id);
    assert_eq!(again.order_id, "order-1");
}

#[tokio::test]
async fn releasing_an_entry_trimmed_from_the_stream_while_held_still_hands_the_order_back() {
    // Arrange: a consumer holds an entry; the stream is trimmed under it, and keeping the
    // entry then finds it gone (Redis drops a deleted entry from the pending list).
    let redis = TestRedis::new().await;
    let source = RedisStreamSource::connect(&redis.settings(600_000)).await.unwrap();
    redis.add_order("order-1").await;
    let held = source.receive(5).await.unwrap();
    redis.trim_everything().await;
    source.keep(&held[0]).await.unwrap();
    assert_eq!(redis.pending().await, 0, "Redis forgot the trimmed entry");

    // Act
    source.release(&held[0]).await.unwrap();

    // Assert: the order is on the stream again, for any factory.
    assert_eq!(redis.entries_of("order-1").await, 1);
    let other = RedisStreamSource::connect(&redis.settings(600_000)).await.unwrap();
    let taken = other.receive(5).await.unwrap();
    assert_eq!(taken.iter().map(|d| d.order_id.as_str()).collect::<Vec<_>>(), ["order-1"]);
}

/// The next delivery `source` hands out, waiting for the claim idle time to pass.
async fn come_back(source: &RedisStreamSource) -> factory::Delivery {
    let deadline = tokio::time::Instant::now() + EVENTUALLY;
    loop {
        if let Some(delivery) = source.receive(5).await.unwrap().into_iter().next() {
            return delivery;
        }
        assert!(tokio::time::Instant::now() < deadline, "the entry never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
