//! The federation protocol's decisions, sans IO: what a sender may put on a link for a
//! partner (egress), and whether a batch a receiver got may be applied (ingress). The link
//! tasks (`serve`, `link`) only move bytes; everything that can refuse is here, where a test
//! or the deterministic simulation drives it directly.

use ed25519_dalek::VerifyingKey;
use ledger::{Chain, ChainError, Entry, LogStore, StoreError};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use vocab::Nation;
use wire::{link_entry, LinkBatch, LinkEntry, Record, RecordKind, ReleaseDecision};

/// Most bytes of entries one batch carries before it ends at the next checkpoint.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
pub use ledger::MAX_GROUP_BYTES;
/// Largest message either side decodes: a batch, the rest of the group it ends in (up to
/// `MAX_GROUP_BYTES` plus one record of the largest size), and room for framing.
pub const MAX_MESSAGE_BYTES: usize = MAX_BATCH_BYTES + MAX_GROUP_BYTES + ledger::MAX_FRAME_BYTES as usize + 64 * 1024;

/// What a node releases to one partner, besides what each record's marking allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Kinds sent in full; records of other kinds go as `Withheld` stubs.
    pub kinds: BTreeSet<RecordKind>,
    /// Set when this partner gets this node's (`nation`) measurement batches only transformed:
    /// the originals go as stubs, the derived copies (marked for the partner) in full.
    pub transformed_for: Option<Nation>,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        EgressPolicy { kinds: shareable_kinds().into_iter().collect(), transformed_for: None }
    }
}

/// Every kind a log may share (the release audit's own kind never leaves the node).
pub fn shareable_kinds() -> Vec<RecordKind> {
    vec![
        RecordKind::MeasurementBatch,
        RecordKind::LocalTrackUpdate,
        RecordKind::LaunchEvent,
        RecordKind::ImpactPrediction,
        RecordKind::Alert,
        RecordKind::CyberBundle,
        RecordKind::Heartbeat,
    ]
}

/// Why a record did not go in full.
pub fn withhold_reason(record: &Record, partner: Nation, policy: &EgressPolicy) -> Option<String> {
    if record.origin == partner.as_str() {
        // Its own record, given back to its origin (`Sender::give_back`): marking and policy
        // bind what others receive, not the origin.
        return None;
    }
    if !record.releasable_to.iter().any(|n| n == partner.as_str()) {
        return Some(format!("marking releasable_to [{}] excludes {partner}", record.releasable_to.join(",")));
    }
    let kind = RecordKind::try_from(record.kind).unwrap_or(RecordKind::Unspecified);
    let own = policy.transformed_for.is_some_and(|me| record.origin == me.as_str());
    if own && kind == RecordKind::MeasurementBatch {
        // Derived copies made for this partner go; the originals do not.
        return match record.derived_from {
            0 => Some(format!("released to {partner} only transformed (as a derived record)")),
            _ => None,
        };
    }
    if !policy.kinds.contains(&kind) {
        return Some(format!("policy withholds {} from {partner}", kind.as_str_name()));
    }
    None
}

/// Turns entries read from the log into what `partner` may receive: records in full where
/// marking and policy allow, `Withheld` stubs otherwise (stubs stay stubs). Returns the batch
/// and the release decision to audit. `entries` must be non-empty and end with a checkpoint.
pub fn egress(
    origin: Nation,
    entries: Vec<Entry>,
    partner: Nation,
    policy: &EgressPolicy,
) -> (LinkBatch, ReleaseDecision) {
    let mut decision = ReleaseDecision {
        partner: partner.as_str().to_string(),
        origin: origin.as_str().to_string(),
        first_seq: entries.first().map(Entry::seq).unwrap_or(0),
        last_seq: entries.last().map(Entry::seq).unwrap_or(0),
        withheld_seqs: Vec::new(),
        withheld_reasons: Vec::new(),
        // A batch ends on a checkpoint: its head names exactly the records decided on.
        head_hash: match entries.last() {
            Some(Entry::Checkpoint { bytes, .. }) => wire::SignedCheckpoint::decode(bytes.as_slice())
                .ok()
                .and_then(|s| wire::Checkpoint::decode(s.checkpoint.as_slice()).ok())
                .map(|c| c.head_hash)
                .unwrap_or_default(),
            _ => Vec::new(),
        },
    };
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let entry = match e {
            Entry::Record(r) => {
                let why = match Record::decode(r.bytes.as_slice()) {
                    Ok(rec) => withhold_reason(&rec, partner, policy),
                    Err(e) => Some(format!("undecodable record: {e}")),
                };
                match why {
                    None => link_entry::Entry::Record(r.bytes),
                    Some(why) => match ledger::chain::withhold(&r.bytes) {
                        Ok(stub) => {
                            decision.withheld_seqs.push(r.seq);
                            decision.withheld_reasons.push(why);
                            link_entry::Entry::Withheld(stub)
                        }
                        // A record the log verified always decodes; if not, nothing of it goes.
                        Err(_) => break,
                    },
                }
            }
            Entry::Withheld { seq, bytes } => {
                decision.withheld_seqs.push(seq);
                decision.withheld_reasons.push("withheld from this node by its sender".into());
                link_entry::Entry::Withheld(bytes)
            }
            Entry::Checkpoint { bytes, .. } => link_entry::Entry::Checkpoint(bytes),
        };
        out.push(LinkEntry { entry: Some(entry) });
    }
    (LinkBatch { origin: origin.as_str().to_string(), entries: out }, decision)
}

/// The sending side of one subscription, sans IO: which origins it serves the peer, how far
/// each was sent and acknowledged, and where the next read starts. `serve` drives it over a
/// gRPC stream; the deterministic simulation drives it over in-memory queues.
#[derive(Debug, Clone)]
pub struct Sender {
    me: Nation,
    relay: bool,
    peer: Nation,
    cursors: BTreeMap<Nation, SendCursor>,
}

/// Per subscribed origin: last seq sent and last acknowledged durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendCursor {
    pub sent: u64,
    pub acked: u64,
}

impl Sender {
    pub fn new(me: Nation, relay: bool, peer: Nation) -> Sender {
        Sender { me, relay, peer, cursors: BTreeMap::new() }
    }

    /// Takes a subscription (first, or again to restart origins from new cursors). Origins not
    /// served — not this node's and relay off, the peer's own, or from a cursor at the last
    /// seq there can be, which no log reaches — are returned, to be logged.
    pub fn subscribe(&mut self, cursors: &[wire::OriginCursor]) -> Vec<String> {
        let mut ignored = Vec::new();
        if cursors.len() > MAX_SUBSCRIBED {
            return vec![format!("{} origins at once (at most {MAX_SUBSCRIBED}): none", cursors.len())];
        }
        for c in cursors {
            match Nation::parse(&c.origin) {
                Ok(origin) if origin != self.peer && (origin == self.me || self.relay) && c.seq < u64::MAX => {
                    self.cursors.insert(origin, SendCursor { sent: c.seq, acked: c.seq });
                }
                _ => ignored.push(shown(&c.origin)),
            }
        }
        ignored
    }

