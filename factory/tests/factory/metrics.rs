//! The factory binary's `FACTORY_METRICS_ADDR`: `/healthz`, and `/metrics` counting
//! exactly one order's work, in an exposition `promtool` accepts.

use std::collections::HashMap;

use crate::helpers::{TestRedis, eventually, spawn_app, spawn_binary_with};

/// Kills the factory process however the test ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(series, value)| (series.to_owned(), value.parse().unwrap_or(f64::NAN)))
        .collect()
}

#[tokio::test]
async fn the_metrics_listener_counts_one_orders_steps_and_calls() {
    let redis = TestRedis::new().await;
    let app = spawn_app(&redis).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let _factory = Killed(spawn_binary_with(&app, &redis, 50, 600_000, &[("FACTORY_METRICS_ADDR", &address)]));
    let base = format!("http://{address}");
    let health = eventually("the factory's /healthz", || async {
        reqwest::get(format!("{base}/healthz")).await.ok().filter(|r| r.status().is_success())
    })
    .await;
    assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);

    let token = app.customer().await;
    // The server hands the order to the stream itself: one entry, one delivery.
    let order_id = app.place_order(&token).await;
    app.wait_for_status(&token, &order_id, &["SHIPPED"]).await.assert_shipped_once(&order_id);
    redis.wait_until_all_acknowledged().await;

    // The order is acknowledged just after its last step: scrape until that shows.
    let text = eventually("the order to count as finished", || async {
        let text = reqwest::get(format!("{base}/metrics")).await.ok()?.text().await.ok()?;
        (samples(&text).get(r#"minifig_factory_orders_finished_total{status="SHIPPED"}"#) == Some(&1.0)).then_some(text)
    })
    .await;
    let scraped = samples(&text);
    let value = |series: &str| scraped.get(series).copied().unwrap_or(0.0);
    for status in ["ACCEPTED", "IN_PRODUCTION", "SHIPPED"] {
        let series = format!(r#"minifig_factory_step_duration_seconds_count{{status="{status}"}}"#);
        assert_eq!(value(&series), 1.0, "{series}\n{text}");
    }
    assert_eq!(value(r#"minifig_factory_api_call_duration_seconds_count{operation="Login"}"#), 1.0);
    assert_eq!(value(r#"minifig_factory_api_call_duration_seconds_count{operation="OrderState"}"#), 1.0);
    assert_eq!(value(r#"minifig_factory_api_call_duration_seconds_count{operation="UpdateOrderStatus"}"#), 3.0);
    assert!(!text.contains("minifig_factory_api_errors_total{"), "no call failed:\n{text}");
    assert_eq!(value("minifig_factory_orders_in_progress"), 0.0);
    assert_eq!(value("minifig_factory_orders_claimed_total"), 0.0);
    assert_eq!(value(r#"minifig_factory_releases_total{reason="shutting_down"}"#), 0.0);
    assert_eq!(value("minifig_factory_stream_pending_entries"), 0.0);
    assert!(text.contains("# TYPE minifig_factory_step_duration_seconds histogram"), "{text}");

    crate::promtool::assert_clean_exposition(&text).await;
}
