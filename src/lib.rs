//! MiniFigurine: order miniature figurines over GraphQL.
//!
//! # Layout
//!
//! - [`config`]: settings from the environment, documented in one place.
//! - [`startup`]: builds the [`startup::Application`] (database, migrations, accounts,
//!   listener) and runs it; [`shutdown`]: the signals that stop it, and the drain.
//! - [`domain`]: pure types and rules (account inputs, carts, pricing, the order state
//!   machine). No I/O; unit-tested exhaustively.
//! - [`services`]: the use cases over a database connection, returning domain results.
//! - [`graphql`]: the schema; resolvers parse inputs and call services, nothing more.
//! - [`http`]: routes, GraphQL-over-HTTP, REST compatibility endpoints, health probes.
//! - [`bus`]: the outbox, its relay, Redis or in-process transport, and the fan-out of
//!   status events to subscriptions.
//! - [`auth`]: who is calling and how they prove it (tokens, passwords, the login throttle);
//!   [`error`]: the one error type and its client codes.
//! - [`metrics`]: what the server measures, for `GET /metrics`.
//! - [`db`]: connecting and migrating; [`state`]: the shared state; logs and traces:
//!   `minifig_common::telemetry` (the W3C trace context enters at `http::trace_context`
//!   and the WebSocket's `connection_init`, and travels with the outbox rows).

pub mod auth;
pub mod bus;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod services;
pub mod shutdown;
pub mod startup;
pub mod state;
