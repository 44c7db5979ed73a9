//! What the MiniFigurine API server and the factory worker both need, written once.
//!
//! Only contract-level ideas and infrastructure live here: nothing about how the server
//! stores orders or how the factory schedules its work.

pub mod backoff;
pub mod order_status;
pub mod redis;
pub mod telemetry;

pub use order_status::OrderStatus;
