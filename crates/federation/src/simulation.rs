//! Deterministic simulation of the federation protocol: three nodes with real logs (FileStore
//! on tmpfs where there is one), the real sans-IO protocol (`Sender`, `egress`, `apply`,
//! `wanted_cursors`), and links as in-memory FIFO queues — driven by a seeded scheduler through
//! appends, partial batches, partitions (in-flight messages lost), crashes and restarts
//! (the log reopened from disk), duplicate deliveries from other paths, in full-mesh and
//! hub-and-spoke topologies, and a log that goes back to an old copy of itself and takes its
//! records back from its partners before it seals again (`trilink recover`: a give-back
//! subscription, stubs accepted). After every seed's chaos, the links heal and the federation
//! must converge. Checked throughout: every replica is a prefix of its origin's log, byte-identical
//! where its marking admits the holder and a stub exactly where it does not; no honest batch
//! is ever refused; each (origin, seq) is applied at most once at each node.
//!
//! `TRILINK_SIM_SEEDS=N` runs N seeds (default 1000); `TRILINK_SIM_SEED=S` replays one;
//! `SIM_TRACE=1` prints stubs, fills and asks as they happen.

use crate::protocol::{apply, cursor_of, egress, wanted_cursors, EgressPolicy, Ingress, Refusal, Sender};
use ed25519_dalek::{SigningKey, VerifyingKey};
use ledger::chain::NewRecord;
use ledger::{Chain, Entry, FileStore, LogStore};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use vocab::{Nation, UtcNanos};
use wire::{link_up, LinkBatch, LinkUp, RecordKind, Subscription};

/// splitmix64: a whole run follows from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const WINDOW: u64 = 12;

/// A record as its origin sealed it, and its marking.
type Sealed = (Vec<u8>, Vec<Nation>);

struct SimNode {
    nation: Nation,
    dir: PathBuf,
    key: SigningKey,
    store: Option<FileStore>,
    /// Highest seq of each origin applied from a link (exactly-once check).
    applied: BTreeMap<Nation, u64>,
    /// An old copy of its log (taken at some earlier moment), for it to go back to.
    snapshot: Option<PathBuf>,
}

/// A receiver's subscription to a sender: the queues of one connection.
struct Conn {
    receiver: usize,
    sender: usize,
    up: VecDeque<LinkUp>,
    down: VecDeque<LinkBatch>,
    state: Sender,
    /// The newest owed record of the sender's origin the receiver has asked for again.
    asked_owed: u64,
}

struct World {
    nodes: Vec<SimNode>,
    trusted: BTreeMap<Nation, VerifyingKey>,
    /// (receiver, sender) pairs that may link, and whether the receiver accepts relay.
    links: Vec<(usize, usize, bool)>,
    relay: Vec<bool>,
    conns: Vec<Conn>,
    /// Each origin's records as sealed, with their markings: the truth.
    truth: BTreeMap<Nation, Vec<Sealed>>,
    /// Batches delivered, for duplicate delivery (another path, a replay).
    delivered: Vec<(usize, usize, LinkBatch)>,
    /// Records whose content is gone from the federation: a log went back and no partner held
    /// them in full (their stubs stay, at the origin too).
    lost: BTreeSet<(Nation, u64)>,
    time: i64,
    stats: Stats,
    hub: bool,
}

/// What a run exercised, summed over seeds: a schedule that stops reaching a case fails.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    applied: u64,
    stubs: u64,
    fills: u64,
    /// Batches that started past what the receiver held (honest parties never cause one).
    gaps: u64,
    duplicates: u64,
    crashes: u64,
    partitions: u64,
    /// Logs that went back, and records they took back from partners (in full or as fills).
    went_back: u64,
    taken_back: u64,
    /// Records left only as stubs at their own origin after it took its records back.
    lost: u64,
}

fn nations() -> Vec<Nation> {
    ["USA", "JPN", "KOR"].iter().map(|n| Nation::parse(n).expect("nation")).collect()
}

fn scratch() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

