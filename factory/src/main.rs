//! The `factory` binary: reads orders from the Redis stream and works on them until SIGINT
//! or SIGTERM. Settings: `factory --help` (or `factory::config`).

use std::sync::Arc;

use clap::Parser;
use factory::{Factory, RedisStreamSource, Settings, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    telemetry::init(settings.log_format);
    let source = Arc::new(RedisStreamSource::connect(&settings.redis).await?);
    Factory::build(&settings.worker, source.clone())?.run_until_stopped().await?;
    source.close().await;
    Ok(())
}
