//! Everything the server measures, named and described in one place; the code that does
//! the work calls the functions here, and `GET /metrics` ([`crate::http`]) renders them.
//!
//! Names follow Prometheus' conventions: the `minifig_` namespace, the unit in the name
//! (`_seconds`), `_total` for counters. Every `_seconds` histogram has the buckets of
//! [`minifig_common::metrics::SECONDS_BUCKETS`]. Label values come from closed sets (routes,
//! codes, statuses, fields), or are capped ([`operation_names`]), so that no client can
//! grow the number of series.
//!
//! Recording goes through the `metrics` facade: with no recorder installed (unit tests) it
//! costs a branch. The hot paths keep their handles ([`OperationSeries`], [`RouteSeries`]);
//! a handle taken before the recorder is installed would record nothing, which is why
//! startup installs it before it builds anything that records.

pub mod operation_names;
mod samples;

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Counter, Histogram, SharedString, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
pub use minifig_common::metrics::OK;
use minifig_common::metrics::{Held, register_counter};

pub use self::samples::sample;

const GRAPHQL_OPERATIONS: &str = "minifig_graphql_operations_total";
const GRAPHQL_DURATION: &str = "minifig_graphql_operation_duration_seconds";
const HTTP_REQUESTS: &str = "minifig_http_requests_total";
const HTTP_DURATION: &str = "minifig_http_request_duration_seconds";
const SOCKETS_OPEN: &str = "minifig_websocket_sockets_open";
const SOCKET_CLOSES: &str = "minifig_websocket_closes_total";
const SUBSCRIPTIONS_ACTIVE: &str = "minifig_subscriptions_active";
const RELAY_PUBLISH_DURATION: &str = "minifig_relay_publish_duration_seconds";
const RELAY_PUBLISHED: &str = "minifig_relay_messages_published_total";
const RELAY_FAILURES: &str = "minifig_relay_publish_failures_total";
const REDELIVERIES: &str = "minifig_redeliveries_total";
const HUB_DISPATCHED: &str = "minifig_hub_events_dispatched_total";
const HUB_LAGS: &str = "minifig_hub_subscriber_lags_total";
const HUB_RESYNCS: &str = "minifig_hub_resyncs_total";
const EVENT_DELAY: &str = "minifig_event_delay_seconds";
const LOGINS: &str = "minifig_logins_total";
const THROTTLE_REFUSALS: &str = "minifig_login_throttle_refusals_total";
const HASH_QUEUE: &str = "minifig_password_hash_queue_depth";
const HASH_WAIT: &str = "minifig_password_hash_wait_seconds";
const REDIS_RECONNECTS: &str = "minifig_redis_reconnects_total";

