//! `trilink recover`: a node whose log lost records it had made durable (restored from an old
//! copy, or a disk that lost acknowledged writes) takes them back from its partners before it
//! starts again. Its partners hold its records as it sent them, signed by it; each is asked in
//! turn, over the federation link's mutual TLS, for this node's own origin from its log's head
//! (`Subscription.give_back`), and what it sends is verified exactly as a link verifies a
//! batch (chain, checkpoint signatures with this node's own key) before it is appended and
//! synced. A partner that holds a record only as a stub (its marking or the release policy
//! kept it from that partner) gives back the records before it, and the next partner is
//! asked from there; stubs are taken only when asked (`accept_stubs`), since a stub taken is
//! the record's content given up: the log then continues the chain its partners hold, with
//! that record's place kept and its content lost. A stub of its own the log holds (taken that
//! way before) is owed: each partner is asked from just before the first, and one that holds
//! the record in full fills it.
//!
//! The node must be stopped (the log's lock file says if it is not). A log that went back and
//! has since sealed other records under seqs a partner holds cannot take that partner's branch
//! back: the partner says so and gives nothing.

use crate::config::Settings;
use crate::ctx::SILENCE_LIMIT;
use crate::link::dial;
use crate::protocol::{apply_buffered, cursor_of, Ingress};
use anyhow::Context;
use ledger::{FileStore, LogStore};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use vocab::Nation;
use wire::{link_down, link_up, LinkAck, LinkUp, OriginCursor, Subscription};

/// What one partner gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromPartner {
    pub partner: Nation,
    /// This log's head of its own origin before and after.
    pub from: u64,
    pub to: u64,
    /// Of what came back: records in full, and stubs.
    pub records: u64,
    pub stubs: u64,
    /// Stubs of this log's filled with their records.
    pub filled: u64,
    /// The partner's head of this node's origin, as its last heartbeat said (0: none heard).
    pub partner_head: u64,
    /// Why nothing (more) came from it, if it failed: unreachable, refused, a bad batch.
    pub failed: Option<String>,
    /// The first record it holds only as a stub, where it stopped (without `accept_stubs`).
    pub stub_at: Option<u64>,
}

impl std::fmt::Display for FromPartner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(why) = &self.failed {
            return write!(f, "{}: {why}", self.partner);
        }
        write!(
            f,
            "{}: took back {} records and {} stubs (this log: seq {} -> {})",
            self.partner, self.records, self.stubs, self.from, self.to
        )?;
        if self.filled > 0 {
            write!(f, ", and filled {} stubs here with their records", self.filled)?;
        }
        if self.partner_head > 0 {
            write!(f, "; it holds this node's records to seq {}", self.partner_head)?;
        }
        match self.stub_at {
            Some(seq) => write!(f, "; it holds seq {seq} only as a stub, so nothing past it was taken from it"),
            None => Ok(()),
        }
    }
}

impl FromPartner {
    /// How far this partner is known to hold this node's records.
    pub fn holds(&self) -> u64 {
        self.partner_head.max(self.stub_at.unwrap_or(0))
    }
}

/// What `recover` did: per partner asked, and the seqs of this node's own records its log
/// still holds only as stubs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    pub partners: Vec<FromPartner>,
    pub stubs_left: Vec<u64>,
}

/// What `recover` needs to know of the node: who it is, where its log is, the keys its
/// checkpoints verify against (its own and its partners') and its `[federation]` section.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub nation: Nation,
    pub data_dir: &'a std::path::Path,
    pub trusted: &'a BTreeMap<Nation, ed25519_dalek::VerifyingKey>,
    pub settings: &'a Settings,
    /// Take records a partner holds only as stubs (their content is then lost).
    pub accept_stubs: bool,
}

/// Takes this node's own records back from every partner with an `address`, in the order of
/// the config; stubs too if `accept_stubs`. Errors only when the log cannot be opened or
/// written; a partner that fails is reported and the next one asked.
pub async fn recover(request: Request<'_>) -> anyhow::Result<Recovered> {
    let Request { nation, data_dir, trusted, settings: fed, accept_stubs } = request;
    let cas: Vec<_> = fed.partners.iter().map(|p| (p.nation, p.ca.as_path())).collect();
    let tls = Arc::new(
        crate::tls::Tls::load(nation, &fed.tls_cert, &fed.tls_key, &cas)
            .context("failed to load the federation TLS identity")?,
    );
    let (store, _) = FileStore::open_for(data_dir, trusted, Some(nation)).map_err(|e| match e {
        ledger::StoreError::Locked(_) => anyhow::anyhow!("{e} (is the node still running? stop it first)"),
        e => anyhow::anyhow!("failed to open the log in {}: {e}", data_dir.display()),
    })?;
    let mut store: Box<dyn LogStore> = Box::new(store);
    let mut report = Vec::new();
    for p in &fed.partners {
        let Some(addr) = p.address else { continue };
        let from = own_head(&*store, nation);
        let mut got = FromPartner {
            partner: p.nation,
            from,
            to: from,
            records: 0,
            stubs: 0,
            filled: 0,
            partner_head: 0,
            failed: None,
            stub_at: None,
        };
        let link = (tls.clone(), addr, accept_stubs);
        if let Err(why) = from_partner(nation, trusted, &mut store, link, &mut got).await {
            got.failed = Some(why);
        }
        got.to = own_head(&*store, nation);
        report.push(got);
    }
    if report.is_empty() {
        anyhow::bail!("no partner has an address to dial: there is no partner to take records back from");
    }
    Ok(Recovered { partners: report, stubs_left: store.owed(nation) })
}