    /// Takes a give-back subscription (`Subscription.give_back`): the peer's own origin from
    /// its one cursor, and nothing else. `Err` says why it is not served.
    pub fn give_back(&mut self, cursors: &[wire::OriginCursor]) -> Result<(), String> {
        match cursors {
            [c] if c.origin == self.peer.as_str() && c.seq < u64::MAX => {
                self.cursors.insert(self.peer, SendCursor { sent: c.seq, acked: c.seq });
                Ok(())
            }
            _ => Err(format!(
                "a give-back subscription names one cursor, of the subscriber's own origin ({}), and this one named [{}]",
                self.peer,
                cursors.iter().take(4).map(|c| shown(&c.origin)).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// Stops serving `origin` on this link.
    pub fn unsubscribe(&mut self, origin: Nation) {
        self.cursors.remove(&origin);
    }

    /// Takes an acknowledgement; it never moves backwards, nor past what was sent.
    pub fn ack(&mut self, origin: &str, seq: u64) -> Option<(Nation, u64)> {
        let o = Nation::parse(origin).ok()?;
        let c = self.cursors.get_mut(&o)?;
        c.acked = c.acked.max(seq.min(c.sent));
        Some((o, c.acked))
    }

    /// Origins with room in their window, and the seq each next read starts from. A cursor
    /// at the last seq there can be wants nothing (`subscribe` refuses one): its next read
    /// would start from seq 0, the whole log, and again after every batch.
    pub fn wanted(&self, window: u64) -> Vec<(Nation, u64)> {
        self.cursors
            .iter()
            .filter(|(_, c)| c.sent.saturating_sub(c.acked) < window)
            .filter_map(|(&o, c)| Some((o, c.sent.checked_add(1)?)))
            .collect()
    }

    /// Records that entries of `origin` up to `last` were sent.
    pub fn sent(&mut self, origin: Nation, last: u64) {
        if let Some(c) = self.cursors.get_mut(&origin) {
            c.sent = c.sent.max(last);
        }
    }

    pub fn cursors(&self) -> &BTreeMap<Nation, SendCursor> {
        &self.cursors
    }

    /// Whether anything sent is still unacknowledged.
    pub fn awaiting_ack(&self) -> bool {
        self.cursors.values().any(|c| c.sent > c.acked)
    }
}

/// The origins a receiver subscribes to at `partner`, with the seq it holds of each: the
/// partner's own, and every other trusted origin but its own if it accepts the partner's relay.
/// From the partner's own origin it asks again from just before the first record it is owed
/// (a stub naming it, which a relay could not carry): the origin can.
pub fn wanted_cursors(
    me: Nation,
    partner: Nation,
    accept_relay: bool,
    trusted: &BTreeMap<Nation, VerifyingKey>,
    store: &dyn LogStore,
) -> Vec<wire::OriginCursor> {
    let heads = store.heads();
    trusted
        .keys()
        .filter(|&&o| o != me && (o == partner || accept_relay))
        .map(|&o| cursor_of(store, &heads, o, o == partner))
        .collect()
}

/// `origin`'s cursor in `store` (whose `heads` are given): its head, or with `owed` just
/// before the first record of it this log is owed, where a stream must start again to fill
/// it (only the origin itself can be asked for those). The head's hash is given only where
/// the cursor is the head.
pub fn cursor_of(store: &dyn LogStore, heads: &[Chain], origin: Nation, owed: bool) -> wire::OriginCursor {
    let head = heads.iter().find(|c| c.origin() == origin);
    let held = head.map_or(0, |c| c.seq());
    let first_owed = if owed { store.owed(origin).first().copied() } else { None };
    let seq = first_owed.map_or(held, |s| held.min(s - 1));
    match head {
        Some(c) if c.seq() == seq => head_cursor(c),
        _ => wire::OriginCursor { origin: origin.to_string(), seq, head_hash: Vec::new() },
    }
}

/// A cursor at a chain's head: its seq and its head hash (none for an empty chain).
pub fn head_cursor(c: &Chain) -> wire::OriginCursor {
    let head_hash = if c.seq() > 0 { c.head().to_vec() } else { Vec::new() };
    wire::OriginCursor { origin: c.origin().to_string(), seq: c.seq(), head_hash }
}

/// The head of a chain just past `seq`, from the record or stub at `seq` among `entries` (a
/// read from `seq`): what a holder of that chain through `seq` has as its head. `None` when
/// the entries do not hold `seq`.
pub fn head_at(entries: &[Entry], seq: u64) -> Result<Option<ledger::Hash>, String> {
    let head = match entries.iter().find(|e| e.seq() == seq && !matches!(e, Entry::Checkpoint { .. })) {
        Some(Entry::Record(r)) => ledger::chain::head_after(&r.bytes),
        Some(Entry::Withheld { bytes, .. }) => ledger::chain::head_after_withheld(bytes),
        _ => return Ok(None),
    };
    head.map(Some).map_err(|e| e.to_string())
}

/// Whether a receiver's cursor names another chain of its origin than `ours`, this log's head
/// at the cursor's seq: two chains of one origin, both signed by it (its log went back and it
/// sealed other records under seqs it had used). A cursor without a head hash, or a seq this
/// log does not hold (`None`), says nothing.
pub fn another_chain(cursor: &wire::OriginCursor, ours: Option<ledger::Hash>) -> bool {
    ours.is_some_and(|h| !cursor.head_hash.is_empty() && cursor.head_hash.as_slice() != h.as_slice())
}

/// Most origins a subscription may name: far more nations than any federation has, few
/// enough that a partner cannot flood the sender's log with ones it does not serve.
pub const MAX_SUBSCRIBED: usize = 64;

/// A partner's string as logs and errors show it: at most 16 characters (a nation is three),
/// so that a megabyte "origin" is not copied into every log line and status report.
pub fn shown(s: &str) -> String {
    const MAX: usize = 16;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… ({} bytes)", &s[..cut], s.len()),
        None => s.to_string(),
    }
}

/// Why a receiver refused a batch. Every refusal is logged and counted; `Gap` is the only one
/// that is not the sender's fault (a resubscription fixes it), the others end the link.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("origin {origin:?} is not a nation")]
    BadOrigin { origin: String },
    #[error("{peer} may not send records of {origin} (not its own, and relay from {peer} is not accepted)")]
    NotEntitled { peer: Nation, origin: Nation },
    #[error("records of {0} are this node's own; a partner cannot send them")]
    OwnOrigin(Nation),
    #[error("no signing key is trusted for origin {0}")]
    UnknownOrigin(Nation),
    #[error("batch of {origin} starts at seq {first} but this node holds up to {held}")]
    Gap { origin: Nation, held: u64, first: u64 },
    #[error("record {origin}/{seq} is marked releasable to [{marking}], not to {me}: a marking violation")]
    Marking { origin: Nation, seq: u64, marking: String, me: Nation },
    #[error(
        "record {origin}/{seq} holds STIX object {object} marked {tlp}, which may not leave {origin}: a TLP violation"
    )]
    Tlp { origin: Nation, seq: u64, object: String, tlp: &'static str },
    #[error("record {origin}/{seq} fails verification: {source}")]
    Chain { origin: Nation, seq: u64, source: ChainError },
    #[error("batch of {origin} has {n} entries after its last checkpoint (nothing may be applied unsigned)")]
    Uncovered { origin: Nation, n: usize },
    #[error("batch of {origin} has an empty entry")]
    EmptyEntry { origin: Nation },
    #[error("the log refused the batch: {0}")]
    Store(String),
}

impl Refusal {
    /// The metric label of the refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::BadOrigin { .. } | Refusal::EmptyEntry { .. } => "malformed",
            Refusal::NotEntitled { .. } | Refusal::OwnOrigin(_) => "not_entitled",
            Refusal::UnknownOrigin(_) => "unknown_origin",
            Refusal::Gap { .. } => "gap",
            Refusal::Marking { .. } | Refusal::Tlp { .. } => "marking",
            Refusal::Chain { .. } | Refusal::Uncovered { .. } => "verification",
            Refusal::Store(_) => "store",
        }
    }
}

