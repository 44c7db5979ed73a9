//! What the factory measures, named and described in one place. The binary serves them
//! on `FACTORY_METRICS_ADDR` ([`endpoint`]); embedded in the server, they appear on the
//! server's `/metrics`, since both record to the process's one recorder.

pub mod endpoint;

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use minifig_common::OrderStatus;
use minifig_common::metrics::{Held, register_counter};

const IN_PROGRESS: &str = "minifig_factory_orders_in_progress";
const STEP_DURATION: &str = "minifig_factory_step_duration_seconds";
const CLAIMED: &str = "minifig_factory_orders_claimed_total";
const RELEASES: &str = "minifig_factory_releases_total";
const FINISHED: &str = "minifig_factory_orders_finished_total";
const API_DURATION: &str = "minifig_factory_api_call_duration_seconds";
const API_ERRORS: &str = "minifig_factory_api_errors_total";
const STREAM_PENDING: &str = "minifig_factory_stream_pending_entries";
const REDIS_RECONNECTS: &str = "minifig_factory_redis_reconnects_total";

/// The labels of [`released`].
pub const RELEASE_REASONS: &[&str] = &["shutting_down", "api_down", "refused", "failing", "no_free_slot"];

/// Describes every metric, and starts the counters whose label sets are known at zero.
pub fn describe() {
    describe_gauge!(IN_PROGRESS, "Orders this factory is working on");
    describe_histogram!(
        STEP_DURATION,
        Unit::Seconds,
        "Time of one production step, from the start of its work to the API's answer, by the status it moved to"
    );
    describe_counter!(CLAIMED, "Orders taken over from a factory that stopped answering (its entries sat idle)");
    describe_counter!(RELEASES, "Orders handed back for another factory to take, by reason");
    describe_counter!(FINISHED, "Orders acknowledged, by the status they ended in");
    describe_histogram!(API_DURATION, Unit::Seconds, "Time of one call to the API, by operation");
    describe_counter!(
        API_ERRORS,
        "API calls that failed, by operation and code (the contract's code, `unreachable`, or `unusable`)"
    );
    describe_gauge!(STREAM_PENDING, "Entries of the orders stream delivered to the group and not yet acknowledged");
    describe_counter!(REDIS_RECONNECTS, "Reconnections to Redis");
    register_counter(CLAIMED, &[]);
    for reason in RELEASE_REASONS {
        register_counter(RELEASES, &[("reason", reason)]);
    }
    register_counter(FINISHED, &[("status", OrderStatus::Shipped.as_str())]);
}

/// Counts an order in progress for as long as the returned guard lives.
pub fn in_progress() -> Held {
    Held::one(gauge!(IN_PROGRESS))
}

/// A step that moved an order to `to`, `took` from its start.
pub fn step(to: OrderStatus, took: Duration) {
    histogram!(STEP_DURATION, "status" => to.as_str()).record(took);
}

pub fn claimed(orders: usize) {
    counter!(CLAIMED).increment(orders as u64);
}

/// `reason` is one of [`RELEASE_REASONS`].
pub fn released(reason: &'static str) {
    counter!(RELEASES, "reason" => reason).increment(1);
}

/// An order acknowledged in `status` (its text: a newer server's status is `other`).
pub fn finished(status: &'static str) {
    counter!(FINISHED, "status" => status).increment(1);
}

/// One API call: `operation` is the GraphQL operation's name, `error` the code it failed
/// with, if it did.
pub fn api_call(operation: &'static str, error: Option<&'static str>, took: Duration) {
    histogram!(API_DURATION, "operation" => operation).record(took);
    if let Some(code) = error {
        counter!(API_ERRORS, "operation" => operation, "code" => code).increment(1);
    }
}

pub fn stream_pending(entries: u64) {
    gauge!(STREAM_PENDING).set(entries as f64);
}

pub fn redis_reconnects() -> metrics::Counter {
    counter!(REDIS_RECONNECTS)
}