/// This log's head of `me`.
fn own_head(store: &dyn LogStore, me: Nation) -> u64 {
    store.heads().iter().find(|c| c.origin() == me).map_or(0, |c| c.seq())
}

async fn from_partner(
    me: Nation,
    trusted: &BTreeMap<Nation, ed25519_dalek::VerifyingKey>,
    store: &mut Box<dyn LogStore>,
    (tls, addr, accept_stubs): (Arc<crate::tls::Tls>, std::net::SocketAddr, bool),
    got: &mut FromPartner,
) -> Result<(), String> {
    let partner = got.partner;
    let mut client = dial(tls, partner, addr).await?;
    // From the head, or from just before the first stub of its own this log is owed.
    let cursor = cursor_of(&**store, &store.heads(), me, true);
    // How far the partner has sent: done when that, or the cursor, reaches its head.
    let mut sent_through = cursor.seq;
    let (up, up_rx) = mpsc::channel::<LinkUp>(64);
    let cursors = vec![cursor];
    up.send(LinkUp { msg: Some(link_up::Msg::Subscribe(Subscription { cursors, give_back: true })) })
        .await
        .map_err(|_| "subscription not sent")?;
    let mut down = client
        .subscribe(ReceiverStream::new(up_rx))
        .await
        .map_err(|e| format!("subscription refused: {}", e.message()))?
        .into_inner();
    let rules = Ingress { me, peer: partner, accept_relay: false, trusted, own_back: true };
    // A partner must keep sending more: one that only heartbeats (or, past a stub, only
    // sends) cannot hold the command for longer than this without progress.
    let mut deadline = tokio::time::Instant::now() + SILENCE_LIMIT;
    loop {
        let msg = match tokio::time::timeout_at(deadline, down.message()).await {
            Err(_) if got.stub_at.is_some() => return Ok(()),
            Err(_) => {
                return Err(format!(
                    "{partner} sent nothing past seq {sent_through} for {} s (it said it holds more)",
                    SILENCE_LIMIT.as_secs()
                ))
            }
            Ok(msg) => msg.map_err(|e| format!("{} gave nothing back: {}", partner, e.message()))?,
        };
        let Some(msg) = msg else { return Err("the partner closed the stream".into()) };
        match msg.msg {
            // Past a stub not taken, batches are left unread until the heartbeat says how far
            // the partner holds this node's records.
            Some(link_down::Msg::Batch(_)) if got.stub_at.is_some() => {}
            Some(link_down::Msg::Batch(mut batch)) => {
                let last = last_seq(&batch).unwrap_or(0);
                if last > sent_through {
                    sent_through = last;
                    deadline = tokio::time::Instant::now() + SILENCE_LIMIT;
                }
                let stub_at = if accept_stubs { None } else { before_first_stub(&mut batch, own_head(&**store, me)) };
                if !batch.entries.is_empty() {
                    let out = apply_buffered(&mut **store, &rules, batch).map_err(|r| format!("batch refused: {r}"))?;
                    store.commit().map_err(|e| format!("failed to make the records durable here: {e}"))?;
                    got.records += out.applied.len() as u64;
                    got.stubs += out.stubs;
                    got.filled += out.filled.len() as u64;
                    let ack = LinkAck { origin: me.to_string(), seq: out.head };
                    up.send(LinkUp { msg: Some(link_up::Msg::Ack(ack)) }).await.map_err(|_| "stream closed")?;
                }
                got.stub_at = stub_at;
            }
            Some(link_down::Msg::Heartbeat(hb)) => {
                // The partner's head of this node's origin: done once it has sent through it
                // (or the cursor was there already).
                let Some(theirs) = hb.heads.iter().find(|c| c.origin == me.as_str()) else {
                    return Err(format!("{partner} serves none of this node's records"));
                };
                let ours = own_head(&**store, me);
                if theirs.seq > 0 && theirs.seq < ours && on_another_chain(&**store, me, theirs)? {
                    return Err(format!(
                        "{partner} holds this node's records to seq {}, on another chain than this log's there: this log \
                         went back and has since sealed other records under seqs {partner} holds; nothing is taken from it",
                        theirs.seq
                    ));
                }
                let theirs = theirs.seq;
                got.partner_head = theirs;
                if got.stub_at.is_some() || sent_through >= theirs {
                    return Ok(());
                }
            }
            None => {}
        }
    }
}