/// Ingress re-check of threat intelligence: whatever the marking says, an object whose TLP
/// keeps it with its origin (RED, AMBER+STRICT, or no TLP) is refused at any other nation.
fn tlp_check(origin: Nation, seq: u64, body: &[u8]) -> Result<(), Refusal> {
    let Ok(bundle) = <wire::CyberBundle as prost::Message>::decode(body) else { return Ok(()) };
    for text in &bundle.objects {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else { continue };
        let Ok(meta) = cti::check(&v) else { continue };
        if cti::releasable_to(meta.tlp, &[origin], &[origin]).is_empty() {
            let tlp = meta.tlp.map_or("no TLP", cti::Tlp::as_str);
            return Err(Refusal::Tlp { origin, seq, object: meta.id, tlp });
        }
        // A property marked (granular) so that it may not leave its nation must have been
        // removed before the object left it.
        let may_leave = |t: cti::Tlp| !cti::releasable_to(Some(t), &[origin], &[origin]).is_empty();
        if cti::copy_for(&v, &may_leave) != cti::Copy::Whole {
            return Err(Refusal::Tlp {
                origin,
                seq,
                object: meta.id,
                tlp: "a property marked TLP:RED or AMBER+STRICT",
            });
        }
    }
    Ok(())
}

/// What the receiver's rules are.
#[derive(Debug, Clone)]
pub struct Ingress<'a> {
    pub me: Nation,
    /// The peer's nation, from its certificate.
    pub peer: Nation,
    /// Whether this peer may relay other origins' records.
    pub accept_relay: bool,
    pub trusted: &'a BTreeMap<Nation, VerifyingKey>,
    /// Taking this node's own records back from the peer (`trilink recover`): only this
    /// node's own origin is accepted, whatever its marking names.
    pub own_back: bool,
}

/// A record newly applied: for fusion.
#[derive(Debug, Clone)]
pub struct Applied {
    pub seq: u64,
    pub kind: RecordKind,
    pub body: Vec<u8>,
    /// When its origin sealed it (the origin's clock).
    pub origin_time: i64,
}

/// The outcome of a good batch: the origin's new durable head and the records it added
/// (entries at or below the head already held are skipped: a batch is applied exactly once
/// however many paths deliver it).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub origin: Nation,
    pub head: u64,
    pub applied: Vec<Applied>,
    pub stubs: u64,
    /// Records this node was owed (held as stubs naming it) that arrived now: kept as fills.
    pub filled: Vec<Applied>,
}

/// Verifies a batch completely, and only then appends and commits it. A refused batch leaves
/// the store as it was.
pub fn apply(store: &mut dyn LogStore, rules: &Ingress<'_>, batch: LinkBatch) -> Result<Outcome, Refusal> {
    let out = apply_buffered(store, rules, batch)?;
    store.commit().map_err(|e| Refusal::Store(e.to_string()))?;
    Ok(out)
}

