//! The `LogStore` contract: what every store must do, as checks any store can be run through.
//! `FileStore` runs them in this crate's tests, the JetStream store in `jetstore`'s, so both
//! are held to one definition of a log.
//!
//! Each check takes a [`Backend`] (which makes empty logs and opens them again, as a restart
//! would) and returns `Err` with what went wrong. The data is drawn from a seeded generator, so
//! a failure repeats.

use crate::chain::{withhold, NewRecord};
use crate::store::{Entry, LogStore, Recovery, StoreError, StoredRecord};
use crate::Chain;
use ed25519_dalek::{SigningKey, VerifyingKey};
use std::collections::BTreeMap;
use vocab::{Nation, UtcNanos};
use wire::RecordKind;

/// Makes logs for the checks.
pub trait Backend {
    /// A new, empty log; the name opens it.
    fn create(&mut self) -> String;
    /// Opens the log `name` (as a restarted node would), for the node of `owner`.
    fn open(
        &mut self,
        name: &str,
        trusted: &BTreeMap<Nation, VerifyingKey>,
        owner: Option<Nation>,
    ) -> Result<(Box<dyn LogStore>, Recovery), StoreError>;
}

type Check = Result<(), String>;
/// One check of the contract.
pub type CheckFn = fn(&mut dyn Backend) -> Check;

/// Every check, by name.
pub const CHECKS: &[(&str, CheckFn)] = &[
    ("records_read_back_as_appended", records_read_back_as_appended),
    ("entries_end_on_checkpoints_and_copy_with_stubs", entries_end_on_checkpoints_and_copy_with_stubs),
    ("owed_stubs_are_filled_by_their_record_only", owed_stubs_are_filled_by_their_record_only),
    ("stubs_of_the_owners_own_records_are_owed", stubs_of_the_owners_own_records_are_owed),
    ("refuses_what_does_not_chain", refuses_what_does_not_chain),
    ("uncommitted_appends_are_invisible_and_forgotten", uncommitted_appends_are_invisible_and_forgotten),
];