/// Describes every metric, and starts the counters whose label sets are known at zero.
pub fn describe() {
    describe_counter!(
        GRAPHQL_OPERATIONS,
        "GraphQL operations by type, operation name and outcome (`ok` or the error code)"
    );
    describe_histogram!(
        GRAPHQL_DURATION,
        Unit::Seconds,
        "Time to run a GraphQL operation (a subscription: to its first result)"
    );
    describe_counter!(HTTP_REQUESTS, "HTTP requests by route and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "Time to answer an HTTP request, by route");
    describe_gauge!(SOCKETS_OPEN, "WebSockets open, by subprotocol");
    describe_counter!(
        SOCKET_CLOSES,
        "WebSockets ended, by close code (`client` when the client closed, 1006 when it vanished)"
    );
    describe_gauge!(SUBSCRIPTIONS_ACTIVE, "Subscriptions running, by root field");
    describe_histogram!(
        RELAY_PUBLISH_DURATION,
        Unit::Seconds,
        "Time to publish one batch of outbox messages, by source"
    );
    describe_counter!(
        RELAY_PUBLISHED,
        "Outbox messages published, by source (`memory` at commit, `table` for rows left behind)"
    );
    describe_counter!(RELAY_FAILURES, "Outbox messages the bus refused (retried from the table)");
    describe_counter!(REDELIVERIES, "Unfinished orders handed to the factories again after sitting idle");
    describe_counter!(HUB_DISPATCHED, "Status events this instance fanned out to its subscriptions");
    describe_counter!(HUB_LAGS, "Times a subscription fell behind its channel and re-read from the database");
    describe_counter!(HUB_RESYNCS, "Times every subscription was told to re-read from the database, by reason");
    describe_histogram!(
        EVENT_DELAY,
        Unit::Seconds,
        "Time from a status change's commit to its fan-out on this instance"
    );
    describe_counter!(LOGINS, "Logins by outcome (`ok` or the error code)");
    describe_counter!(THROTTLE_REFUSALS, "Logins refused by the throttle before any password was checked");
    describe_gauge!(HASH_QUEUE, "Password hashing jobs waiting for a thread, by share");
    describe_histogram!(HASH_WAIT, Unit::Seconds, "Time a password hashing job waited for a thread, by share");
    describe_counter!(REDIS_RECONNECTS, "Reconnections to Redis, by connection");
    samples::describe();

    for source in [Source::Memory, Source::Table] {
        register_counter(RELAY_PUBLISHED, &[("source", source.label())]);
        register_counter(RELAY_FAILURES, &[("source", source.label())]);
    }
    register_counter(REDELIVERIES, &[]);
    register_counter(HUB_DISPATCHED, &[]);
    register_counter(HUB_LAGS, &[]);
    for reason in [Resync::Reconnected, Resync::Overflowed] {
        register_counter(HUB_RESYNCS, &[("reason", reason.label())]);
    }
    register_counter(THROTTLE_REFUSALS, &[]);
    register_counter(LOGINS, &[("outcome", OK)]);
}

/// Starts the Redis counters at zero (with Redis configured only).
pub fn describe_redis() {
    for connection in ["commands", "subscriber"] {
        register_counter(REDIS_RECONNECTS, &[("connection", connection)]);
    }
}

/// The GraphQL operation series of one operation, by type (`query`, `mutation`,
/// `subscription`, or `unknown` when it did not parse) and name (a label from
/// [`operation_names`]). The engine keeps one with each parsed document, so that the `ok`
/// handles, by far the most used, are looked up once: a registry lookup behind `counter!`
/// builds the key, copies it, takes a shard lock and clones the handle, on every call, and
/// on a small query that cost more than the rest of the recording (two atomics).
pub struct OperationSeries {
    kind: &'static str,
    name: SharedString,
    ok: OnceLock<(Counter, Histogram)>,
}

impl OperationSeries {
    pub fn new(kind: &'static str, name: SharedString) -> Self {
        OperationSeries { kind, name, ok: OnceLock::new() }
    }

    /// One operation run, with `outcome`: [`OK`] or the error's code.
    pub fn record(&self, outcome: &'static str, took: Duration) {
        let looked_up;
        let (count, duration) = if outcome == OK {
            self.ok.get_or_init(|| self.handles(OK))
        } else {
            looked_up = self.handles(outcome);
            &looked_up
        };
        count.increment(1);
        duration.record(took);
    }

    fn handles(&self, outcome: &'static str) -> (Counter, Histogram) {
        let labels = [("type", self.kind.into()), ("name", self.name.clone()), ("outcome", outcome.into())];
        (counter!(GRAPHQL_OPERATIONS, &labels), histogram!(GRAPHQL_DURATION, &labels))
    }
}

/// The HTTP request series of one route (one of the router's paths, or `unmatched`), its
/// handles looked up at first use, for the reason given at [`OperationSeries`]. Statuses
/// outside [`COMMON_STATUSES`] are looked up each time.
pub struct RouteSeries {
    route: &'static str,
    duration: OnceLock<Histogram>,
    by_status: [OnceLock<Counter>; COMMON_STATUSES.len()],
}

/// The statuses the API answers with, and their labels (not formatted per request).
const COMMON_STATUSES: [(u16, &str); 15] = [
    (101, "101"),
    (200, "200"),
    (201, "201"),
    (204, "204"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (406, "406"),
    (413, "413"),
    (415, "415"),
    (429, "429"),
    (500, "500"),
    (503, "503"),
];

impl RouteSeries {
    pub fn new(route: &'static str) -> Self {
        RouteSeries { route, duration: OnceLock::new(), by_status: [const { OnceLock::new() }; COMMON_STATUSES.len()] }
    }

    pub fn route(&self) -> &'static str {
        self.route
    }

    /// One request answered with `status`.
    pub fn record(&self, status: u16, took: Duration) {
        match COMMON_STATUSES.iter().position(|&(common, _)| common == status) {
            Some(index) => self.by_status[index]
                .get_or_init(|| counter!(HTTP_REQUESTS, "route" => self.route, "status" => COMMON_STATUSES[index].1))
                .increment(1),
            None => counter!(HTTP_REQUESTS, "route" => self.route, "status" => status.to_string()).increment(1),
        }
        self.duration.get_or_init(|| histogram!(HTTP_DURATION, "route" => self.route)).record(took);
    }
}

/// Counts a socket open for as long as the returned guard lives.
pub fn socket_open(subprotocol: &'static str) -> Held {
    Held::one(gauge!(SOCKETS_OPEN, "subprotocol" => subprotocol))
}

pub fn socket_closed(code: &'static str) {
    counter!(SOCKET_CLOSES, "code" => code).increment(1);
}

/// Counts a subscription running for as long as the returned guard lives.
pub fn subscription_active(field: &'static str) -> Held {
    Held::one(gauge!(SUBSCRIPTIONS_ACTIVE, "field" => field))
}

/// Where the relay took a batch from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// Handed over in memory at commit.
    Memory,
    /// Read from the outbox table (left behind by a failure, or orphaned by an instance).
    Table,
}

