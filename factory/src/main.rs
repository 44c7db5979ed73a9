//! The `factory` binary: reads orders from the Redis stream and works on them until SIGINT
//! or SIGTERM. Settings: `factory --help` (or `factory::config`).

use std::sync::Arc;

use clap::Parser;
use factory::{Factory, RedisStreamSource, Settings};
use minifig_common::telemetry;

/// What is logged when `RUST_LOG` is not set: the factory's own events, and only warnings
/// from the HTTP and Redis clients.
const DEFAULT_LOG_FILTER: &str = "info,fred=warn,reqwest=warn,hyper=warn";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    let _log_writer = telemetry::init(settings.log_format, DEFAULT_LOG_FILTER);
    let source = Arc::new(RedisStreamSource::connect(&settings.redis).await?);
    Factory::build(&settings.worker, source.clone())?.run_until_stopped().await?;
    source.close().await;
    Ok(())
}