/// Runs every check; the error names the first that failed.
pub fn run_all(backend: &mut dyn Backend) -> Check {
    for (name, check) in CHECKS {
        check(backend).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

fn nation(code: &str) -> Nation {
    Nation::parse(code).expect("a valid code")
}

fn signing_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn trusted(keys: &[(&str, &SigningKey)]) -> BTreeMap<Nation, VerifyingKey> {
    keys.iter().map(|(n, k)| (nation(n), k.verifying_key())).collect()
}

/// A small deterministic generator (SplitMix64): the checks repeat exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// One origin being written: its chain, key and every record sealed so far.
struct Origin {
    chain: Chain,
    key: SigningKey,
    records: Vec<Vec<u8>>,
    checkpoints: Vec<Vec<u8>>,
}

impl Origin {
    fn new(code: &str, seed: u8) -> Origin {
        Origin { chain: Chain::new(nation(code)), key: signing_key(seed), records: Vec::new(), checkpoints: Vec::new() }
    }

    fn code(&self) -> Nation {
        self.chain.origin()
    }

    fn seal(&mut self, rng: &mut Rng, releasable_to: &[Nation]) -> Vec<u8> {
        let len = rng.range(0, 2000) as usize;
        let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let sealed = self.chain.seal(NewRecord {
            time: UtcNanos::from_nanos(1_700_000_000_000_000_000 + self.chain.seq() as i64),
            releasable_to,
            kind: RecordKind::Heartbeat,
            body,
        });
        self.records.push(sealed.bytes.clone());
        sealed.bytes
    }

    fn checkpoint(&mut self) -> Vec<u8> {
        let cp = self.chain.checkpoint(&self.key, UtcNanos::from_nanos(1_700_000_000_000_000_000));
        self.checkpoints.push(cp.clone());
        cp
    }

    /// Seals `n` records and a checkpoint into `store` (not committed). Every other group's
    /// checkpoint goes in with the proof of its signing (`append_proven_checkpoint`), as a
    /// writer's own does.
    fn group(&mut self, store: &mut dyn LogStore, rng: &mut Rng, n: usize) -> Check {
        let origin = self.code();
        for _ in 0..n {
            let bytes = self.seal(rng, &[]);
            store.append_record(origin, &bytes).map_err(|e| format!("append {origin}: {e}"))?;
        }
        let key = self.key.verifying_key();
        if self.checkpoints.len() % 2 == 1 {
            let (cp, proof) = self.chain.checkpoint_proven(&self.key, UtcNanos::from_nanos(1_700_000_000_000_000_000));
            self.checkpoints.push(cp.clone());
            return store
                .append_proven_checkpoint(origin, &cp, &proof, Some(&key))
                .map_err(|e| format!("proven checkpoint {origin}: {e}"));
        }
        let cp = self.checkpoint();
        store.append_checkpoint(origin, &cp, Some(&key)).map_err(|e| format!("checkpoint {origin}: {e}"))
    }

    fn expected(&self, from_seq: u64, max: usize) -> Vec<StoredRecord> {
        let from = from_seq.max(1);
        self.records
            .iter()
            .enumerate()
            .map(|(i, b)| StoredRecord { seq: i as u64 + 1, bytes: b.clone() })
            .skip(from as usize - 1)
            .take(max.min(crate::store::MAX_READ_RECORDS))
            .collect()
    }
}

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Check {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn open(
    backend: &mut dyn Backend,
    name: &str,
    trusted: &BTreeMap<Nation, VerifyingKey>,
    owner: Option<Nation>,
) -> Result<Box<dyn LogStore>, String> {
    backend.open(name, trusted, owner).map(|(s, _)| s).map_err(|e| format!("open {name}: {e}"))
}

fn head_of(store: &dyn LogStore, origin: Nation) -> (u64, u64) {
    store.heads().iter().find(|c| c.origin() == origin).map(|c| (c.seq(), c.covered())).unwrap_or((0, 0))
}

/// Every way of reading `o`'s records from `store` returns exactly what was appended.
fn reads_match(store: &dyn LogStore, o: &Origin, rng: &mut Rng) -> Check {
    let origin = o.code();
    let n = o.records.len() as u64;
    ensure(head_of(store, origin) == (n, n), || {
        format!("{origin}: head {:?}, expected ({n}, {n})", head_of(store, origin))
    })?;
    let mut probes = vec![(1, usize::MAX), (0, 3), (n, 10), (n + 1, 10), (2, 0)];
    for _ in 0..6 {
        probes.push((rng.range(1, n + 2), rng.range(0, n + 5) as usize));
    }
    for (from, max) in probes {
        let got = store.read(origin, from, max).map_err(|e| format!("read {origin} {from}+{max}: {e}"))?;
        let want = o.expected(from, max);
        ensure(got == want, || {
            format!(
                "read {origin} from {from} max {max}: {} records (seqs {:?}..), expected {} (seqs {:?}..)",
                got.len(),
                got.first().map(|r| r.seq),
                want.len(),
                want.first().map(|r| r.seq)
            )
        })?;
        let planned = store.reader(origin, from, max, usize::MAX).records().map_err(|e| format!("reader: {e}"))?;
        ensure(planned == want, || format!("reader {origin} from {from} max {max} differs from read"))?;
    }
    ensure(store.last_checkpoint(origin).as_ref() == o.checkpoints.last(), || {
        format!("{origin}: last_checkpoint is not the last one committed")
    })
}

/// Groups of records for two origins, committed together and apart, read back by every range
/// before and after reopening.
pub fn records_read_back_as_appended(backend: &mut dyn Backend) -> Check {
    let mut rng = Rng(1);
    let name = backend.create();
    let mut usa = Origin::new("USA", 1);
    let mut jpn = Origin::new("JPN", 2);
    let keys = trusted(&[("USA", &usa.key), ("JPN", &jpn.key)]);
    let mut store = open(backend, &name, &keys, Some(nation("USA")))?;
    ensure(store.heads().is_empty(), || "a new log has heads".into())?;
    ensure(store.read(nation("USA"), 1, 10).map_err(|e| e.to_string())?.is_empty(), || "a new log reads".into())?;
    for round in 0..8 {
        let n = rng.range(1, 60) as usize;
        usa.group(store.as_mut(), &mut rng, n)?;
        if round % 2 == 0 {
            let n = rng.range(1, 30) as usize;
            jpn.group(store.as_mut(), &mut rng, n)?;
        }
        store.commit().map_err(|e| format!("commit: {e}"))?;
        reads_match(store.as_ref(), &usa, &mut rng)?;
        reads_match(store.as_ref(), &jpn, &mut rng)?;
    }
    // Several groups (each with its checkpoint) in one commit.
    for _ in 0..3 {
        let n = rng.range(1, 20) as usize;
        usa.group(store.as_mut(), &mut rng, n)?;
    }
    store.commit().map_err(|e| format!("commit: {e}"))?;
    drop(store);
    let mut store = open(backend, &name, &keys, Some(nation("USA")))?;
    reads_match(store.as_ref(), &usa, &mut rng)?;
    reads_match(store.as_ref(), &jpn, &mut rng)?;
    // A reopened log goes on where it stopped.
    usa.group(store.as_mut(), &mut rng, 5)?;
    store.commit().map_err(|e| format!("commit after reopen: {e}"))?;
    reads_match(store.as_ref(), &usa, &mut rng)?;
    drop(store);
    let store = open(backend, &name, &keys, None)?;
    reads_match(store.as_ref(), &usa, &mut rng)
}

/// Applies entries read from one log to another, as a replica link does.
fn apply(store: &mut dyn LogStore, origin: Nation, entries: &[Entry], key: &VerifyingKey) -> Check {
    for e in entries {
        match e {
            Entry::Record(r) => store.append_record(origin, &r.bytes),
            Entry::Withheld { bytes, .. } => store.append_withheld(origin, bytes),
            Entry::Checkpoint { bytes, .. } => store.append_checkpoint(origin, bytes, Some(key)),
        }
        .map_err(|err| format!("apply {origin}/{}: {err}", e.seq()))?;
    }
    store.commit().map_err(|e| format!("commit replica: {e}"))
}

/// `read_entries` batches end on a checkpoint covering them, so a replica applying them from
/// any cursor verifies; a replica holding stubs serves them on to a third log.
pub fn entries_end_on_checkpoints_and_copy_with_stubs(backend: &mut dyn Backend) -> Check {
    let mut rng = Rng(2);
    let mut usa = Origin::new("USA", 1);
    let keys = trusted(&[("USA", &usa.key)]);
    let key = usa.key.verifying_key();
    let usa_code = usa.code();
    let source_name = backend.create();
    let mut source = open(backend, &source_name, &keys, Some(usa_code))?;
    for _ in 0..10 {
        let n = rng.range(1, 40) as usize;
        usa.group(source.as_mut(), &mut rng, n)?;
        source.commit().map_err(|e| format!("commit: {e}"))?;
    }
    let total = usa.records.len() as u64;
    // Batches of about `max` records from each cursor end on a checkpoint covering them.
    for _ in 0..8 {
        let from = rng.range(1, total + 1);
        let max = rng.range(1, 50) as usize;
        let got = source.read_entries(usa_code, from, max).map_err(|e| format!("read_entries: {e}"))?;
        let last = got.last().ok_or_else(|| format!("read_entries from {from}: nothing"))?;
        ensure(matches!(last, Entry::Checkpoint { .. }), || format!("read_entries from {from} ends on a record"))?;
        let mut seq = from;
        for e in &got {
            match e {
                Entry::Checkpoint { seq: s, .. } => {
                    ensure(*s + 1 == seq, || format!("checkpoint at {s} before {seq}"))?
                }
                other => {
                    ensure(other.seq() == seq, || format!("entry {} where {seq} was due", other.seq()))?;
                    seq += 1;
                }
            }
        }
        let planned = source.reader(usa_code, from, max, usize::MAX).entries().map_err(|e| format!("reader: {e}"))?;
        ensure(planned == got, || format!("reader entries from {from} differ from read_entries"))?;
    }
    // A replica copies in batches, withholding every third record as a stub.
    let replica_name = backend.create();
    let mut replica = open(backend, &replica_name, &keys, Some(nation("JPN")))?;
    let mut from = 1;
    while from <= total {
        let max = rng.range(1, 30) as usize;
        let batch = source.read_entries(usa_code, from, max).map_err(|e| format!("read_entries: {e}"))?;
        let mut out = Vec::new();
        for e in batch {
            match e {
                Entry::Record(r) if r.seq % 3 == 0 => {
                    let stub = withhold(&r.bytes).map_err(|e| e.to_string())?;
                    out.push(Entry::Withheld { seq: r.seq, bytes: stub });
                }
                other => out.push(other),
            }
        }
        from = out.iter().map(Entry::seq).max().unwrap_or(from) + 1;
        apply(replica.as_mut(), usa_code, &out, &key)?;
    }
    ensure(head_of(replica.as_ref(), usa_code) == (total, total), || "replica head".into())?;
    let want: Vec<StoredRecord> = usa.expected(1, usize::MAX).into_iter().filter(|r| r.seq % 3 != 0).collect();
    let got = replica.read(usa_code, 1, usize::MAX).map_err(|e| e.to_string())?;
    ensure(got == want, || format!("replica reads {} records, expected {}", got.len(), want.len()))?;
    // The replica serves its stubs on; a third log verifies them.
    drop(replica);
    let replica = open(backend, &replica_name, &keys, Some(nation("JPN")))?;
    let relay_name = backend.create();
    let mut relay = open(backend, &relay_name, &keys, Some(nation("KOR")))?;
    let mut from = 1;
    let mut stubs_served = 0;
    while from <= total {
        let batch = replica.read_entries(usa_code, from, 25).map_err(|e| format!("replica read_entries: {e}"))?;
        ensure(!batch.is_empty(), || format!("replica read_entries from {from}: nothing"))?;
        // Every third record is served as its stub, every other one as itself.
        for e in &batch {
            match e {
                Entry::Record(r) => {
                    ensure(r.seq % 3 != 0, || format!("record {} served whole, not as its stub", r.seq))?
                }
                Entry::Withheld { seq, .. } => {
                    ensure(seq % 3 == 0, || format!("record {seq} served as a stub it never was"))?;
                    stubs_served += 1;
                }
                Entry::Checkpoint { .. } => {}
            }
        }
        from = batch.iter().map(Entry::seq).max().unwrap_or(from) + 1;
        apply(relay.as_mut(), usa_code, &batch, &key)?;
    }
    ensure(stubs_served == total / 3, || format!("the replica served {stubs_served} stubs, not {}", total / 3))?;
    let got = relay.read(usa_code, 1, usize::MAX).map_err(|e| e.to_string())?;
    ensure(got == want, || format!("relay reads {} records, expected {}", got.len(), want.len()))
}

/// Stubs whose marking names the owner are owed until their record fills them; nothing else
/// fills them, fills survive a reopen, and a disowned stub is no longer owed.
pub fn owed_stubs_are_filled_by_their_record_only(backend: &mut dyn Backend) -> Check {
    let mut rng = Rng(3);
    let mut usa = Origin::new("USA", 1);
    let keys = trusted(&[("USA", &usa.key)]);
    let key = usa.key.verifying_key();
    let (usa_code, jpn) = (usa.code(), nation("JPN"));
    let name = backend.create();
    let mut store = open(backend, &name, &keys, Some(jpn))?;
    // Records 1..=12; those releasable to JPN (even seqs) arrive as stubs, as do 3 and 9 (not
    // releasable to JPN: withheld, not owed).
    let mut entries = Vec::new();
    for seq in 1..=12u64 {
        let marking: &[Nation] = if seq % 2 == 0 { &[jpn] } else { &[] };
        let bytes = usa.seal(&mut rng, marking);
        entries.push(if seq % 2 == 0 || seq % 3 == 0 {
            Entry::Withheld { seq, bytes: withhold(&bytes).map_err(|e| e.to_string())? }
        } else {
            Entry::Record(StoredRecord { seq, bytes })
        });
    }
    entries.push(Entry::Checkpoint { seq: 12, bytes: usa.checkpoint() });
    apply(store.as_mut(), usa_code, &entries, &key)?;
    let owed: Vec<u64> = (2..=12).step_by(2).collect();
    ensure(store.owed(usa_code) == owed, || format!("owed {:?}, expected {owed:?}", store.owed(usa_code)))?;
    // The wrong record, garbage and a record not owed are refused.
    let mut forged = <wire::Record as prost::Message>::decode(usa.records[1].as_slice()).map_err(|e| e.to_string())?;
    forged.body.push(1);
    let forged = prost::Message::encode_to_vec(&forged);
    ensure(matches!(store.append_fill(usa_code, &forged), Err(StoreError::NotOwed { seq: 2, .. })), || {
        "a record not matching its stub's digest filled it".into()
    })?;
    ensure(matches!(store.append_fill(usa_code, &[0xff, 0xff]), Err(StoreError::NotOwed { .. })), || {
        "garbage filled a stub".into()
    })?;
    ensure(matches!(store.append_fill(usa_code, &usa.records[8]), Err(StoreError::NotOwed { seq: 9, .. })), || {
        "a stub not owed (its marking does not name the owner) was filled".into()
    })?;
    // Fill 2, 4 and 6; 4 again is refused (no longer owed).
    for i in [1usize, 3, 5] {
        let seq = store.append_fill(usa_code, &usa.records[i]).map_err(|e| format!("fill {}: {e}", i + 1))?;
        ensure(seq == i as u64 + 1, || format!("fill returned seq {seq}"))?;
    }
    ensure(store.append_fill(usa_code, &usa.records[3]).is_err(), || "a stub was filled twice".into())?;
    store.commit().map_err(|e| format!("commit fills: {e}"))?;
    store.disown(usa_code, 12);
    ensure(store.owed(usa_code) == vec![8, 10], || format!("owed after fills: {:?}", store.owed(usa_code)))?;
    let want: Vec<StoredRecord> =
        usa.expected(1, usize::MAX).into_iter().filter(|r| [1, 2, 4, 5, 6, 7, 11].contains(&r.seq)).collect();
    let got = store.read(usa_code, 1, usize::MAX).map_err(|e| e.to_string())?;
    ensure(got == want, || format!("reads seqs {:?}", got.iter().map(|r| r.seq).collect::<Vec<_>>()))?;
    // Entries carry filled records in the stubs' place.
    let entries = store.read_entries(usa_code, 1, 100).map_err(|e| e.to_string())?;
    ensure(matches!(&entries[3], Entry::Record(r) if r.seq == 4), || "entry 4 is not the filled record".into())?;
    // After a reopen the fills are kept; disowning was in memory only, so 12 is owed again.
    drop(store);
    let store = open(backend, &name, &keys, Some(jpn))?;
    ensure(store.owed(usa_code) == vec![8, 10, 12], || format!("owed after reopen: {:?}", store.owed(usa_code)))?;
    let got = store.read(usa_code, 1, usize::MAX).map_err(|e| e.to_string())?;
    ensure(got == want, || "fills lost on reopen".into())
}

/// A node that took its own records back from a partner holding some only as stubs is owed
/// them whatever their marking names: its own record fills such a stub, across a reopen.
pub fn stubs_of_the_owners_own_records_are_owed(backend: &mut dyn Backend) -> Check {
    let mut rng = Rng(5);
    let mut usa = Origin::new("USA", 1);
    let keys = trusted(&[("USA", &usa.key)]);
    let key = usa.key.verifying_key();
    let usa_code = usa.code();
    let name = backend.create();
    let mut store = open(backend, &name, &keys, Some(usa_code))?;
    // Records 1..=6, marked for KOR or for no one; 2 and 5 came back as stubs.
    let mut entries = Vec::new();
    for seq in 1..=6u64 {
        let marking = if seq % 2 == 0 { vec![nation("KOR")] } else { Vec::new() };
        let bytes = usa.seal(&mut rng, &marking);
        entries.push(if seq == 2 || seq == 5 {
            Entry::Withheld { seq, bytes: withhold(&bytes).map_err(|e| e.to_string())? }
        } else {
            Entry::Record(StoredRecord { seq, bytes })
        });
    }
    entries.push(Entry::Checkpoint { seq: 6, bytes: usa.checkpoint() });
    apply(store.as_mut(), usa_code, &entries, &key)?;
    ensure(store.owed(usa_code) == vec![2, 5], || format!("owed {:?}, expected [2, 5]", store.owed(usa_code)))?;
    store.append_fill(usa_code, &usa.records[4]).map_err(|e| format!("fill 5: {e}"))?;
    store.commit().map_err(|e| format!("commit the fill: {e}"))?;
    drop(store);
    let store = open(backend, &name, &keys, Some(usa_code))?;
    ensure(store.owed(usa_code) == vec![2], || format!("owed after reopen: {:?}", store.owed(usa_code)))?;
    let got: Vec<u64> = store.read(usa_code, 1, usize::MAX).map_err(|e| e.to_string())?.iter().map(|r| r.seq).collect();
    ensure(got == vec![1, 3, 4, 5, 6], || format!("reads seqs {got:?}"))
}

/// Appends that do not extend the chain are refused without moving it; a commit with records
/// no checkpoint covers fails the store, and none of them is ever read.
pub fn refuses_what_does_not_chain(backend: &mut dyn Backend) -> Check {
    let mut rng = Rng(4);
    let mut usa = Origin::new("USA", 1);
    let keys = trusted(&[("USA", &usa.key)]);
    let usa_code = usa.code();
    let name = backend.create();
    let mut store = open(backend, &name, &keys, Some(usa_code))?;
    usa.group(store.as_mut(), &mut rng, 5)?;
    store.commit().map_err(|e| format!("commit: {e}"))?;
    // A gap, a repeat, garbage, another origin's record: refused.
    let mut ahead = usa.chain.clone();
    ahead.seal(NewRecord {
        time: UtcNanos::from_nanos(1),
        releasable_to: &[],
        kind: RecordKind::Heartbeat,
        body: vec![],
    });
    let gap = ahead.seal(NewRecord {
        time: UtcNanos::from_nanos(1),
        releasable_to: &[],
        kind: RecordKind::Heartbeat,
        body: vec![],
    });
    for (what, bytes) in
        [("a gap", gap.bytes.clone()), ("a repeat", usa.records[4].clone()), ("garbage", vec![0xff; 9])]
    {
        ensure(matches!(store.append_record(usa_code, &bytes), Err(StoreError::Rejected { .. })), || {
            format!("{what} was accepted")
        })?;
    }
    ensure(store.append_record(nation("JPN"), &usa.records[0]).is_err(), || "USA's record filed under JPN".into())?;
    // A checkpoint signed by another key.
    let mut forger = usa.chain.clone();
    let bad_cp = forger.checkpoint(&signing_key(9), UtcNanos::from_nanos(1));
    ensure(store.append_checkpoint(usa_code, &bad_cp, Some(&usa.key.verifying_key())).is_err(), || {
        "a checkpoint by an untrusted key was accepted".into()
    })?;
    // Proofs that do not stand for this checkpoint over this head by this key.
    let (bad_cp, bad_proof) = usa.chain.clone().checkpoint_proven(&signing_key(9), UtcNanos::from_nanos(1));
    let (ahead_cp, ahead_proof) = ahead.checkpoint_proven(&usa.key, UtcNanos::from_nanos(1));
    let (_, proof) = usa.chain.clone().checkpoint_proven(&usa.key, UtcNanos::from_nanos(1));
    let (other_cp, _) = usa.chain.clone().checkpoint_proven(&usa.key, UtcNanos::from_nanos(2));
    for (what, cp, proof) in [
        ("by an untrusted key", &bad_cp, &bad_proof),
        ("over another head", &ahead_cp, &ahead_proof),
        ("of other bytes", &other_cp, &proof),
    ] {
        let got = store.append_proven_checkpoint(usa_code, cp, proof, Some(&usa.key.verifying_key()));
        ensure(matches!(got, Err(StoreError::Rejected { .. })), || format!("a proven checkpoint {what} was accepted"))?;
    }
    // The chain did not move: the right next record still goes in.
    usa.group(store.as_mut(), &mut rng, 3)?;
    store.commit().map_err(|e| format!("commit after refusals: {e}"))?;
    reads_match(store.as_ref(), &usa, &mut rng)?;
    ensure(store.failure().is_none(), || "a working store said it failed".into())?;
    // Records without a checkpoint: the commit fails, and so does everything after it.
    let orphan = usa.seal(&mut rng, &[]);
    store.append_record(usa_code, &orphan).map_err(|e| e.to_string())?;
    ensure(matches!(store.commit(), Err(StoreError::Failed(_))), || "a commit without a checkpoint passed".into())?;
    ensure(store.commit().is_err(), || "a failed store committed".into())?;
    ensure(matches!(store.failure(), Some(StoreError::Failed(_))), || "a failed store did not say so".into())?;
    drop(store);
    usa.records.pop();
    let store = open(backend, &name, &keys, Some(usa_code))?;
    reads_match(store.as_ref(), &usa, &mut rng)
}

/// What is appended but not committed is not read, and is gone after a reopen.
pub fn uncommitted_appends_are_invisible_and_forgotten(backend: &mut dyn Backend) -> Check {
    let mut rng = Rng(5);
    let mut usa = Origin::new("USA", 1);
    let keys = trusted(&[("USA", &usa.key)]);
    let usa_code = usa.code();
    let name = backend.create();
    let mut store = open(backend, &name, &keys, Some(usa_code))?;
    usa.group(store.as_mut(), &mut rng, 4)?;
    store.commit().map_err(|e| format!("commit: {e}"))?;
    let committed = (usa.chain.clone(), usa.records.len(), usa.checkpoints.len());
    usa.group(store.as_mut(), &mut rng, 6)?;
    ensure(head_of(store.as_ref(), usa_code) == (4, 4), || "the head moved before the commit".into())?;
    ensure(store.read(usa_code, 1, 100).map_err(|e| e.to_string())?.len() == 4, || "uncommitted records read".into())?;
    ensure(store.last_checkpoint(usa_code).as_ref() == usa.checkpoints.get(committed.2 - 1), || {
        "an uncommitted checkpoint is the last".into()
    })?;
    drop(store);
    usa.chain = committed.0;
    usa.records.truncate(committed.1);
    usa.checkpoints.truncate(committed.2);
    let mut store = open(backend, &name, &keys, Some(usa_code))?;
    reads_match(store.as_ref(), &usa, &mut rng)?;
    usa.group(store.as_mut(), &mut rng, 2)?;
    store.commit().map_err(|e| format!("commit after reopen: {e}"))?;
    reads_match(store.as_ref(), &usa, &mut rng)
}
