//! Heap allocations per `figurines` query (the load suite's catalog read), client and
//! server together, counted by the allocator of `support/counting.rs`. Every allocation on
//! the request path is work every request pays, and on two cores a contended one: the
//! metrics, the state clones and the layers each added some before they were taken out.
//! A change that adds any fails here rather than as a few percent of throughput lost in a
//! load run. This is its own test binary, with one test, so that no other test allocates
//! while it counts.

use std::sync::atomic::Ordering;

use serde_json::{Value, json};

#[path = "support/counting.rs"]
mod counting;
#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use counting::ALLOCATIONS;

#[global_allocator]
static ALLOCATOR: counting::Counting = counting::Counting;

const FIGURINES: &str = "{ figurines { id name unitPrice { cents } } }";

/// Enough requests that what runs beside them (the catalog's refresh, the relay's sweep)
/// vanishes in the average.
const REQUESTS: usize = 2000;

/// Measured at 401 (the test profile, the client's share included), and at 421 before the
/// metric handles were kept and the request counter stopped boxing the stack: the margin
/// is for what runs beside the requests, not for one more allocation per request.
const MAX_ALLOCATIONS_PER_REQUEST: usize = 405;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_query_makes_a_fixed_number_of_allocations() {
    let app = helpers::spawn_app().await;
    let url = format!("{}/graphql", app.address);
    let body = json!({"query": FIGURINES}).to_string();
    let send = || async {
        let response = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("body")
    };
    // The first requests parse the document, open pool connections and register the
    // metric series: once per process, not per request.
    let first: Value = serde_json::from_slice(&send().await).expect("JSON");
    assert!(first["data"]["figurines"].as_array().is_some_and(|all| !all.is_empty()), "{first}");
    for _ in 0..100 {
        send().await;
    }

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..REQUESTS {
        send().await;
    }
    let per_request = (ALLOCATIONS.load(Ordering::Relaxed) - before) / REQUESTS;
    println!("allocations per figurines request (client and server): {per_request}");
    assert!(
        per_request <= MAX_ALLOCATIONS_PER_REQUEST,
        "a figurines request makes {per_request} allocations (client and server), more than {MAX_ALLOCATIONS_PER_REQUEST}"
    );
}
