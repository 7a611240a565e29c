//! The part of a node's configuration the federation owns, already checked: the `[federation]`
//! section and its `[[partner]]` and `[[origin_key]]` tables (parsed from TOML by the node's
//! config; docs/node.md names every key).

use crate::protocol::EgressPolicy;
use crate::transform::Transform;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use vocab::Nation;

/// A partner node: who it is, where to dial it, what it is trusted with and what it is sent.
#[derive(Debug, Clone)]
pub struct Partner {
    pub nation: Nation,
    /// Where its federation port is; `None`: it dials this node, this node never dials it.
    pub address: Option<SocketAddr>,
    /// The partner nation's CA certificate (PEM): the only issuer trusted for its nodes.
    pub ca: PathBuf,
    /// Its Ed25519 log signing key (`node.pub`).
    pub signing_key: PathBuf,
    /// Accept other origins' records relayed by this partner.
    pub accept_relay: bool,
    /// Kinds released to it in full (others go as Withheld stubs).
    pub release: EgressPolicy,
    /// This node's measurement batches go to it only transformed.
    pub transform: Option<Transform>,
}

/// The `[federation]` section with its partners and the keys of origins reached by relay.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Serve partners the records of other origins this node holds (a hub).
    pub relay: bool,
    pub partners: Vec<Partner>,
    /// Signing keys of origins reached only through a relay.
    pub origin_keys: BTreeMap<Nation, PathBuf>,
    /// What a connection to the federation port may cost before it authenticates.
    pub handshake: crate::tls::HandshakeLimits,
}

impl Settings {
    /// The keys each origin's checkpoints must verify against: the node's own (`own`) and
    /// those of its partners and relayed origins, read from their files.
    pub fn trusted_keys(
        &self,
        own: (Nation, ed25519_dalek::VerifyingKey),
    ) -> anyhow::Result<BTreeMap<Nation, ed25519_dalek::VerifyingKey>> {
        use anyhow::Context;
        let mut trusted = BTreeMap::from([own]);
        let keys = self
            .partners
            .iter()
            .map(|p| (p.nation, &p.signing_key))
            .chain(self.origin_keys.iter().map(|(n, p)| (*n, p)));
        for (nation, path) in keys {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("failed to read {nation}'s signing key {}", path.display()))?;
            let k = ledger::keys::parse_public_key(&text).with_context(|| format!("in {}", path.display()))?;
            trusted.insert(nation, k);
        }
        Ok(trusted)
    }
}
