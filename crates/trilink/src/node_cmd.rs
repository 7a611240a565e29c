//! `trilink node --config FILE`: run one nation's server until SIGINT/SIGTERM.

use crate::Failure;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct NodeArgs {
    /// The node's config (TOML; docs/node.md). Examples: config/usa.toml, jpn.toml, kor.toml.
    #[arg(long)]
    config: PathBuf,
    /// Log filter (tracing's env-filter syntax), overriding TRILINK_LOG.
    #[arg(long)]
    log: Option<String>,
}

pub fn run(args: &NodeArgs) -> Result<(), Failure> {
    let filter = args.log.clone().or_else(|| std::env::var("TRILINK_LOG").ok()).unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .map_err(|e| Failure::Input(anyhow::anyhow!("bad log filter {filter:?}: {e}")))?;
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let config = node::config::Config::load(&args.config).map_err(Failure::Input)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("node-io")
        .build()
        .map_err(|e| Failure::Run(anyhow::anyhow!("failed to start the runtime: {e}")))?;
    let result = rt.block_on(node::run(config));
    // Connections a graceful shutdown gave up on are dropped here, not waited for.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    result.map_err(Failure::Run)
}