impl World {
    /// `topology`: 0 hub and spoke through USA, 1 full mesh, 2 full mesh with every node
    /// relaying (so the same origin arrives on two paths, and a relay may hold only a stub of
    /// what the receiver is owed).
    fn new(dir: &std::path::Path, topology: u64) -> World {
        let mesh = topology != 0;
        let ns = nations();
        let nodes: Vec<SimNode> = ns
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let d = dir.join(n.as_str());
                let store = FileStore::open_for(&d, &BTreeMap::new(), Some(n)).expect("open").0;
                SimNode {
                    nation: n,
                    dir: d,
                    key: SigningKey::from_bytes(&[i as u8 + 1; 32]),
                    store: Some(store),
                    applied: BTreeMap::new(),
                    snapshot: None,
                }
            })
            .collect();
        let trusted = nodes.iter().map(|n| (n.nation, n.key.verifying_key())).collect();
        let links = if mesh {
            let mut v = Vec::new();
            for r in 0..3 {
                for s in 0..3 {
                    if r != s {
                        v.push((r, s, topology == 2));
                    }
                }
            }
            v
        } else {
            // USA (0) is the hub: it relays; the spokes accept its relay.
            vec![(1, 0, true), (2, 0, true), (0, 1, false), (0, 2, false)]
        };
        let relay = match topology {
            0 => vec![true, false, false],
            1 => vec![false; 3],
            _ => vec![true; 3],
        };
        World {
            nodes,
            trusted,
            links,
            relay,
            conns: Vec::new(),
            truth: BTreeMap::new(),
            delivered: Vec::new(),
            lost: BTreeSet::new(),
            time: 1,
            stats: Stats::default(),
            hub: topology == 0,
        }
    }

    fn up(&self, i: usize) -> bool {
        self.nodes[i].store.is_some()
    }

    fn append(&mut self, rng: &mut Rng) {
        let i = rng.below(3) as usize;
        if !self.up(i) {
            return;
        }
        let me = self.nodes[i].nation;
        let others: Vec<Nation> = nations().into_iter().filter(|&n| n != me).collect();
        let key = self.nodes[i].key.clone();
        let store = self.nodes[i].store.as_mut().expect("up");
        let mut chain = store.heads().into_iter().find(|c| c.origin() == me).unwrap_or_else(|| Chain::new(me));
        let n = 1 + rng.below(3);
        for _ in 0..n {
            let marking: Vec<Nation> = others.iter().copied().filter(|_| rng.chance(60)).collect();
            let kind = if rng.chance(80) { RecordKind::MeasurementBatch } else { RecordKind::Alert };
            self.time += 1;
            let s = chain.seal(NewRecord {
                time: UtcNanos::from_nanos(self.time),
                releasable_to: &marking,
                kind,
                body: rng.next().to_le_bytes().to_vec(),
            });
            store.append_record(me, &s.bytes).expect("append");
            self.truth.entry(me).or_default().push((s.bytes, marking));
        }
        let cp = chain.checkpoint(&key, UtcNanos::from_nanos(self.time));
        store.append_checkpoint(me, &cp, Some(&key.verifying_key())).expect("checkpoint");
        store.commit().expect("commit");
    }

    fn connect(&mut self, l: usize) {
        let (r, s, accept_relay) = self.links[l];
        if !self.up(r) || !self.up(s) || self.conns.iter().any(|c| c.receiver == r && c.sender == s) {
            return;
        }
        let store = self.nodes[r].store.as_ref().expect("up");
        let cursors = wanted_cursors(self.nodes[r].nation, self.nodes[s].nation, accept_relay, &self.trusted, store);
        let asked_owed = store.owed(self.nodes[s].nation).last().copied().unwrap_or(0);
        let mut up = VecDeque::new();
        up.push_back(LinkUp { msg: Some(link_up::Msg::Subscribe(Subscription { cursors, give_back: false })) });
        let state = Sender::new(self.nodes[s].nation, self.relay[s], self.nodes[r].nation);
        self.conns.push(Conn { receiver: r, sender: s, up, down: VecDeque::new(), state, asked_owed });
    }

    /// The sender takes what the receiver said, then sends one batch of one origin.
    fn step_sender(&mut self, c: usize, rng: &mut Rng) {
        let conn = &mut self.conns[c];
        while let Some(msg) = conn.up.pop_front() {
            match msg.msg {
                Some(link_up::Msg::Subscribe(s)) => {
                    conn.state.subscribe(&s.cursors);
                }
                Some(link_up::Msg::Ack(a)) => {
                    conn.state.ack(&a.origin, a.seq);
                }
                None => {}
            }
        }
        let wanted = conn.state.wanted(WINDOW);
        if wanted.is_empty() {
            return;
        }
        let (origin, from) = wanted[rng.below(wanted.len() as u64) as usize];
        let peer = self.nodes[conn.receiver].nation;
        let store = self.nodes[conn.sender].store.as_ref().expect("up");
        let max = 1 + rng.below(6) as usize;
        let entries = store.read_entries(origin, from, max).expect("read");
        let Some(last) = entries.last().map(Entry::seq) else { return };
        let (batch, _) = egress(origin, entries, peer, &EgressPolicy::default());
        conn.state.sent(origin, last);
        conn.down.push_back(batch);
    }

    /// The receiver applies one batch; an honest batch is never refused.
    fn step_receiver(&mut self, c: usize) -> Result<(), String> {
        let Some(batch) = self.conns[c].down.pop_front() else { return Ok(()) };
        let (r, s) = (self.conns[c].receiver, self.conns[c].sender);
        self.deliver(r, s, batch.clone(), Some(c))?;
        self.delivered.push((r, s, batch));
        if self.delivered.len() > 64 {
            self.delivered.remove(0);
        }
        Ok(())
    }

    fn deliver(&mut self, r: usize, s: usize, batch: LinkBatch, conn: Option<usize>) -> Result<(), String> {
        let accept_relay = self.links.iter().any(|&(lr, ls, a)| lr == r && ls == s && a);
        let me = self.nodes[r].nation;
        let peer = self.nodes[s].nation;
        let rules = Ingress { me, peer, accept_relay, trusted: &self.trusted, own_back: false };
        let store = self.nodes[r].store.as_mut().expect("up");
        match apply(store, &rules, batch) {
            Ok(out) => {
                self.stats.applied += out.applied.len() as u64;
                self.stats.stubs += out.stubs;
                self.stats.fills += out.filled.len() as u64;
                if std::env::var("SIM_TRACE").is_ok() && (out.stubs > 0 || !out.filled.is_empty()) {
                    eprintln!(
                        "{me} <- {peer}: {} head {} stubs {} filled {:?} owed now {:?}",
                        out.origin,
                        out.head,
                        out.stubs,
                        out.filled.iter().map(|a| a.seq).collect::<Vec<_>>(),
                        self.nodes[r].store.as_ref().map(|s| s.owed(out.origin))
                    );
                }
                if conn.is_none() {
                    self.stats.duplicates += 1;
                }
                let last = self.nodes[r].applied.entry(out.origin).or_default();
                for a in &out.applied {
                    if a.seq <= *last {
                        return Err(format!("{me} applied {}/{} twice", out.origin, a.seq));
                    }
                    *last = a.seq;
                }
                if let Some(c) = conn {
                    let ack = wire::LinkAck { origin: out.origin.to_string(), seq: out.head };
                    self.conns[c].up.push_back(LinkUp { msg: Some(link_up::Msg::Ack(ack)) });
                }
                Ok(())
            }
            Err(Refusal::Gap { origin, .. }) => {
                self.stats.gaps += 1;
                if let Some(c) = conn {
                    let mut cursors = wanted_cursors(me, peer, accept_relay, &self.trusted, &*store);
                    cursors.retain(|x| x.origin == origin.as_str());
                    self.conns[c].up.push_back(LinkUp {
                        msg: Some(link_up::Msg::Subscribe(Subscription { cursors, give_back: false })),
                    });
                }
                Ok(())
            }
            Err(e) => Err(format!("{me} refused an honest batch from {peer}: {e}")),
        }
    }

    /// What a receiver does on a heartbeat: asks the origin again for records it is owed (stubs
    /// naming it that a relay brought) since it last asked.
    fn heartbeat(&mut self, c: usize) {
        let (r, s) = (self.conns[c].receiver, self.conns[c].sender);
        let origin = self.nodes[s].nation;
        let owed = self.nodes[r].store.as_ref().expect("up").owed(origin);
        if let Some(&newest) = owed.last() {
            if newest > self.conns[c].asked_owed {
                // From the first owed, not the first new one: a new ask restarts the stream, so
                // it must cover what an earlier ask may not have reached yet.
                let first = owed[0];
                self.conns[c].asked_owed = newest;
                let cursors =
                    vec![wire::OriginCursor { origin: origin.to_string(), seq: first - 1, head_hash: Vec::new() }];
                if std::env::var("SIM_TRACE").is_ok() {
                    eprintln!("{} asks {origin} again from {:?} (owed {owed:?})", self.nodes[r].nation, cursors[0].seq);
                }
                self.conns[c].up.push_back(LinkUp {
                    msg: Some(link_up::Msg::Subscribe(Subscription { cursors, give_back: false })),
                });
            }
        }
    }

    fn crash(&mut self, i: usize) {
        self.stats.crashes += 1;
        self.nodes[i].store = None;
        self.conns.retain(|c| c.receiver != i && c.sender != i);
        self.delivered.retain(|&(r, s, _)| r != i && s != i);
    }

    fn restart(&mut self, i: usize) -> Result<(), String> {
        if self.up(i) {
            return Ok(());
        }
        let (store, recovery) = FileStore::open_for(&self.nodes[i].dir, &self.trusted, Some(self.nodes[i].nation))
            .map_err(|e| format!("reopen: {e}"))?;
        if recovery.torn_bytes_cut != 0 {
            return Err("a clean crash left a torn tail".into());
        }
        self.nodes[i].store = Some(store);
        Ok(())
    }

    /// Keeps a copy of node `i`'s log as it is now (every commit is synced: a consistent old
    /// copy).
    fn snapshot(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        let to = self.nodes[i].dir.with_extension("snapshot");
        let _ = std::fs::remove_dir_all(&to);
        copy_dir(&self.nodes[i].dir, &to);
        self.nodes[i].snapshot = Some(to);
    }

    /// Node `i`'s log goes back to its old copy; before it seals again it takes its records
    /// back from every partner (all must be up, so that none holds more than it can learn),
    /// as `trilink recover --accept-stubs` does: a give-back subscription per partner, from its
    /// head or from just before its first owed stub. Records no partner held are gone from the
    /// origin's history; records partners held only as stubs keep their place, content lost.
    fn go_back(&mut self, i: usize) -> Result<(), String> {
        let Some(snapshot) = self.nodes[i].snapshot.clone() else { return Ok(()) };
        if (0..3).any(|j| !self.up(j)) {
            return Ok(());
        }
        self.stats.went_back += 1;
        let me = self.nodes[i].nation;
        // Everything in flight is dropped (the node went down; links reset).
        self.crash(i);
        self.conns.clear();
        self.delivered.clear();
        let dir = self.nodes[i].dir.clone();
        std::fs::remove_dir_all(&dir).map_err(|e| e.to_string())?;
        copy_dir(&snapshot, &dir);
        self.restart(i)?;
        // Its replicas of the others went back too: what they apply again is applied once in
        // this log.
        let heads = self.nodes[i].store.as_ref().expect("up").heads();
        self.nodes[i].applied = heads.iter().map(|c| (c.origin(), c.seq())).collect();
        for j in (0..3).filter(|&j| j != i) {
            let cursor = {
                let store = self.nodes[i].store.as_ref().expect("up");
                cursor_of(store, &store.heads(), me, true)
            };
            let mut sender = Sender::new(self.nodes[j].nation, self.relay[j], me);
            sender.give_back(&[cursor]).map_err(|e| format!("give-back refused: {e}"))?;
            let rules =
                Ingress { me, peer: self.nodes[j].nation, accept_relay: false, trusted: &self.trusted, own_back: true };
            while let Some(&(origin, from)) = sender.wanted(u64::MAX).first() {
                let entries = self.nodes[j].store.as_ref().expect("up").read_entries(origin, from, 50).expect("read");
                let Some(last) = entries.last().map(Entry::seq) else { break };
                let (batch, _) = egress(origin, entries, me, &EgressPolicy::default());
                let store = self.nodes[i].store.as_mut().expect("up");
                let out = apply(store, &rules, batch).map_err(|e| format!("{me} refused its own records back: {e}"))?;
                self.stats.taken_back += (out.applied.len() + out.filled.len()) as u64;
                sender.sent(origin, last);
            }
        }
        let store = self.nodes[i].store.as_ref().expect("up");
        let held = store.heads().into_iter().find(|c| c.origin() == me).map_or(0, |c| c.seq());
        // What no one held is gone from the origin's history; what it holds only as a stub, no
        // one holds in full.
        let truth = self.truth.entry(me).or_default();
        truth.truncate(held as usize);
        self.lost.retain(|&(o, seq)| o != me || seq <= held);
        for seq in store.owed(me) {
            // Only what no partner holds in full stays a stub.
            for j in (0..3).filter(|&j| j != i) {
                let held_there = self.nodes[j].store.as_ref().expect("up").read_entries(me, seq, 1).expect("read");
                if matches!(held_there.first(), Some(Entry::Record(r)) if r.seq == seq) {
                    return Err(format!(
                        "{me} took {seq} back as a stub, but {} holds it in full",
                        self.nodes[j].nation
                    ));
                }
            }
            self.stats.lost += u64::from(self.lost.insert((me, seq)));
        }
        Ok(())
    }

    /// Every replica a prefix of its origin's log: full records byte-identical where the
    /// marking admits the holder, stubs where it does not. A stub where the marking admits the
    /// holder (owed: a relay could not carry it) is allowed during the chaos; once healed,
    /// only where no path can carry the record — hub and spoke, with the hub not in its marking.
    fn check(&self, healed: bool) -> Result<(), String> {
        let hub = if self.hub { Some(self.nodes[0].nation) } else { None };
        for node in self.nodes.iter().filter(|n| n.store.is_some()) {
            let store = node.store.as_ref().expect("up");
            for (origin, truth) in &self.truth {
                let mut from = 1;
                loop {
                    let got = store.read_entries(*origin, from, 500).map_err(|e| e.to_string())?;
                    if got.is_empty() {
                        break;
                    }
                    for e in got {
                        let seq = e.seq();
                        let Some((bytes, marking)) = truth.get(seq as usize - 1) else {
                            return Err(format!("{} holds {origin}/{seq}, beyond the origin's log", node.nation));
                        };
                        // A record whose content is lost may be held only as a stub anywhere.
                        let lost = self.lost.contains(&(*origin, seq));
                        let entitled = (node.nation == *origin || marking.contains(&node.nation)) && !lost;
                        match e {
                            Entry::Record(r) if !entitled && !lost => {
                                return Err(format!(
                                    "{} holds {origin}/{} in full, marking {marking:?}",
                                    node.nation, r.seq
                                ))
                            }
                            Entry::Record(r) if &r.bytes != bytes => {
                                return Err(format!("{} holds altered {origin}/{}", node.nation, r.seq))
                            }
                            Entry::Withheld { seq, .. }
                                if entitled
                                    && healed
                                    && hub.is_none_or(|h| h == node.nation || h == *origin || marking.contains(&h)) =>
                            {
                                return Err(format!(
                                    "{} holds a stub for {origin}/{seq} it may hold and a path could carry",
                                    node.nation
                                ))
                            }
                            Entry::Checkpoint { .. } | Entry::Record(_) | Entry::Withheld { .. } => {}
                        }
                        if !matches!(e, Entry::Checkpoint { .. }) {
                            from = seq + 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether, in a mesh, some node is still owed a record (its origin can always carry it,
    /// unless its content is lost).
    fn fills_pending(&self) -> bool {
        !self.hub
            && self.nodes.iter().any(|n| {
                n.store.as_ref().is_some_and(|s| {
                    nations().iter().any(|&o| s.owed(o).iter().any(|&seq| !self.lost.contains(&(o, seq))))
                })
            })
    }

    fn converged(&self) -> bool {
        self.nodes.iter().all(|n| {
            let heads = n.store.as_ref().map(|s| s.heads()).unwrap_or_default();
            self.truth
                .iter()
                .all(|(o, t)| heads.iter().find(|c| c.origin() == *o).map_or(0, |c| c.seq()) == t.len() as u64)
        })
    }
}

fn run(seed: u64, total: &mut Stats) -> Result<(), String> {
    let mut rng = Rng(seed);
    let dir = scratch();
    let topology = rng.below(3);
    let mut w = World::new(dir.path(), topology);
    let events = 120 + rng.below(120);
    for _ in 0..events {
        match rng.below(100) {
            0..=19 => w.append(&mut rng),
            20..=29 => {
                let l = rng.below(w.links.len() as u64) as usize;
                w.connect(l);
            }
            30..=54 if !w.conns.is_empty() => {
                let c = rng.below(w.conns.len() as u64) as usize;
                w.step_sender(c, &mut rng);
            }
            55..=84 if !w.conns.is_empty() => {
                let c = rng.below(w.conns.len() as u64) as usize;
                w.step_receiver(c)?;
            }
            85..=89 if !w.conns.is_empty() => {
                // A partition: the connection and everything in flight on it are lost.
                let c = rng.below(w.conns.len() as u64) as usize;
                w.conns.remove(c);
                w.stats.partitions += 1;
            }
            90..=92 => w.crash(rng.below(3) as usize),
            93..=95 => w.restart(rng.below(3) as usize)?,
            96 if !w.conns.is_empty() => {
                let c = rng.below(w.conns.len() as u64) as usize;
                w.heartbeat(c);
            }
            97 => w.snapshot(rng.below(3) as usize),
            98 => w.go_back(rng.below(3) as usize)?,
            _ if !w.delivered.is_empty() => {
                // The same batch again: from a second path, or replayed.
                let (r, s, b) = w.delivered[rng.below(w.delivered.len() as u64) as usize].clone();
                if w.up(r) {
                    w.deliver(r, s, b, None)?;
                }
            }
            _ => {}
        }
        if rng.chance(10) {
            w.check(false)?;
        }
    }
    // Heal: everyone up, every link connected, a fair schedule until quiet.
    for i in 0..3 {
        w.restart(i)?;
    }
    for round in 0..2_000 {
        for l in 0..w.links.len() {
            w.connect(l);
        }
        for c in 0..w.conns.len() {
            w.heartbeat(c);
            w.step_sender(c, &mut rng);
            w.step_receiver(c)?;
        }
        if w.converged() && w.conns.iter().all(|c| c.down.is_empty() && c.up.is_empty()) && !w.fills_pending() {
            w.check(true)?;
            let s = w.stats;
            total.applied += s.applied;
            total.stubs += s.stubs;
            total.fills += s.fills;
            total.gaps += s.gaps;
            total.duplicates += s.duplicates;
            total.crashes += s.crashes;
            total.partitions += s.partitions;
            total.went_back += s.went_back;
            total.taken_back += s.taken_back;
            total.lost += s.lost;
            return Ok(());
        }
        if round == 1_999 {
            break;
        }
    }
    let mut state = String::new();
    for n in &w.nodes {
        let st = n.store.as_ref().expect("up");
        for o in nations() {
            state += &format!(
                "\n  {} holds {o} to {} owed {:?}",
                n.nation,
                st.heads().iter().find(|c| c.origin() == o).map_or(0, |c| c.seq()),
                st.owed(o)
            );
        }
    }
    for (o, t) in &w.truth {
        state += &format!("\n  truth {o}: {}", t.len());
    }
    for c in &w.conns {
        state += &format!(
            "\n  conn {}<-{}: up {} down {} cursors {:?} asked {}",
            w.nodes[c.receiver].nation,
            w.nodes[c.sender].nation,
            c.up.len(),
            c.down.len(),
            c.state.cursors(),
            c.asked_owed
        );
    }
    Err(format!("did not converge (topology {topology}):{state}"))
}

#[test]
fn federation_protocol_survives_partitions_crashes_and_duplicates() {
    if let Ok(s) = std::env::var("TRILINK_SIM_SEED") {
        let seed: u64 = s.parse().expect("TRILINK_SIM_SEED is a number");
        if let Err(e) = run(seed, &mut Stats::default()) {
            panic!("seed {seed}: {e}");
        }
        return;
    }
    let seeds: u64 = std::env::var("TRILINK_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let started = std::time::Instant::now();
    let mut total = Stats::default();
    for seed in 0..seeds {
        if let Err(e) = run(seed, &mut total) {
            panic!("seed {seed}: {e}\nreplay: TRILINK_SIM_SEED={seed} cargo test -p node --test federation_sim");
        }
    }
    eprintln!("{seeds} seeds in {:.1} s: {total:?}", started.elapsed().as_secs_f64());
    if seeds >= 100 {
        let t = total;
        assert!(
            t.applied > 0
                && t.stubs > 0
                && t.fills > 0
                && t.duplicates > 0
                && t.crashes > 0
                && t.partitions > 0
                && t.went_back > 0
                && t.taken_back > 0,
            "the schedule no longer reaches every case: {t:?}"
        );
    }
}

/// Copies a log directory (files and subdirectories).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}
