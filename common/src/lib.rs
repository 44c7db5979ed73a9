//! What the MiniFigurine API server and the factory worker both need, written once.
//!
//! Only contract-level ideas and infrastructure live here: nothing about how the server
//! stores orders or how the factory schedules its work.
//!
//! # Layout
//!
//! - [`telemetry`]: logging, to stdout, batched.
//! - [`secret`]: how a secret setting is parsed (a redacted `secrecy::SecretString`).
//! - [`settings_doc`]: the READMEs' settings tables, generated from the clap definitions.

pub mod secret;
pub mod settings_doc;
pub mod telemetry;
