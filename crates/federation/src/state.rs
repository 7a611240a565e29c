//! What the federation tasks share: who the partners are, whose keys are trusted, the release
//! audit log, and per-link status for operators (`/v1/status`, `/metrics`).

use crate::config::Partner;
use crate::tls::Tls;
use ed25519_dalek::{SigningKey, VerifyingKey};
use ledger::chain::NewRecord;
use ledger::{Chain, FileStore, LogStore};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use vocab::Nation;
use wire::{RecordKind, ReleaseDecision};

/// Per partner, the receiving side of its link.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LinkStatus {
    /// "connecting", "up", "down"
    pub state: String,
    pub last_error: Option<String>,
    pub connects: u64,
    pub batches: u64,
    /// Commits (syncs) that made batches durable: batches already received are applied
    /// together, so fewer than `batches` when the link runs behind.
    pub commits: u64,
    pub records: u64,
    pub stubs: u64,
    /// Owed records (stubs naming this node, brought by a relay) later filled from this partner.
    pub filled: u64,
    /// Records of this partner held as stubs naming this node, not yet filled.
    pub owed: u64,
    pub refused: u64,
    /// When the last heartbeat came (the node's clock, RFC 3339).
    pub last_heartbeat: Option<String>,
    /// Per origin: records behind the partner's head, and seconds behind its clock.
    pub lag: BTreeMap<String, Lag>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Lag {
    pub records: u64,
    /// How long this node has been behind the partner's head (0 when caught up).
    pub seconds: f64,
    pub held: u64,
    #[serde(skip)]
    pub behind_since: Option<std::time::Instant>,
}

impl Lag {
    /// Records what a heartbeat or a batch says about this origin.
    pub fn update(&mut self, held: u64, partner_head: u64) {
        self.held = held;
        self.records = partner_head.saturating_sub(held);
        if self.records == 0 {
            self.behind_since = None;
            self.seconds = 0.0;
        } else {
            let since = *self.behind_since.get_or_insert_with(std::time::Instant::now);
            self.seconds = since.elapsed().as_secs_f64();
        }
    }
}

/// Per partner, the sending side: what it subscribed to and how far it has acknowledged.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ServeStatus {
    pub connected: bool,
    pub batches: u64,
    pub records_sent: u64,
    pub withheld: u64,
    /// Per origin: last seq sent and last seq acknowledged durable.
    pub sent: BTreeMap<String, u64>,
    pub acked: BTreeMap<String, u64>,
    /// Set while the partner holds more of this node's own records than this node's log does
    /// (the log lost records it had made durable: restored from an old copy, or a disk that
    /// lost acknowledged writes): this node's records from there on would fork the chain the
    /// partner holds, so none are sent to it. Says what each holds.
    pub own_log_behind: Option<String>,
    /// Relayed origins not served to the partner because it holds another chain of them than
    /// this node does (the origin's log forked: both branches signed by it), with why.
    pub forked: BTreeMap<String, String>,
}

/// The signed, never-shared log of release decisions: one `ReleaseDecision` record per batch
/// sent, committed before the batch leaves. Same format as the node's log
/// (`trilink audit verify DATA_DIR/releases`).
#[derive(Debug)]
pub struct ReleaseLog {
    store: FileStore,
    chain: Chain,
    key: SigningKey,
}

impl ReleaseLog {
    pub fn open(dir: &Path, key: SigningKey, me: Nation) -> Result<ReleaseLog, ledger::StoreError> {
        let trusted = BTreeMap::from([(me, key.verifying_key())]);
        let (store, _) = FileStore::open(dir, &trusted)?;
        let chain = store.heads().into_iter().find(|c| c.origin() == me).unwrap_or_else(|| Chain::new(me));
        Ok(ReleaseLog { store, chain, key })
    }

    /// Appends and syncs one decision.
    pub fn record(&mut self, decision: &ReleaseDecision) -> Result<(), ledger::StoreError> {
        let now = journal::wall_clock();
        let sealed = self.chain.seal(NewRecord {
            time: now,
            releasable_to: &[],
            kind: RecordKind::ReleaseDecision,
            body: prost::Message::encode_to_vec(decision),
        });
        self.store.append_record(self.chain.origin(), &sealed.bytes)?;
        let (cp, proof) = self.chain.checkpoint_proven(&self.key, now);
        self.store.append_proven_checkpoint(self.chain.origin(), &cp, &proof, Some(&self.key.verifying_key()))?;
        self.store.commit()
    }
}

