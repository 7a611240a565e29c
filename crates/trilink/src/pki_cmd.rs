//! `trilink pki`: make a node's signing key, and sensor tokens.

use crate::Failure;
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum PkiCommand {
    /// Make a node's Ed25519 signing key: DIR/node.key (secret, mode 0600) and DIR/node.pub.
    /// With --nations, make a whole test PKI for a federation instead: per nation a CA, a node
    /// TLS certificate naming the nation, an API (HTTPS, gRPC) certificate, and a signing key, in
    /// DIR/<nation>/ (docs/federation.md, docs/security.md).
    Init {
        /// Directory for the key files (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Comma-separated nations (e.g. USA,JPN,KOR): make a federation PKI.
        #[arg(long, value_delimiter = ',')]
        nations: Vec<String>,
        /// With --nations: host names or addresses (comma-separated) the nodes' HTTPS and gRPC
        /// listeners are reached under, besides localhost, 127.0.0.1 and ::1.
        #[arg(long, value_delimiter = ',')]
        api_names: Vec<String>,
        /// Validity of the certificates made with --nations, in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
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
        PkiCommand::Init { out, force, nations, days, api_names } if !nations.is_empty() => {
            let nations = nations
                .iter()
                .map(|n| vocab::Nation::parse(n.trim()).map_err(|e| anyhow::anyhow!("--nations: {e}")))
                .collect::<anyhow::Result<Vec<_>>>()
                .map_err(Failure::Input)?;
            if !(1..=3650).contains(days) {
                return Err(Failure::Input(anyhow::anyhow!("--days {days} is not between 1 and 3650")));
            }
            for n in &nations {
                let existing = out.join(n.as_str().to_lowercase()).join("node.key");
                if existing.exists() && !force {
                    return Err(Failure::Input(anyhow::anyhow!(
                        "{} exists; pass --force to replace the PKI (logs signed with the old keys then need the old public keys to verify)",
                        existing.display()
                    )));
                }
            }
            pki::init_federation(&nations, out, pki::Validity::days_from_now(*days), api_names)
                .map_err(Failure::Run)?;
            for n in &nations {
                println!("{}: {}/", n, out.join(n.as_str().to_lowercase()).display());
            }
            println!("each holds ca.crt ca.key tls.crt tls.key api.crt api.key node.key node.pub (keys mode 0600)");
            Ok(())
        }
        PkiCommand::Init { out, force, .. } => {
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
            println!("token_sha256 = \"{}\"", hex::encode(pki::token_hash(&token)));
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
