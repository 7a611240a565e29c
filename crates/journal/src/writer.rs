//! The log writer: one OS thread that owns appending to the node's own chain.
//!
//! Group commit: it takes the first waiting append, then every other waiting one up to
//! `max_group_records`, seals them as consecutive records, signs one checkpoint over the new
//! head, and syncs once (after letting go of the store: `LogStore::commit_start`). Only then
//! does it acknowledge each request and hand the records to fusion, in log order. A failed
//! write or sync fails every request of the group and every later one: the node stops
//! acknowledging rather than acknowledge what it may not hold. A store that can be opened
//! again (JetStream: the cluster holds the log) is watched, and once it failed — here or in
//! a partner's link — reopened in the background until the cluster answers; the writer then
//! goes on from the log's head as the cluster has it. A disk's failed sync, or another writer
//! having taken the log, needs a restart.

use ed25519_dalek::SigningKey;
use ledger::chain::NewRecord;
use ledger::Chain;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};
use telemetry::Metrics;
use tokio::sync::{mpsc, oneshot};
use vocab::Nation;
use wire::RecordKind;

/// One record to append.
#[derive(Debug)]
pub struct Append {
    pub kind: RecordKind,
    pub body: Vec<u8>,
    /// When the data arrived at the node (for latency measurement).
    pub arrived: Instant,
    /// Where to say the record is durable (its seq) or why it is not.
    pub reply: Option<oneshot::Sender<Result<u64, String>>>,
    /// Transformed copies to log right after it, each marked for one partner alone
    /// (`derived_from` = its seq): what that partner gets instead.
    pub derived: Vec<(Nation, Vec<u8>)>,
    /// Its own marking, when not the node's (cyber records carry their TLP's reach).
    pub marking: Option<Vec<Nation>>,
}

/// Why a record of `body_len` bytes cannot be logged, if it cannot.
pub fn too_large(body_len: usize) -> Option<String> {
    (body_len > ledger::MAX_RECORD_BODY_BYTES).then(|| {
        format!(
            "a record of {body_len} bytes exceeds the log's limit of {} bytes: send less at once",
            ledger::MAX_RECORD_BODY_BYTES
        )
    })
}

/// The append, if its record and its derived copies fit the log; otherwise it is answered
/// with why not.
fn fits(a: Append) -> Option<Append> {
    let largest = a.derived.iter().map(|(_, b)| b.len()).chain([a.body.len()]).max().unwrap_or(0);
    match too_large(largest) {
        None => Some(a),
        Some(why) => {
            tracing::warn!(kind = ?a.kind, bytes = largest, "record refused: too large for the log");
            if let Some(r) = a.reply {
                let _ = r.send(Err(why));
            }
            None
        }
    }
}

/// A durable record, handed to fusion in log order.
#[derive(Debug)]
pub struct Committed {
    pub origin: vocab::Nation,
    pub seq: u64,
    pub kind: RecordKind,
    pub body: Vec<u8>,
    pub arrived: Option<Instant>,
    /// A partner's record that filled a stub fusion has already passed (owed, arrived later).
    pub fill: bool,
    /// A partner's record straight off a link: its origin time, for the latency measurement.
    pub origin_time: Option<vocab::UtcNanos>,
}

/// Opens the node's log store afresh (a JetStream store: the cluster is the log's truth). Only
/// for a store whose `commit_start` commits in full, so that no sync is ever pending across
/// the swap.
pub type Reopen = Arc<dyn Fn() -> Result<Box<dyn ledger::LogStore>, ledger::StoreError> + Send + Sync>;

/// How often the store is asked whether it failed.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// First and longest wait between attempts to reopen a failed store.
const REOPEN_FIRST_WAIT: Duration = Duration::from_secs(1);
const REOPEN_MAX_WAIT: Duration = Duration::from_secs(10);

pub struct Writer {
    pub store: crate::store::Store,
    pub chain: Chain,
    pub key: SigningKey,
    pub releasable_to: Vec<Nation>,
    pub max_group_records: usize,
    pub metrics: Arc<Metrics>,
    /// The last durable seq, for readers that must not wait on the store's lock.
    pub head: Arc<std::sync::atomic::AtomicU64>,
    /// Bumped after every group is written and again once it is durable: federation senders
    /// wake on it.
    pub version: Arc<tokio::sync::watch::Sender<u64>>,
    /// How to reopen the store after it failed, where it can be (`None`: only a restart).
    pub reopen: Option<Reopen>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("chain", &self.chain).finish_non_exhaustive()
    }
}

