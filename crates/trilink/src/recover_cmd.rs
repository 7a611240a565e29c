//! `trilink recover --config FILE`: with the node stopped, takes the node's own records back
//! from its partners after its log lost records it had made durable (docs/federation.md,
//! "A log that went back").

use crate::Failure;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// The node's config (TOML; docs/node.md): its log, keys and partners.
    #[arg(long)]
    config: PathBuf,
    /// Take back records a partner holds only as stubs (withheld from it) as stubs: their
    /// content is given up, and the log continues the chain its partners hold.
    #[arg(long)]
    accept_stubs: bool,
}

pub fn run(args: &RecoverArgs) -> Result<(), Failure> {
    let config = node::config::Config::load(&args.config).map_err(Failure::Input)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(anyhow::anyhow!("failed to start the runtime: {e}")))?;
    let recovered = rt.block_on(node::recover(&config, args.accept_stubs)).map_err(Failure::Run)?;
    let report = &recovered.partners;
    for line in report {
        println!("{line}");
    }
    let (first, last) = (report.first().map_or(0, |r| r.from), report.last().map_or(0, |r| r.to));
    println!("{}'s log now holds its own records to seq {last} (was {first})", config.nation);
    if report.iter().all(|r| r.failed.is_some()) {
        return Err(Failure::Run(anyhow::anyhow!("no partner gave anything back")));
    }
    let most = report.iter().map(|r| r.holds()).max().unwrap_or(0);
    if most > last {
        println!(
            "a partner holds {n}'s records to seq {most}, but past seq {last} only as stubs (withheld from it): started \
             now, this node would seal other records under seqs that partner holds, and send it none of them. Run again \
             when a partner that holds them in full is reachable, or with --accept-stubs to give up their content",
            n = config.nation
        );
        return Err(Failure::Run(anyhow::anyhow!("{} records of this node are held only as stubs", most - last)));
    }
    if let (Some(first), Some(last)) = (recovered.stubs_left.first(), recovered.stubs_left.last()) {
        println!(
            "{} of {}'s records are held here only as stubs (seqs {first} to {last}): taken back as stubs before, their \
             content is lost unless a partner that holds them in full is asked (run again when it is reachable)",
            recovered.stubs_left.len(),
            config.nation
        );
    }
    let failed: Vec<String> = report.iter().filter(|r| r.failed.is_some()).map(|r| r.partner.to_string()).collect();
    if !failed.is_empty() {
        return Err(Failure::Run(anyhow::anyhow!(
            "{} could not be asked and may hold more of this node's records: run again when reachable",
            failed.join(", ")
        )));
    }
    Ok(())
}