/// `apply` without the commit: the batch, verified whole, is appended to the store's buffer,
/// so that several batches can be made durable by one commit. It may be acknowledged only
/// once a commit has made it durable.
pub fn apply_buffered(store: &mut dyn LogStore, rules: &Ingress<'_>, batch: LinkBatch) -> Result<Outcome, Refusal> {
    let origin = Nation::parse(&batch.origin).map_err(|_| Refusal::BadOrigin { origin: shown(&batch.origin) })?;
    if rules.own_back {
        if origin != rules.me {
            return Err(Refusal::NotEntitled { peer: rules.peer, origin });
        }
    } else if origin == rules.me {
        return Err(Refusal::OwnOrigin(origin));
    } else if origin != rules.peer && !rules.accept_relay {
        return Err(Refusal::NotEntitled { peer: rules.peer, origin });
    }
    let key = rules.trusted.get(&origin).ok_or(Refusal::UnknownOrigin(origin))?;
    // Everything written so far, a sync still running included: another link's batch of the
    // same origin may be between its write and its sync.
    let held = store.tail(origin).unwrap_or_else(|| Chain::new(origin));
    let mut chain = held.clone();
    let mut ops: Vec<Op> = Vec::new();
    let mut applied = Vec::new();
    let mut stubs = 0;
    // Entries up to and including the last checkpoint seen; anything after is refused.
    let mut covered_ops = 0usize;
    let mut skipping = true;
    let owed: std::collections::BTreeSet<u64> = store.owed(origin).into_iter().collect();
    let mut fills: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut disowned: Vec<u64> = Vec::new();
    for e in batch.entries {
        let Some(entry) = e.entry else { return Err(Refusal::EmptyEntry { origin }) };
        let (is_record, bytes) = match entry {
            link_entry::Entry::Record(b) => (true, b),
            link_entry::Entry::Withheld(b) => (false, b),
            link_entry::Entry::Checkpoint(bytes) => {
                if skipping {
                    continue;
                }
                let proof = chain.verify_checkpoint(&bytes, Some(key)).map_err(|source| Refusal::Chain {
                    origin,
                    seq: chain.seq(),
                    source,
                })?;
                ops.push(Op::Checkpoint(bytes, Box::new(proof)));
                covered_ops = ops.len();
                continue;
            }
        };
        if skipping {
            // What is already held is skipped; the first new entry must follow the head (an
            // undecodable one goes on to fail verification by name).
            let seq = if is_record {
                Record::decode(bytes.as_slice()).map(|r| r.seq).unwrap_or(0)
            } else {
                wire::Withheld::decode(bytes.as_slice()).map(|w| w.seq).unwrap_or(0)
            };
            if seq != 0 && seq <= held.seq() {
                if owed.contains(&seq) {
                    if is_record {
                        // A record owed to this node, from a path that can carry it.
                        fills.push((seq, bytes));
                    } else if origin == rules.peer {
                        // The origin itself withholds it: no path will bring it.
                        disowned.push(seq);
                    }
                }
                continue;
            }
            if seq != 0 && seq != held.seq() + 1 {
                return Err(Refusal::Gap { origin, held: held.seq(), first: seq });
            }
            skipping = false;
        }
        step(&mut chain, origin, rules, bytes, is_record, &mut ops, &mut applied, &mut stubs)?;
    }
    if ops.len() != covered_ops {
        return Err(Refusal::Uncovered { origin, n: ops.len() - covered_ops });
    }
    let store_err = |e: StoreError| Refusal::Store(e.to_string());
    for seq in disowned {
        store.disown(origin, seq);
    }
    let mut filled = Vec::new();
    for (seq, bytes) in fills {
        // The store checks the record is the one the stub stands for (its digest).
        store.append_fill(origin, &bytes).map_err(|e| Refusal::Chain {
            origin,
            seq,
            source: ChainError::BadCheckpoint { seq, why: e.to_string() },
        })?;
        if let Ok(r) = Record::decode(bytes.as_slice()) {
            let kind = RecordKind::try_from(r.kind).unwrap_or(RecordKind::Unspecified);
            filled.push(Applied { seq, kind, body: r.body, origin_time: r.origin_time_unix_ns });
        }
    }
    if ops.is_empty() {
        return Ok(Outcome { origin, head: held.seq(), applied: Vec::new(), stubs: 0, filled });
    }
    for op in &ops {
        match op {
            Op::Record(bytes) => store.append_record(origin, bytes).map_err(store_err)?,
            Op::Withheld(bytes) => store.append_withheld(origin, bytes).map_err(store_err)?,
            // Verified above: the store checks the proof, not the signature again.
            Op::Checkpoint(bytes, proof) => {
                store.append_proven_checkpoint(origin, bytes, proof, Some(key)).map_err(store_err)?
            }
        }
    }
    // Stubs straight from the origin are its own decision, not a relay's limit: not owed.
    if origin == rules.peer {
        for seq in held.seq() + 1..=chain.seq() {
            store.disown(origin, seq);
        }
    }
    Ok(Outcome { origin, head: chain.seq(), applied, stubs, filled })
}

/// An entry of a batch, verified, waiting for the whole batch to verify before it is stored.
enum Op {
    Record(Vec<u8>),
    Withheld(Vec<u8>),
    Checkpoint(Vec<u8>, Box<ledger::Proven>),
}