/// The federation's shared state.
#[derive(Debug)]
pub struct Fed {
    pub me: Nation,
    pub relay: bool,
    pub partners: BTreeMap<Nation, Partner>,
    /// Every origin's trusted signing key, this node's own included.
    pub trusted: BTreeMap<Nation, VerifyingKey>,
    pub tls: Arc<Tls>,
    /// What a connection may cost before it has authenticated.
    pub handshake: crate::tls::HandshakeLimits,
    pub releases: Mutex<ReleaseLog>,
    pub links: Mutex<BTreeMap<Nation, LinkStatus>>,
    pub serving: Mutex<BTreeMap<Nation, ServeStatus>>,
    /// Connections refused, by reason.
    pub refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Batches refused by a receiver, by reason.
    pub batches_refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl Fed {
    pub fn count_refused(&self, reason: &'static str) {
        if let Ok(mut m) = self.refused.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    pub fn link<R>(&self, partner: Nation, f: impl FnOnce(&mut LinkStatus) -> R) -> Option<R> {
        self.links.lock().ok().map(|mut m| f(m.entry(partner).or_default()))
    }

    pub fn serve<R>(&self, partner: Nation, f: impl FnOnce(&mut ServeStatus) -> R) -> Option<R> {
        self.serving.lock().ok().map(|mut m| f(m.entry(partner).or_default()))
    }

    /// Status for the API.
    pub fn status_json(&self) -> serde_json::Value {
        let links = self.links.lock().map(|m| m.clone()).unwrap_or_default();
        let serving = self.serving.lock().map(|m| m.clone()).unwrap_or_default();
        let refused = self.refused.lock().map(|m| m.clone()).unwrap_or_default();
        let batches_refused = self.batches_refused.lock().map(|m| m.clone()).unwrap_or_default();
        serde_json::json!({
            "relay": self.relay,
            "partners": self.partners.values().map(|p| serde_json::json!({
                "nation": p.nation.as_str(),
                "address": p.address.map(|a| a.to_string()),
                "accept_relay": p.accept_relay,
                "receiving": links.get(&p.nation),
                "sending": serving.get(&p.nation),
            })).collect::<Vec<_>>(),
            "connections_refused": refused,
            "batches_refused": batches_refused,
        })
    }

    /// Prometheus lines (labels are configured partners and origins: bounded).
    pub fn render_metrics(&self, out: &mut String) {
        let links = self.links.lock().map(|m| m.clone()).unwrap_or_default();
        let serving = self.serving.lock().map(|m| m.clone()).unwrap_or_default();
        let _ = writeln!(out, "# HELP trilink_link_up Whether the link from a partner is up (receiving side).\n# TYPE trilink_link_up gauge");
        for p in self.partners.keys() {
            let up = links.get(p).is_some_and(|l| l.state == "up");
            let _ = writeln!(out, "trilink_link_up{{partner=\"{p}\"}} {}", u8::from(up));
        }
        let _ = writeln!(out, "# HELP trilink_link_lag_records Records of an origin the partner holds and this node does not yet.\n# TYPE trilink_link_lag_records gauge");
        for (p, l) in &links {
            for (o, lag) in &l.lag {
                let _ = writeln!(out, "trilink_link_lag_records{{partner=\"{p}\",origin=\"{o}\"}} {}", lag.records);
            }
        }
        let _ = writeln!(out, "# HELP trilink_link_lag_seconds Age of the newest record of an origin not yet held.\n# TYPE trilink_link_lag_seconds gauge");
        for (p, l) in &links {
            for (o, lag) in &l.lag {
                let _ = writeln!(out, "trilink_link_lag_seconds{{partner=\"{p}\",origin=\"{o}\"}} {}", lag.seconds);
            }
        }
        let _ = writeln!(out, "# HELP trilink_link_records_received_total Records and stubs applied from a partner.\n# TYPE trilink_link_records_received_total counter");
        for (p, l) in &links {
            let _ = writeln!(out, "trilink_link_records_received_total{{partner=\"{p}\"}} {}", l.records + l.stubs);
        }
        let _ = writeln!(out, "# HELP trilink_link_records_sent_total Entries sent to a partner.\n# TYPE trilink_link_records_sent_total counter");
        for (p, s) in &serving {
            let _ = writeln!(out, "trilink_link_records_sent_total{{partner=\"{p}\"}} {}", s.records_sent);
        }
        let _ = writeln!(out, "# HELP trilink_link_withheld_total Records sent to a partner as Withheld stubs.\n# TYPE trilink_link_withheld_total counter");
        for (p, s) in &serving {
            let _ = writeln!(out, "trilink_link_withheld_total{{partner=\"{p}\"}} {}", s.withheld);
        }
        let _ = writeln!(out, "# HELP trilink_link_diverged 1 while a partner holds a chain of an origin that this node does not (this node's own log went back, or the origin forked): none of that origin's records are sent to it (own_log_behind, forked).\n# TYPE trilink_link_diverged gauge");
        for p in self.partners.keys() {
            let s = serving.get(p);
            let own = s.is_some_and(|s| s.own_log_behind.is_some());
            let _ = writeln!(out, "trilink_link_diverged{{partner=\"{p}\",origin=\"{}\"}} {}", self.me, u8::from(own));
            for o in s.map(|s| s.forked.keys()).into_iter().flatten() {
                let _ = writeln!(out, "trilink_link_diverged{{partner=\"{p}\",origin=\"{o}\"}} 1");
            }
        }
        let _ = writeln!(out, "# HELP trilink_federation_connections_refused_total Partner connections refused, by reason.\n# TYPE trilink_federation_connections_refused_total counter");
        for (r, n) in self.refused.lock().map(|m| m.clone()).unwrap_or_default() {
            let _ = writeln!(out, "trilink_federation_connections_refused_total{{reason=\"{r}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP trilink_federation_batches_refused_total Batches from partners refused, by reason.\n# TYPE trilink_federation_batches_refused_total counter");
        for (r, n) in self.batches_refused.lock().map(|m| m.clone()).unwrap_or_default() {
            let _ = writeln!(out, "trilink_federation_batches_refused_total{{reason=\"{r}\"}} {n}");
        }
    }
}
