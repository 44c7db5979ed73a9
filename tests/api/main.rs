//! Black-box tests: the real server on a random port, its own database per test (PostgreSQL
//! by default, SQLite with `MINIFIG_TEST_DATABASE=sqlite`), real HTTP clients.

mod helpers;
#[path = "../support/promtool.rs"]
mod promtool;

mod accounts;
mod catalog;
mod cli;
mod clock_skew;
mod embedded;
mod hostile_input;
mod http;
mod key_order;
mod login_throttle;
mod metrics;
mod orders;
mod pipeline;
mod redis_half_open;
mod rest;
mod scale_out;
mod schema;
mod settings_doc;
mod shutdown;
mod socket_hygiene;
mod statements;
mod status;
mod subscriptions;
mod tcp_proxy;
mod traces;
mod websocket;
