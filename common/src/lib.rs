//! What the MiniFigurine API server and the factory worker both need, written once.
//!
//! Only contract-level ideas and infrastructure live here: nothing about how the server
//! stores orders or how the factory schedules its work.
//!
//! # Layout
//!
//! - [`order_status`]: the order status, its one text codec and the transition table.
//! - [`error_code`]: the contract's error codes.
//! - [`backoff`]: how every retry loop waits (exponential, full jitter).
//! - [`redis`]: one way to build a Redis client, with the same timeouts everywhere.
//! - [`telemetry`]: logging, to stdout, batched; traces over OTLP when configured, and the
//!   W3C trace context carried between processes.
//! - [`metrics`]: the Prometheus recorder and its buckets.
//! - [`secret`]: how a secret setting is parsed (a redacted `secrecy::SecretString`).
//! - [`settings_doc`]: the READMEs' settings tables, generated from the clap definitions.

pub mod backoff;
pub mod error_code;
pub mod metrics;
pub mod order_status;
pub mod redis;
pub mod secret;
pub mod settings_doc;
pub mod telemetry;

pub use order_status::OrderStatus;
