//! The `factory` binary: reads orders from the Redis stream and works on them until SIGINT
//! or SIGTERM. Settings: `factory --help` (or `factory::config`); `factory config
//! --markdown` prints them as the README's table.

use std::sync::Arc;

use clap::{CommandFactory, FromArgMatches, Subcommand};
use factory::config::{DEFAULT_LOG_FILTER, settings_markdown};
use factory::{Factory, RedisStreamSource, Settings};
use minifig_common::telemetry;

/// The spans' `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "minifig-factory";

// What the binary can do besides its work, which needs no subcommand. (A plain comment: a
// doc comment here would replace the binary's own `about`.)
#[derive(Subcommand)]
enum Command {
    /// Print the settings: `--markdown` is `factory/README.md`'s configuration table.
    Config {
        /// As a Markdown table (the only format so far).
        #[arg(long, required = true)]
        markdown: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The settings stay the top-level command, so that `factory` with no subcommand reads
    // them exactly as before; a subcommand only lifts their requirements.
    let mut cli = Command::augment_subcommands(Settings::command()).subcommand_negates_reqs(true);
    let matches = cli.get_matches_mut();
    if matches.subcommand().is_some() {
        let Command::Config { markdown: _ } = Command::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
        print!("{}", settings_markdown());
        return Ok(());
    }
    let settings = Settings::from_arg_matches(&matches).unwrap_or_else(|err| err.format(&mut cli).exit());
    let _telemetry = telemetry::init(settings.log_format, DEFAULT_LOG_FILTER, SERVICE_NAME);
    let metrics = settings.metrics_addr.as_ref().map(|_| factory::metrics::endpoint::install()).transpose()?;
    let source = Arc::new(RedisStreamSource::connect(&settings.redis).await?);
    if let (Some(address), Some(metrics)) = (&settings.metrics_addr, metrics) {
        factory::metrics::endpoint::serve(address, metrics, source.clone()).await?;
    }
    Factory::build(&settings.worker, source.clone())?.run_until_stopped().await?;
    source.close().await;
    Ok(())
}