/// The last seq a batch carries (its records', stubs' or checkpoints').
fn last_seq(batch: &wire::LinkBatch) -> Option<u64> {
    use prost::Message;
    batch.entries.iter().rev().find_map(|e| match &e.entry {
        Some(wire::link_entry::Entry::Record(b)) => wire::Record::decode(b.as_slice()).ok().map(|r| r.seq),
        Some(wire::link_entry::Entry::Withheld(b)) => wire::Withheld::decode(b.as_slice()).ok().map(|w| w.seq),
        Some(wire::link_entry::Entry::Checkpoint(b)) => wire::SignedCheckpoint::decode(b.as_slice())
            .ok()
            .and_then(|s| wire::Checkpoint::decode(s.checkpoint.as_slice()).ok())
            .map(|c| c.seq),
        None => None,
    })
}

/// Whether a partner's head of this node's origin (a heartbeat's) names another chain than
/// this log's at that seq.
fn on_another_chain(store: &dyn LogStore, me: Nation, theirs: &OriginCursor) -> Result<bool, String> {
    let entries = store.read_entries(me, theirs.seq, 1).map_err(|e| format!("failed to read this log: {e}"))?;
    let ours = crate::protocol::head_at(&entries, theirs.seq)?;
    Ok(crate::protocol::another_chain(theirs, ours))
}

/// Cuts `batch` before its first stub past `head`, back to the last checkpoint before that
/// stub (a batch must end on one); returns the stub's seq, or `None` if it has none.
fn before_first_stub(batch: &mut wire::LinkBatch, head: u64) -> Option<u64> {
    use prost::Message;
    let first = batch.entries.iter().position(|e| match &e.entry {
        Some(wire::link_entry::Entry::Withheld(b)) => {
            wire::Withheld::decode(b.as_slice()).map_or(true, |w| w.seq > head)
        }
        _ => false,
    })?;
    let seq = match &batch.entries[first].entry {
        Some(wire::link_entry::Entry::Withheld(b)) => wire::Withheld::decode(b.as_slice()).map_or(0, |w| w.seq),
        _ => 0,
    };
    let keep = batch.entries[..first]
        .iter()
        .rposition(|e| matches!(e.entry, Some(wire::link_entry::Entry::Checkpoint(_))))
        .map_or(0, |i| i + 1);
    batch.entries.truncate(keep);
    Some(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use wire::link_entry::Entry;

    fn batch(entries: &[(char, u64)]) -> wire::LinkBatch {
        let entry = |&(kind, seq): &(char, u64)| {
            let e = match kind {
                'r' => Entry::Record(vec![seq as u8]),
                's' => Entry::Withheld(wire::Withheld { seq, ..Default::default() }.encode_to_vec()),
                _ => Entry::Checkpoint(vec![0xC0]),
            };
            wire::LinkEntry { entry: Some(e) }
        };
        wire::LinkBatch { origin: "JPN".into(), entries: entries.iter().map(entry).collect() }
    }

    /// A batch is cut back to the checkpoint before its first stub past the log's head: what
    /// is kept still ends on a checkpoint, and stubs already held do not count.
    #[test]
    fn a_batch_is_cut_at_the_checkpoint_before_its_first_stub() {
        let mut b = batch(&[('r', 4), ('c', 4), ('r', 5), ('s', 6), ('r', 7), ('c', 7)]);
        assert_eq!(before_first_stub(&mut b, 3), Some(6));
        assert_eq!(b, batch(&[('r', 4), ('c', 4)]));
        let mut b = batch(&[('s', 4), ('r', 5), ('c', 5)]);
        assert_eq!(before_first_stub(&mut b, 3), Some(4));
        assert!(b.entries.is_empty(), "nothing before the stub");
        let mut b = batch(&[('s', 2), ('r', 4), ('c', 4)]);
        assert_eq!(before_first_stub(&mut b, 3), None, "a stub already held is skipped by apply");
        assert_eq!(b, batch(&[('s', 2), ('r', 4), ('c', 4)]));
        let mut b = batch(&[('r', 4), ('c', 4)]);
        assert_eq!(before_first_stub(&mut b, 3), None);
    }
}
