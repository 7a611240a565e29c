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
        /// The log directory (a node's `data_dir`), or the NATS servers of a JetStream log
        /// (`nats://host:port[,nats://…]`, with `--monitor` and `--prefix`).
        dir: PathBuf,
        /// With a `nats://` log: each server's monitoring URL (repeat), as in `store_monitor`.
        #[arg(long = "monitor", value_name = "URL")]
        monitors: Vec<String>,
        /// With a `nats://` log: its stream prefix (`store_prefix`, by default TRILINK_<NATION>).
        #[arg(long)]
        prefix: Option<String>,
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
    let AuditCommand::Verify { dir, keys, monitors, prefix } = cmd;
    let trusted: BTreeMap<_, _> =
        keys.iter().map(|k| parse_key(k)).collect::<anyhow::Result<_>>().map_err(Failure::Input)?;
    let target = dir.to_string_lossy();
    if target.starts_with("nats://") {
        let prefix = prefix.clone().ok_or_else(|| Failure::Input(anyhow!("--prefix is needed with a nats:// log")))?;
        return verify_jetstream(&target, monitors, prefix, &trusted);
    }
    let audits = ledger::audit::verify_dir(dir, &trusted).map_err(|e| Failure::Input(anyhow!(e)))?;
    let mut faults = 0;
    for a in &audits {
        let who = signed_by(a.signer.as_deref(), a.key_trusted, a.origin);
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

/// `audit verify nats://…`: opens the JetStream log (which checks the servers' durability and
/// verifies each origin's last checkpoint) and re-verifies every origin's chain from seq 1.
fn verify_jetstream(
    servers: &str,
    monitors: &[String],
    prefix: String,
    trusted: &BTreeMap<Nation, ed25519_dalek::VerifyingKey>,
) -> Result<(), Failure> {
    let settings = jetstore::Settings {
        servers: servers.split(',').map(|s| s.trim().to_string()).collect(),
        monitors: monitors.to_vec(),
        prefix,
        timeout: std::time::Duration::from_secs(30),
    };
    let (store, _) = jetstore::JetStore::open(&settings, trusted, None).map_err(|e| match e {
        ledger::StoreError::Misconfigured(_) | ledger::StoreError::Unavailable(_) => Failure::Input(anyhow!(e)),
        e => Failure::Run(anyhow!(e)),
    })?;
    let audits = store.audit(trusted);
    if audits.is_empty() {
        return Err(Failure::Input(anyhow!("no log with prefix {} on {servers}", settings.prefix)));
    }
    let mut faults = 0;
    for a in &audits {
        let who = signed_by(a.signer.as_deref(), a.key_trusted, a.origin);
        println!(
            "{} (stream {}): {} records, {} checkpoints, covered to seq {}; {who}",
            a.origin, a.stream, a.records, a.checkpoints, a.covered
        );
        if let Some((seq, why)) = &a.fault {
            faults += 1;
            println!("  FIRST BAD RECORD: seq {seq}: {why}");
        }
    }
    if faults > 0 {
        return Err(Failure::Run(anyhow!("{faults} of {} origins failed verification", audits.len())));
    }
    println!("ok: every origin verifies");
    Ok(())
}

/// How an origin's checkpoints were checked, in words.
fn signed_by(signer: Option<&str>, trusted: bool, origin: Nation) -> String {
    match (signer, trusted) {
        (Some(k), true) => format!("signed by the trusted key {k}"),
        (Some(k), false) => format!("signed by {k} (not checked against a trusted key: pass --key {origin}=...)"),
        (None, _) => "no checkpoint".to_string(),
    }
}
