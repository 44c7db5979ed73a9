//! Black-box tests of the factory against a real server (in-process, its own SQLite file)
//! and the real Redis on 127.0.0.1:6379, each test under its own key prefix.

mod api_proxy;
mod blips;
mod fault;
mod helpers;
mod lifecycle;
mod metrics;
mod process;
#[path = "../../../tests/support/promtool.rs"]
mod promtool;
mod settings_doc;
mod stream;
mod trim;