/// A group commit (write and sync) this long is logged: the disk held up every sender.
const SLOW_COMMIT_S: f64 = 0.05;

impl Writer {
    /// Runs until every sender is gone, then returns after the last group is durable.
    pub fn run(mut self, mut rx: mpsc::Receiver<Append>, to_fusion: SyncSender<Committed>) {
        let mut failed: Option<String> = None;
        // Set by the store's watcher once a reopened store is in place.
        let reopened = Arc::new(AtomicBool::new(false));
        if let Some(reopen) = self.reopen.clone() {
            watch_store(reopen, self.store.clone(), reopened.clone());
        }
        let mut group: Vec<Append> = Vec::with_capacity(self.max_group_records);
        while let Some(first) = rx.blocking_recv() {
            // A record too large for a frame is refused here, never sealed: the writer goes on.
            let Some(first) = fits(first) else { continue };
            if reopened.swap(false, Ordering::AcqRel) {
                match self.resume() {
                    Ok(()) => failed = None,
                    Err(e) => {
                        tracing::error!(error = %e, "the reopened log could not be read; refusing input until restart")
                    }
                }
            }
            let mut bytes = first.body.len();
            group.push(first);
            // Bounded in records and in bytes: a group is what one checkpoint covers, and a
            // federation batch must be able to end on it.
            while group.len() < self.max_group_records && bytes < ledger::MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(a) => {
                        if let Some(a) = fits(a) {
                            bytes += a.body.len();
                            group.push(a);
                        }
                    }
                    Err(_) => break,
                }
            }
            if let Some(why) = &failed {
                for a in group.drain(..) {
                    if let Some(r) = a.reply {
                        let _ = r.send(Err(why.clone()));
                    }
                }
                continue;
            }
            let started = Instant::now();
            match self.commit(&group) {
                Ok(seqs) => {
                    let took = started.elapsed().as_secs_f64();
                    self.metrics.commit_latency.observe(took);
                    if took > SLOW_COMMIT_S {
                        // Every acknowledgement of the group and fusion of its records waited.
                        tracing::warn!(ms = took * 1e3, records = group.len(), bytes, "slow group commit");
                    }
                    self.metrics.group_commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let appended = group.iter().map(|a| 1 + a.derived.len() as u64).sum::<u64>();
                    self.metrics.records_appended.fetch_add(appended, std::sync::atomic::Ordering::Relaxed);
                    self.head.store(self.chain.seq(), std::sync::atomic::Ordering::Release);
                    self.version.send_modify(|v| *v += 1);
                    for (a, seq) in group.drain(..).zip(seqs) {
                        if let Some(r) = a.reply {
                            self.metrics.ack_latency.observe(a.arrived.elapsed().as_secs_f64());
                            let _ = r.send(Ok(seq));
                        }
                        // Handed over without waiting: when fusion is behind and the queue is
                        // full, it reads the record from the log instead, so ingest never
                        // waits for fusion. (Fusion gone means the node is stopping.)
                        let _ = to_fusion.try_send(Committed {
                            origin: self.chain.origin(),
                            seq,
                            kind: a.kind,
                            body: a.body,
                            arrived: Some(a.arrived),
                            fill: false,
                            origin_time: None,
                        });
                    }
                }
                Err(e) => {
                    if self.reopen.is_some() && !matches!(e, ledger::StoreError::Superseded(_)) {
                        tracing::error!(error = %e, "log append failed; refusing input until the log store answers again");
                    } else {
                        tracing::error!(error = %e, "log append failed; refusing all further input until restart");
                    }
                    let why = format!("the log could not be written: {e}");
                    for a in group.drain(..) {
                        if let Some(r) = a.reply {
                            let _ = r.send(Err(why.clone()));
                        }
                    }
                    failed = Some(why);
                }
            }
        }
        tracing::info!(seq = self.chain.seq(), "log writer stopped");
    }

    /// Goes on from the reopened store: the chain is the log's own as the store now has it
    /// (with any group whose acknowledgement was lost in the failure, which the store found
    /// landed; its senders were told it failed and send it again).
    fn resume(&mut self) -> Result<(), ledger::StoreError> {
        let store = self.store.lock().map_err(|_| ledger::StoreError::Failed("store lock poisoned".into()))?;
        let origin = self.chain.origin();
        self.chain = store.heads().into_iter().find(|c| c.origin() == origin).unwrap_or_else(|| Chain::new(origin));
        drop(store);
        self.head.store(self.chain.seq(), Ordering::Release);
        self.version.send_modify(|v| *v += 1);
        tracing::info!(seq = self.chain.seq(), "log reopened; acknowledging again");
        Ok(())
    }

    /// Seals, appends, checkpoints and syncs a group (each append's derived copies right after
    /// it); returns each append's seq.
    fn commit(&mut self, group: &[Append]) -> Result<Vec<u64>, ledger::StoreError> {
        let origin = self.chain.origin();
        let mut seqs = Vec::with_capacity(group.len());
        let mut store = self.store.lock().map_err(|_| ledger::StoreError::Failed("store lock poisoned".into()))?;
        let time = crate::store::wall_clock();
        for a in group {
            let sealed = self.chain.seal(NewRecord {
                time,
                releasable_to: a.marking.as_deref().unwrap_or(&self.releasable_to),
                kind: a.kind,
                body: a.body.clone(),
            });
            store.append_record(origin, &sealed.bytes)?;
            seqs.push(sealed.seq);
            for (partner, body) in &a.derived {
                let copy = self.chain.seal_derived(
                    NewRecord { time, releasable_to: std::slice::from_ref(partner), kind: a.kind, body: body.clone() },
                    sealed.seq,
                );
                store.append_record(origin, &copy.bytes)?;
            }
        }
        // Just signed: the store takes the proof rather than verifying the signature again.
        let (cp, proof) = self.chain.checkpoint_proven(&self.key, time);
        store.append_proven_checkpoint(origin, &cp, &proof, Some(&self.key.verifying_key()))?;
        // Written under the store's lock, synced without it: readers (federation senders, the
        // API, fusion catching up) and partners' links never wait out this sync.
        let pending = store.commit_start()?;
        drop(store);
        // Federation senders may start on what is written (`LogStore::reader_ahead`): they
        // record their release decisions while this sync runs and send once it is published.
        self.version.send_modify(|v| *v += 1);
        crate::store::finish_commit(&self.store, pending)?;
        Ok(seqs)
    }
}

