//! `trilink pki`: make a node's signing key, and sensor tokens.

use crate::Failure;
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum PkiCommand {
    /// Make a node's Ed25519 signing key: DIR/node.key (secret, mode 0600) and DIR/node.pub.
    Init {
        /// Directory for the key files (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Replace existing key files (a new key cannot sign the existing log's chain on).
        #[arg(long)]
        force: bool,
    },
    /// Make a sensor bearer token: prints the token (give it to the sensor) and its SHA-256
    /// (put it in the node's config as `token_sha256`).
    Token,
}

fn random32() -> anyhow::Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("failed to read the OS random source: {e}"))?;
    Ok(b)
}

pub fn run(cmd: &PkiCommand) -> Result<(), Failure> {
    match cmd {
        PkiCommand::Init { out, force } => {
            let key_path = out.join("node.key");
            if key_path.exists() && !force {
                return Err(Failure::Input(anyhow::anyhow!(
                    "{} exists; pass --force to replace it (the log signed with it then needs the old public key to verify)",
                    key_path.display()
                )));
            }
            let key = ed25519_dalek::SigningKey::from_bytes(&random32().map_err(Failure::Run)?);
            std::fs::create_dir_all(out)
                .with_context(|| format!("failed to create {}", out.display()))
                .map_err(Failure::Run)?;
            write_secret(&key_path, &ledger::keys::signing_key_text(&key)).map_err(Failure::Run)?;
            let pub_path = out.join("node.pub");
            std::fs::write(&pub_path, ledger::keys::public_key_text(&key.verifying_key()))
                .with_context(|| format!("failed to write {}", pub_path.display()))
                .map_err(Failure::Run)?;
            println!("wrote {} and {}", key_path.display(), pub_path.display());
            print!("public key: {}", ledger::keys::public_key_text(&key.verifying_key()));
            Ok(())
        }
        PkiCommand::Token => {
            let token = hex::encode(random32().map_err(Failure::Run)?);
            println!("token = \"{token}\"");
            println!("token_sha256 = \"{}\"", hex::encode(node::config::token_hash(&token)));
            Ok(())
        }
    }
}

fn write_secret(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("failed to create {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("failed to write {}", path.display()))
}