#[allow(clippy::too_many_arguments)]
fn step(
    chain: &mut Chain,
    origin: Nation,
    rules: &Ingress<'_>,
    bytes: Vec<u8>,
    is_record: bool,
    ops: &mut Vec<Op>,
    applied: &mut Vec<Applied>,
    stubs: &mut u64,
) -> Result<(), Refusal> {
    let seq = chain.seq() + 1;
    if is_record {
        let record = chain.verify_next(&bytes).map_err(|source| Refusal::Chain { origin, seq, source })?;
        if origin != rules.me && !record.releasable_to.iter().any(|n| n == rules.me.as_str()) {
            return Err(Refusal::Marking { origin, seq, marking: record.releasable_to.join(","), me: rules.me });
        }
        let kind = RecordKind::try_from(record.kind).unwrap_or(RecordKind::Unspecified);
        if kind == RecordKind::CyberBundle {
            tlp_check(origin, seq, &record.body)?;
        }
        applied.push(Applied { seq, kind, body: record.body, origin_time: record.origin_time_unix_ns });
        ops.push(Op::Record(bytes));
    } else {
        chain.verify_withheld(&bytes).map_err(|source| Refusal::Chain { origin, seq, source })?;
        *stubs += 1;
        ops.push(Op::Withheld(bytes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use ledger::chain::NewRecord;
    use ledger::FileStore;
    use vocab::UtcNanos;

    fn n(s: &str) -> Nation {
        Nation::parse(s).unwrap()
    }

    /// USA's log with records of alternating markings (KOR+JPN, KOR only) and kinds.
    fn usa_log(dir: &std::path::Path, key: &SigningKey, groups: usize) -> FileStore {
        usa_log_sealed_again(dir, key, groups, groups)
    }

    /// `usa_log` as a log that went back to its first `kept` groups and sealed others after.
    fn usa_log_sealed_again(dir: &std::path::Path, key: &SigningKey, groups: usize, kept: usize) -> FileStore {
        let (mut store, _) = FileStore::open(dir, &BTreeMap::new()).unwrap();
        let mut chain = Chain::new(n("USA"));
        for g in 0..groups {
            for i in 0..5u64 {
                let marking = if i % 2 == 0 { vec![n("JPN"), n("KOR")] } else { vec![n("KOR")] };
                let kind = if i == 4 { RecordKind::Alert } else { RecordKind::MeasurementBatch };
                let s = chain.seal(NewRecord {
                    time: UtcNanos::from_nanos(1),
                    releasable_to: &marking,
                    kind,
                    body: vec![g as u8, i as u8, u8::from(g >= kept)],
                });
                store.append_record(n("USA"), &s.bytes).unwrap();
            }
            let cp = chain.checkpoint(key, UtcNanos::from_nanos(2));
            store.append_checkpoint(n("USA"), &cp, Some(&key.verifying_key())).unwrap();
            store.commit().unwrap();
        }
        store
    }

    fn rules<'a>(me: &str, peer: &str, relay: bool, trusted: &'a BTreeMap<Nation, VerifyingKey>) -> Ingress<'a> {
        Ingress { me: n(me), peer: n(peer), accept_relay: relay, trusted, own_back: false }
    }

    /// A receiver's cursor names the chain it holds by its head hash: the same at a record or
    /// a stub as the origin's own, another where the origin's log went back and sealed other
    /// records under those seqs.
    #[test]
    fn a_cursors_head_hash_tells_another_chain_of_the_origin() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let trusted = BTreeMap::from([(n("USA"), key.verifying_key())]);
        let (a, b, j) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let usa = usa_log(a.path(), &key, 3);
        let again = usa_log_sealed_again(b.path(), &key, 3, 1);
        let (mut jpn, _) = FileStore::open(j.path(), &trusted).unwrap();
        let (batch, _) =
            egress(n("USA"), usa.read_entries(n("USA"), 1, 10).unwrap(), n("JPN"), &EgressPolicy::default());
        apply(&mut jpn, &rules("JPN", "USA", false, &trusted), batch).unwrap();
        let at = |s: &FileStore, seq| head_at(&s.read_entries(n("USA"), seq, 1).unwrap(), seq).unwrap();
        let cursor = wanted_cursors(n("JPN"), n("USA"), false, &trusted, &jpn).remove(0);
        assert_eq!((cursor.origin.as_str(), cursor.seq), ("USA", 10));
        assert!(!another_chain(&cursor, at(&usa, 10)), "the origin's own chain");
        assert!(another_chain(&cursor, at(&again, 10)), "the chain its log sealed again");
        // Before the groups sealed again, the two logs agree.
        assert_eq!(at(&usa, 5), at(&again, 5));
        // Seq 9 is a KOR-only record: JPN holds its stub, with the same head past it.
        assert!(matches!(jpn.read_entries(n("USA"), 9, 1).unwrap()[0], Entry::Withheld { .. }));
        assert_eq!(at(&jpn, 9), at(&usa, 9));
        assert!(at(&jpn, 9).is_some());
        // No hash, or a seq this log does not hold, says nothing.
        let bare = wire::OriginCursor { head_hash: Vec::new(), ..cursor.clone() };
        assert!(!another_chain(&bare, at(&again, 10)));
        assert!(!another_chain(&cursor, None));
        assert_eq!(head_at(&[], 10), Ok(None));
    }

    #[test]
    fn egress_withholds_by_marking_and_policy_and_the_receiver_verifies_across_stubs() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let trusted = BTreeMap::from([(n("USA"), key.verifying_key())]);
        let src = tempfile::tempdir().unwrap();
        let usa = usa_log(src.path(), &key, 3);
        let policy =
            EgressPolicy { kinds: [RecordKind::MeasurementBatch].into_iter().collect(), transformed_for: None };
        let entries = usa.read_entries(n("USA"), 1, 100).unwrap();
        let (batch, decision) = egress(n("USA"), entries, n("JPN"), &policy);
        // Of each 5: 0 and 2 go (JPN-marked measurements), 1 and 3 are KOR-only, 4 is an alert.
        assert_eq!(decision.withheld_seqs.len(), 9);
        assert!(decision.withheld_reasons[0].contains("excludes JPN"));
        assert!(decision.withheld_reasons.iter().any(|r| r.contains("policy withholds RECORD_KIND_ALERT")));
        // The decision names the records by the head they end on, not by seqs alone.
        let head = usa.heads().into_iter().find(|c| c.origin() == n("USA")).unwrap();
        assert_eq!((decision.last_seq, decision.head_hash.as_slice()), (head.seq(), head.head().as_slice()));
        let dst = tempfile::tempdir().unwrap();
        let (mut jpn, _) = FileStore::open(dst.path(), &trusted).unwrap();
        let out = apply(&mut jpn, &rules("JPN", "USA", false, &trusted), batch.clone()).unwrap();
        assert_eq!((out.head, out.applied.len(), out.stubs), (15, 6, 9));
        // Applying the same batch again (a replay, or a second path) changes nothing.
        let again = apply(&mut jpn, &rules("JPN", "USA", false, &trusted), batch.clone()).unwrap();
        assert_eq!((again.head, again.applied.len()), (15, 0));
        assert_eq!(jpn.read(n("USA"), 1, 100).unwrap().len(), 6);
        // JPN relays to KOR: stubs stay stubs, and KOR's copy verifies end to end.
        let relayed = jpn.read_entries(n("USA"), 1, 100).unwrap();
        let (batch, _) = egress(n("USA"), relayed, n("KOR"), &EgressPolicy::default());
        let kdir = tempfile::tempdir().unwrap();
        let (mut kor, _) = FileStore::open(kdir.path(), &trusted).unwrap();
        let out = apply(&mut kor, &rules("KOR", "JPN", true, &trusted), batch.clone()).unwrap();
        assert_eq!(out.head, 15);
        // Without relay accepted from JPN, KOR refuses USA's records from it.
        let kdir2 = tempfile::tempdir().unwrap();
        let (mut kor2, _) = FileStore::open(kdir2.path(), &trusted).unwrap();
        let err = apply(&mut kor2, &rules("KOR", "JPN", false, &trusted), batch).unwrap_err();
        assert_eq!(err.reason(), "not_entitled");
    }

    /// A node whose log went back takes its own records back from a partner (`trilink
    /// recover`): the partner gives them as it holds them, records in full whatever their
    /// marking names and stubs as stubs, and the node verifies them against its own key. Only
    /// a give-back subscription gets a peer its own origin, and only with `own_back` does a
    /// node take its own origin, and nothing else, from a peer.
    #[test]
    fn a_node_takes_its_own_records_back_from_a_partner_as_the_partner_holds_them() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let trusted = BTreeMap::from([(n("USA"), key.verifying_key())]);
        let (a, j, r) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let usa = usa_log(a.path(), &key, 3);
        let (mut jpn, _) = FileStore::open(j.path(), &trusted).unwrap();
        let (batch, _) =
            egress(n("USA"), usa.read_entries(n("USA"), 1, 100).unwrap(), n("JPN"), &EgressPolicy::default());
        apply(&mut jpn, &rules("JPN", "USA", false, &trusted), batch).unwrap();
        // USA restored from a copy of its first group; JPN holds all three (two KOR-only
        // records of each five as stubs).
        let mut restored = usa_log(r.path(), &key, 1);
        let mut sender = Sender::new(n("JPN"), false, n("USA"));
        let own = |seq| wire::OriginCursor { origin: "USA".into(), seq, head_hash: Vec::new() };
        assert!(sender.subscribe(&[own(5)]).contains(&"USA".to_string()), "not by a plain subscription");
        assert!(sender.give_back(&[own(5), wire::OriginCursor { origin: "KOR".into(), ..own(0) }]).is_err());
        assert!(sender.give_back(&[wire::OriginCursor { origin: "KOR".into(), ..own(0) }]).is_err());
        sender.give_back(&[own(5)]).unwrap();
        assert_eq!(sender.wanted(WINDOW), vec![(n("USA"), 6)]);
        let (batch, decision) =
            egress(n("USA"), jpn.read_entries(n("USA"), 6, 100).unwrap(), n("USA"), &EgressPolicy::default());
        assert_eq!(decision.withheld_seqs, vec![7, 9, 12, 14], "stubs stay stubs; the rest goes whole");
        let refused = apply(&mut restored, &rules("USA", "JPN", false, &trusted), batch.clone()).unwrap_err();
        assert_eq!(refused.reason(), "not_entitled", "a node takes its own origin only when it asks for it back");
        let back = Ingress { own_back: true, ..rules("USA", "JPN", false, &trusted) };
        let out = apply(&mut restored, &back, batch).unwrap();
        assert_eq!((out.head, out.applied.len(), out.stubs), (15, 6, 4));
        assert_eq!(restored.heads(), usa.heads(), "the same chain as before the log went back");
        // Asking for its own records back, it takes no one else's.
        let jdir = tempfile::tempdir().unwrap();
        let (mut other, _) = FileStore::open(jdir.path(), &trusted).unwrap();
        let (usa_batch, _) =
            egress(n("USA"), usa.read_entries(n("USA"), 1, 100).unwrap(), n("JPN"), &EgressPolicy::default());
        let refused = apply(&mut other, &Ingress { own_back: true, ..rules("JPN", "USA", false, &trusted) }, usa_batch);
        assert_eq!(refused.unwrap_err().reason(), "not_entitled");
    }

    /// An origin (or anyone who can sign as it) marking TLP:RED intelligence for a partner:
    /// the receiver re-checks the objects' TLP and refuses the batch.
    #[test]
    fn red_intelligence_marked_for_a_partner_is_refused_at_ingress() {
        let key = SigningKey::from_bytes(&[4; 32]);
        let trusted = BTreeMap::from([(n("USA"), key.verifying_key())]);
        let src = tempfile::tempdir().unwrap();
        let (mut store, _) = FileStore::open(src.path(), &BTreeMap::new()).unwrap();
        let mut chain = Chain::new(n("USA"));
        let object = serde_json::json!({
            "type": "indicator", "spec_version": "2.1", "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
            "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z", "name": "x",
            "pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
            "object_marking_refs": ["marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"],
        });
        let body = wire::CyberBundle { objects: vec![object.to_string()], analyst: "a".into(), redactions: vec![] }
            .encode_to_vec();
        let s = chain.seal(NewRecord {
            time: UtcNanos::from_nanos(1),
            releasable_to: &[n("KOR")],
            kind: RecordKind::CyberBundle,
            body,
        });
        store.append_record(n("USA"), &s.bytes).unwrap();
        let cp = chain.checkpoint(&key, UtcNanos::from_nanos(2));
        store.append_checkpoint(n("USA"), &cp, Some(&key.verifying_key())).unwrap();
        store.commit().unwrap();
        let (batch, _) =
            egress(n("USA"), store.read_entries(n("USA"), 1, 100).unwrap(), n("KOR"), &EgressPolicy::default());
        let dst = tempfile::tempdir().unwrap();
        let (mut kor, _) = FileStore::open(dst.path(), &trusted).unwrap();
        let err = apply(&mut kor, &rules("KOR", "USA", false, &trusted), batch).unwrap_err();
        assert_eq!(err.reason(), "marking");
        assert!(err.to_string().contains("TLP:RED"), "{err}");
        assert!(kor.heads().iter().all(|c| c.seq() == 0));
    }

    #[test]
    fn attacks_are_refused_and_leave_the_replica_untouched() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let trusted = BTreeMap::from([(n("USA"), key.verifying_key())]);
        let src = tempfile::tempdir().unwrap();
        let usa = usa_log(src.path(), &key, 2);
        let entries = usa.read_entries(n("USA"), 1, 100).unwrap();
        let (good, _) = egress(n("USA"), entries.clone(), n("KOR"), &EgressPolicy::default());
        let dst = tempfile::tempdir().unwrap();
        let (mut kor, _) = FileStore::open(dst.path(), &trusted).unwrap();
        let r = rules("KOR", "USA", false, &trusted);
        let held = |s: &FileStore| s.heads().iter().find(|c| c.origin() == n("USA")).map(|c| c.seq()).unwrap_or(0);

        // A relay (or the origin) sending a record whose marking excludes the receiver:
        // egress to JPN of the full entries (policy bypassed) is what a bad relay would do.
        let mut violating = good.clone();
        let jr = rules("JPN", "USA", false, &trusted);
        let jdir = tempfile::tempdir().unwrap();
        let (mut jpn, _) = FileStore::open(jdir.path(), &trusted).unwrap();
        assert_eq!(apply(&mut jpn, &jr, violating.clone()).unwrap_err().reason(), "marking");
        assert!(jpn.heads().is_empty() || held(&jpn) == 0);

        // An altered record.
        if let Some(link_entry::Entry::Record(b)) = violating.entries[1].entry.as_mut() {
            let mut rec = Record::decode(b.as_slice()).unwrap();
            rec.body = b"forged".to_vec();
            *b = rec.encode_to_vec();
        }
        assert_eq!(apply(&mut kor, &r, violating).unwrap_err().reason(), "verification");
        assert_eq!(held(&kor), 0);

        // Another nation's records under USA's name (signed by another key).
        let other = SigningKey::from_bytes(&[9; 32]);
        let fdir = tempfile::tempdir().unwrap();
        let fake = usa_log(fdir.path(), &other, 1);
        let (forged, _) =
            egress(n("USA"), fake.read_entries(n("USA"), 1, 100).unwrap(), n("KOR"), &EgressPolicy::default());
        assert_eq!(apply(&mut kor, &r, forged).unwrap_err().reason(), "verification");

        // A peer sending an origin that is not its own, or the receiver's own.
        assert_eq!(
            apply(&mut kor, &rules("KOR", "JPN", false, &trusted), good.clone()).unwrap_err().reason(),
            "not_entitled"
        );
        assert_eq!(
            apply(&mut kor, &rules("USA", "JPN", true, &trusted), good.clone()).unwrap_err().reason(),
            "not_entitled"
        );

        // Records without their checkpoint.
        let mut uncovered = good.clone();
        uncovered.entries.pop();
        assert_eq!(apply(&mut kor, &r, uncovered).unwrap_err().reason(), "verification");

        // A batch that skips ahead is a gap, not applied.
        let (later, _) =
            egress(n("USA"), usa.read_entries(n("USA"), 6, 100).unwrap(), n("KOR"), &EgressPolicy::default());
        assert!(matches!(apply(&mut kor, &r, later.clone()), Err(Refusal::Gap { held: 0, first: 6, .. })));
        assert_eq!(held(&kor), 0);

        // The good batch still applies after all that; an old one replayed later is a no-op.
        assert_eq!(apply(&mut kor, &r, good.clone()).unwrap().head, 10);
        assert_eq!(apply(&mut kor, &r, later).unwrap().applied.len(), 0);
        assert_eq!(kor.read(n("USA"), 1, 100).unwrap().len(), 10);
    }

    /// Batches gathered by a receiver are appended in turn and made durable by one commit; a
    /// refused one among them leaves those before it to be committed, and itself out.
    #[test]
    fn gathered_batches_are_applied_in_turn_under_one_commit() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let trusted = BTreeMap::from([(n("USA"), key.verifying_key())]);
        let src = tempfile::tempdir().unwrap();
        let usa = usa_log(src.path(), &key, 3);
        let batch =
            |from| egress(n("USA"), usa.read_entries(n("USA"), from, 5).unwrap(), n("KOR"), &EgressPolicy::default()).0;
        let (first, second, third) = (batch(1), batch(6), batch(11));
        let dir = tempfile::tempdir().unwrap();
        let (mut kor, _) = FileStore::open(dir.path(), &trusted).unwrap();
        let r = rules("KOR", "USA", false, &trusted);
        let held = |s: &FileStore| s.heads().iter().find(|c| c.origin() == n("USA")).map(|c| c.seq()).unwrap_or(0);
        assert_eq!(apply_buffered(&mut kor, &r, first).unwrap().head, 5);
        // The second follows the first, which is only buffered yet.
        assert_eq!(apply_buffered(&mut kor, &r, second).unwrap().head, 10);
        assert_eq!(held(&kor), 0, "nothing is durable before the commit");
        let mut tampered = third.clone();
        if let Some(link_entry::Entry::Record(bytes)) = tampered.entries[0].entry.as_mut() {
            bytes[3] ^= 1;
        }
        assert_eq!(apply_buffered(&mut kor, &r, tampered).unwrap_err().reason(), "verification");
        kor.commit().unwrap();
        assert_eq!(held(&kor), 10);
        assert_eq!(apply(&mut kor, &r, third).unwrap().head, 15);
    }

    /// One change a hostile or broken partner could make to a batch on the way.
    #[derive(Debug, Clone)]
    enum Mutation {
        /// A byte of the encoded batch (what arrives on the wire) replaced.
        WireByte(usize, u8),
        /// A byte of one entry's bytes replaced.
        EntryByte(usize, usize, u8),
        /// Bytes cut from the end of one entry.
        Truncate(usize, usize),
        Drop(usize),
        Duplicate(usize),
        Swap(usize, usize),
        /// An entry sent as another kind (record, stub, checkpoint).
        Retype(usize, u8),
        Origin(String),
    }

    fn mutation() -> impl proptest::strategy::Strategy<Value = Mutation> {
        use proptest::prelude::*;
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::WireByte(i, b)),
            (any::<usize>(), any::<usize>(), any::<u8>()).prop_map(|(e, i, b)| Mutation::EntryByte(e, i, b)),
            (any::<usize>(), 1usize..40).prop_map(|(e, n)| Mutation::Truncate(e, n)),
            any::<usize>().prop_map(Mutation::Drop),
            any::<usize>().prop_map(Mutation::Duplicate),
            (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
            (any::<usize>(), 0u8..3).prop_map(|(e, k)| Mutation::Retype(e, k)),
            prop::sample::select(vec!["JPN", "KOR", "usa", "", "USA\0", "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"])
                .prop_map(|o| Mutation::Origin(o.to_string())),
        ]
    }

    /// Applies `m` to `batch`; `None` when the changed wire bytes no longer decode (the link's
    /// decoder refuses them before any of this code sees them).
    fn mutate(mut batch: LinkBatch, m: &Mutation) -> Option<LinkBatch> {
        fn bytes_of(e: &mut wire::LinkEntry) -> Option<&mut Vec<u8>> {
            match e.entry.as_mut()? {
                link_entry::Entry::Record(b) | link_entry::Entry::Withheld(b) | link_entry::Entry::Checkpoint(b) => {
                    Some(b)
                }
            }
        }
        let len = batch.entries.len();
        match m {
            Mutation::WireByte(i, b) => {
                let mut wire = batch.encode_to_vec();
                let k = i % wire.len();
                wire[k] = *b;
                return LinkBatch::decode(wire.as_slice()).ok();
            }
            Mutation::EntryByte(e, i, b) => {
                if let Some(bytes) = bytes_of(&mut batch.entries[e % len]).filter(|v| !v.is_empty()) {
                    let k = i % bytes.len();
                    bytes[k] = *b;
                }
            }
            Mutation::Truncate(e, n) => {
                if let Some(bytes) = bytes_of(&mut batch.entries[e % len]) {
                    bytes.truncate(bytes.len().saturating_sub(*n));
                }
            }
            Mutation::Drop(e) => {
                batch.entries.remove(e % len);
            }
            Mutation::Duplicate(e) => {
                let copy = batch.entries[e % len].clone();
                batch.entries.insert(e % len, copy);
            }
            Mutation::Swap(a, b) => batch.entries.swap(a % len, b % len),
            Mutation::Retype(e, k) => {
                let entry = &mut batch.entries[e % len];
                if let Some(bytes) = bytes_of(entry).map(std::mem::take) {
                    entry.entry = Some(match k {
                        0 => link_entry::Entry::Record(bytes),
                        1 => link_entry::Entry::Withheld(bytes),
                        _ => link_entry::Entry::Checkpoint(bytes),
                    });
                }
            }
            Mutation::Origin(o) => batch.origin = o.clone(),
        }
        (!batch.entries.is_empty()).then_some(batch)
    }

    /// A replica's records and stubs (its checkpoints apart), as read back for sharing.
    fn held_entries(store: &FileStore) -> Vec<ledger::Entry> {
        let entries = store.read_entries(n("USA"), 1, 1000).unwrap_or_default();
        entries.into_iter().filter(|e| !matches!(e, ledger::Entry::Checkpoint { .. })).collect()
    }

    /// A subscription naming more origins than any federation has serves none, and what a
    /// partner names is shown cut short in logs and refusals.
    #[test]
    fn a_flood_of_origins_is_refused_and_shown_short() {
        let mut sender = Sender::new(n("USA"), true, n("KOR"));
        let many: Vec<_> = (0..=MAX_SUBSCRIBED)
            .map(|i| wire::OriginCursor { origin: format!("X{i}"), seq: 0, head_hash: Vec::new() })
            .collect();
        let ignored = sender.subscribe(&many);
        assert_eq!(ignored, vec![format!("{} origins at once (at most 64): none", MAX_SUBSCRIBED + 1)]);
        assert!(sender.cursors().is_empty());
        assert_eq!(shown("JPN"), "JPN");
        let huge = "é".repeat(1_000_000);
        assert_eq!(shown(&huge), format!("{}… (2000000 bytes)", "é".repeat(16)));
        let batch = LinkBatch { origin: huge, entries: Vec::new() };
        let trusted = BTreeMap::new();
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = FileStore::open(dir.path(), &trusted).unwrap();
        let err = apply(&mut store, &rules("KOR", "USA", false, &trusted), batch).unwrap_err();
        assert!(err.to_string().len() < 100, "{err}");
    }

    const WINDOW: u64 = 100;

    /// What a partner can say to a sender, and what the sender does between.
    #[derive(Debug, Clone)]
    enum SenderOp {
        Subscribe(Vec<(String, u64)>),
        Ack(String, u64),
        /// The sender read and sent from where `wanted` said, this many entries on.
        Send(u64),
    }

    fn sender_op() -> impl proptest::strategy::Strategy<Value = SenderOp> {
        use proptest::prelude::*;
        let origin = prop::sample::select(vec!["USA", "JPN", "KOR", "GBR", "usa", "", "JPNX"]).prop_map(String::from);
        let seq = prop_oneof![0u64..50, Just(u64::MAX), Just(u64::MAX - 1), any::<u64>()];
        prop_oneof![
            prop::collection::vec((origin.clone(), seq.clone()), 0..4).prop_map(SenderOp::Subscribe),
            (origin, seq).prop_map(|(o, s)| SenderOp::Ack(o, s)),
            (0u64..2000).prop_map(SenderOp::Send),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Whatever a partner subscribes and acknowledges, in any order and with any seq, the
        /// sender neither panics nor overflows: an acknowledgement never passes what was sent
        /// nor moves back, each origin's next read starts just after what was sent, and a
        /// full window wants nothing.
        #[test]
        fn a_sender_takes_any_subscription_and_acknowledgement(ops in proptest::collection::vec(sender_op(), 1..40)) {
            let mut sender = Sender::new(n("USA"), true, n("KOR"));
            for op in ops {
                let before = sender.cursors().clone();
                match op {
                    SenderOp::Subscribe(cursors) => {
                        let cursors: Vec<_> =
                            cursors.into_iter().map(|(origin, seq)| wire::OriginCursor { origin, seq, head_hash: Vec::new() }).collect();
                        let ignored = sender.subscribe(&cursors);
                        proptest::prop_assert!(!sender.cursors().contains_key(&n("KOR")), "the peer's own origin is never served");
                        for c in &cursors {
                            let taken = sender.cursors().get(&Nation::parse(&c.origin).unwrap_or(n("KOR")));
                            proptest::prop_assert!(
                                ignored.contains(&shown(&c.origin)) || taken.is_some(),
                                "{c:?} neither served nor said to be ignored"
                            );
                            proptest::prop_assert!(c.seq < u64::MAX || ignored.contains(&shown(&c.origin)), "{c:?} served");
                        }
                    }
                    SenderOp::Ack(origin, seq) => {
                        if let Some((o, acked)) = sender.ack(&origin, seq) {
                            let was = before[&o];
                            proptest::prop_assert!(acked >= was.acked && acked <= was.sent);
                        } else {
                            proptest::prop_assert_eq!(sender.cursors(), &before);
                        }
                    }
                    SenderOp::Send(n) => {
                        for (origin, from) in sender.wanted(WINDOW) {
                            sender.sent(origin, from.saturating_add(n));
                        }
                    }
                }
                for (origin, c) in sender.cursors() {
                    proptest::prop_assert!(c.acked <= c.sent, "{origin}: acked {} past sent {}", c.acked, c.sent);
                }
                for (origin, from) in sender.wanted(WINDOW) {
                    let c = sender.cursors()[&origin];
                    proptest::prop_assert!(from == c.sent + 1 && c.sent - c.acked < WINDOW);
                }
            }
        }

        /// A partner's batch changed anywhere, in any of these ways and up to three at once
        /// (or not at all), never panics the receiver and never puts anything in its replica
        /// that is not the origin's own as released to it: it is refused whole, or what it
        /// adds is a prefix of the genuine batch's records and stubs. The genuine batch
        /// applies after it either way. Three receivers: KOR, which gets every record; JPN,
        /// which holds stubs; and JPN sent KOR's batch (a relay, or the origin, ignoring the
        /// marking), which is refused unless changed into a prefix that is JPN's own.
        #[test]
        fn a_changed_batch_is_refused_or_adds_only_the_origins_own_records(
            mutations in proptest::collection::vec(mutation(), 0..4),
            case in 0u8..3,
        ) {
            let key = SigningKey::from_bytes(&[3; 32]);
            let trusted = BTreeMap::from([(n("USA"), key.verifying_key())]);
            let src = tempfile::tempdir().unwrap();
            let usa = usa_log(src.path(), &key, 2);
            let me = if case == 0 { "KOR" } else { "JPN" };
            let jpn_policy =
                EgressPolicy { kinds: [RecordKind::MeasurementBatch].into_iter().collect(), transformed_for: None };
            let batch_for = |to: &str| {
                let policy = if to == "JPN" { jpn_policy.clone() } else { EgressPolicy::default() };
                egress(n("USA"), usa.read_entries(n("USA"), 1, 100).unwrap(), n(to), &policy).0
            };
            let good = batch_for(me);
            let sent = if case == 2 { batch_for("KOR") } else { good.clone() };
            let r = rules(me, "USA", false, &trusted);
            let reference_dir = tempfile::tempdir().unwrap();
            let (mut reference, _) = FileStore::open(reference_dir.path(), &trusted).unwrap();
            apply(&mut reference, &r, good.clone()).unwrap();
            let genuine = held_entries(&reference);

            let mut changed = Some(sent);
            for m in &mutations {
                changed = changed.and_then(|b| mutate(b, m));
            }
            let dir = tempfile::tempdir().unwrap();
            let (mut replica, _) = FileStore::open(dir.path(), &trusted).unwrap();
            if let Some(batch) = changed {
                match apply(&mut replica, &r, batch) {
                    Ok(out) => {
                        let held = held_entries(&replica);
                        proptest::prop_assert!(genuine.starts_with(&held), "{mutations:?} put entries in the replica that are not the origin's");
                        proptest::prop_assert_eq!(out.head, held.len() as u64);
                    }
                    Err(_) => proptest::prop_assert!(held_entries(&replica).is_empty(), "{mutations:?}: refused, but the replica changed"),
                }
            }
            let out = apply(&mut replica, &r, good).unwrap();
            proptest::prop_assert_eq!(out.head, 10);
            proptest::prop_assert_eq!(held_entries(&replica), genuine);
        }
    }
}