/// Watches the store and, once it failed (other than by another writer taking the log),
/// reopens it, waiting longer after each failed attempt, and puts it in place of the failed
/// one: partners' links and readers use it at once, the writer at its next input
/// (`reopened`). Ends when the writer is gone.
fn watch_store(reopen: Reopen, store: crate::store::Store, reopened: Arc<AtomicBool>) {
    let run = move || {
        let mut wait = REOPEN_FIRST_WAIT;
        let mut next_try: Option<Instant> = None;
        loop {
            std::thread::sleep(WATCH_INTERVAL);
            if Arc::strong_count(&reopened) == 1 {
                return;
            }
            let Ok(failure) = store.lock().map(|s| s.failure()) else { return };
            match failure {
                None | Some(ledger::StoreError::Superseded(_)) => {
                    (wait, next_try) = (REOPEN_FIRST_WAIT, None);
                    continue;
                }
                Some(_) => {}
            }
            let now = Instant::now();
            if *next_try.get_or_insert(now + REOPEN_FIRST_WAIT) > now {
                continue;
            }
            match reopen() {
                Ok(new) => {
                    let Ok(mut s) = store.lock() else { return };
                    *s = new;
                    drop(s);
                    reopened.store(true, Ordering::Release);
                    tracing::info!("the log store answers again: log reopened");
                }
                Err(e) => {
                    wait = (wait * 2).min(REOPEN_MAX_WAIT);
                    next_try = Some(Instant::now() + wait);
                    tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "the log store is still unavailable");
                }
            }
        }
    };
    if let Err(e) = std::thread::Builder::new().name("log-watch".into()).spawn(run) {
        tracing::error!(error = %e, "could not start watching the log store: a failed store needs a restart");
    }
}