impl Source {
    fn label(self) -> &'static str {
        match self {
            Source::Memory => "memory",
            Source::Table => "table",
        }
    }
}

pub fn relay_published(source: Source, published: usize, refused: usize, took: Duration) {
    histogram!(RELAY_PUBLISH_DURATION, "source" => source.label()).record(took);
    counter!(RELAY_PUBLISHED, "source" => source.label()).increment(published as u64);
    if refused > 0 {
        counter!(RELAY_FAILURES, "source" => source.label()).increment(refused as u64);
    }
}

pub fn redelivered(orders: usize) {
    counter!(REDELIVERIES).increment(orders as u64);
}

/// A status event fanned out, `delay` after its commit.
pub fn dispatched(delay: Duration) {
    // Once per status change on every instance: looked up once (see [`OperationSeries`]).
    static HANDLES: OnceLock<(Counter, Histogram)> = OnceLock::new();
    let (count, delays) = HANDLES.get_or_init(|| (counter!(HUB_DISPATCHED), histogram!(EVENT_DELAY)));
    count.increment(1);
    delays.record(delay);
}

pub fn subscriber_lagged() {
    counter!(HUB_LAGS).increment(1);
}

/// Why every subscription re-reads.
#[derive(Debug, Clone, Copy)]
pub enum Resync {
    /// The Redis subscriber reconnected.
    Reconnected,
    /// The subscriber's buffer overflowed.
    Overflowed,
}

impl Resync {
    fn label(self) -> &'static str {
        match self {
            Resync::Reconnected => "reconnected",
            Resync::Overflowed => "overflowed",
        }
    }
}

pub fn resynced(reason: Resync) {
    counter!(HUB_RESYNCS, "reason" => reason.label()).increment(1);
}

pub fn login(outcome: &'static str) {
    counter!(LOGINS, "outcome" => outcome).increment(1);
}

pub fn throttle_refused() {
    counter!(THROTTLE_REFUSALS).increment(1);
}

/// A hashing job of `share` queued: the gauge of that queue, to decrement when it starts.
pub fn hash_queued(share: &'static str) -> metrics::Gauge {
    let depth = gauge!(HASH_QUEUE, "share" => share);
    depth.increment(1);
    depth
}

pub fn hash_started(share: &'static str, depth: &metrics::Gauge, waited: Duration) {
    depth.decrement(1);
    histogram!(HASH_WAIT, "share" => share).record(waited);
}

/// The reconnections of the Redis connection `connection`.
pub fn redis_reconnects(connection: &'static str) -> metrics::Counter {
    counter!(REDIS_RECONNECTS, "connection" => connection)
}
