//! `trilink audit verify DIR`: check a log offline — frames, chains, signatures — and name the
//! first bad record. Exit 0: every origin verifies; 1: a fault was found; 2: bad usage.

use crate::Failure;
use anyhow::{anyhow, Context};
use clap::Subcommand;
use std::collections::BTreeMap;
use std::path::PathBuf;
use vocab::Nation;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify every origin's chain and checkpoint signatures in a log directory.
    Verify {
        /// The log directory (a node's `data_dir`).
        dir: PathBuf,
        /// Trust this public key for a nation: NATION=FILE (a node.pub) or NATION=HEX. Without
        /// one, a nation's checkpoints are checked against the key they name, which proves the
        /// log consistent but not who wrote it.
        #[arg(long = "key", value_name = "NATION=KEY")]
        keys: Vec<String>,
    },
}

fn parse_key(spec: &str) -> anyhow::Result<(Nation, ed25519_dalek::VerifyingKey)> {
    let (nation, key) =
        spec.split_once('=').ok_or_else(|| anyhow!("--key {spec:?}: expected NATION=FILE or NATION=HEX"))?;
    let nation = Nation::parse(nation)?;
    let text = if key.len() == 64 && key.chars().all(|c| c.is_ascii_hexdigit()) {
        key.to_string()
    } else {
        std::fs::read_to_string(key).with_context(|| format!("failed to read key file {key}"))?
    };
    Ok((nation, ledger::keys::parse_public_key(&text)?))
}

pub fn run(cmd: &AuditCommand) -> Result<(), Failure> {
    let AuditCommand::Verify { dir, keys } = cmd;
    let trusted: BTreeMap<_, _> =
        keys.iter().map(|k| parse_key(k)).collect::<anyhow::Result<_>>().map_err(Failure::Input)?;
    let audits = ledger::audit::verify_dir(dir, &trusted).map_err(|e| Failure::Input(anyhow!(e)))?;
    let mut faults = 0;
    for a in &audits {
        let who = match (&a.signer, a.key_trusted) {
            (Some(k), true) => format!("signed by the trusted key {k}"),
            (Some(k), false) => {
                format!("signed by {k} (not checked against a trusted key: pass --key {}=...)", a.origin)
            }
            (None, _) => "no checkpoint".to_string(),
        };
        println!(
            "{}: {} records, {} checkpoints, covered to seq {}; {who}",
            a.origin, a.records, a.checkpoints, a.covered
        );
        if a.fills > 0 {
            println!("  {} withheld records filled later, each matching its stub", a.fills);
        }
        if a.uncovered_tail > 0 {
            println!(
                "  {} records after the last checkpoint (an interrupted write; never acknowledged)",
                a.uncovered_tail
            );
        }
        if let Some(f) = &a.fault {
            faults += 1;
            println!("  FIRST BAD RECORD: seq {} at byte {} of {}: {}", f.bad_seq, f.offset, f.path.display(), f.why);
        }
    }
    if faults > 0 {
        return Err(Failure::Run(anyhow!("{faults} of {} origins failed verification", audits.len())));
    }
    println!("ok: every origin verifies");
    Ok(())
}
