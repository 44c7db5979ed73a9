//! The MiniFigurine factory: takes orders from a queue and moves each one
//! PENDING -> ACCEPTED -> IN_PRODUCTION -> SHIPPED through the public GraphQL API, as the
//! FACTORY account. It is a client of the API, not of the server's internals: it knows the
//! schema (`schema.graphql`) and the Redis stream's documented entry format, nothing else.
//!
//! # Layout
//!
//! - [`config`]: settings from the environment, each documented once (in its field, from
//!   which the README's table is generated), secrets redacted.
//! - [`api`]: typed GraphQL operations generated from `schema.graphql`, the HTTP client,
//!   token renewal, and what each `extensions.code` means to the factory (an answer about
//!   the order, a transient failure, or a refusal).
//! - [`circuit`]: the circuit breaker: API calls retried in place, and the API counted as
//!   down only after sustained failure.
//! - [`retry`]: the one backoff policy (exponential, full jitter) of every retry loop.
//! - [`status`]: pure rules: the next status to move an order to, and when.
//! - [`source`]: where orders come from ([`OrderSource`]): the Redis stream
//!   ([`RedisStreamSource`], the `factory` binary) or an in-process queue
//!   ([`MemorySource`], or the server's own, in embedded mode).
//! - [`worker`]: the [`Factory`] itself: its main loop (bounded concurrency, pausing while
//!   the circuit is open, graceful shutdown); `worker::process` works on one order (its
//!   turn, the steps, acknowledge or hand back), `worker::order_locks` makes two
//!   deliveries of one order take turns, `worker::shutdown` waits for SIGINT or SIGTERM.
//! - [`metrics`]: what the factory measures, and its `/metrics` and `/healthz` listener.
//! - logging is set up by `minifig_common::telemetry`.
//!
//! # Embedding
//!
//! The server runs the same code in-process with [`run_with_source`], giving it its own
//! [`OrderSource`] and [`WorkerSettings`] pointing at its own `/graphql`.

pub mod api;
pub mod circuit;
pub mod config;
pub mod metrics;
pub mod retry;
pub mod source;
pub mod status;
pub mod worker;

pub use config::{RedisSettings, Settings, WorkerSettings};
pub use source::{Delivery, MemorySource, OrderSource, RedisStreamSource};
pub use worker::{Factory, run_with_source, shutdown_signal};
