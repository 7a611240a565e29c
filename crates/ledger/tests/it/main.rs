//! The log at its boundary: a model-based test of the store against a plain list, crash
//! recovery from every possible torn tail, and the audit naming the first bad record.

// Helpers outside #[test] functions panic on purpose too: a panic is how a test reports.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use ledger::audit::verify_dir;
use ledger::chain::NewRecord;
use ledger::{Chain, FileStore, LogStore};
use proptest::prelude::*;
use prost::Message;
use std::collections::BTreeMap;
use std::path::Path;
use vocab::{Nation, UtcNanos};
use wire::RecordKind;

fn usa() -> Nation {
    Nation::parse("USA").unwrap()
}

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn trusted() -> BTreeMap<Nation, ed25519_dalek::VerifyingKey> {
    BTreeMap::from([(usa(), key().verifying_key())])
}

/// Appends `n` records with `body_len`-byte bodies as one group (records, checkpoint, commit);
/// returns their bytes.
fn group(store: &mut FileStore, chain: &mut Chain, n: usize, body_len: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let body = vec![(chain.seq() % 251) as u8; body_len];
        let s = chain.seal(NewRecord {
            time: UtcNanos::from_nanos(5),
            releasable_to: &[],
            kind: RecordKind::Heartbeat,
            body,
        });
        store.append_record(usa(), &s.bytes).unwrap();
        out.push(s.bytes);
    }
    let cp = chain.checkpoint(&key(), UtcNanos::from_nanos(6));
    store.append_checkpoint(usa(), &cp, Some(&key().verifying_key())).unwrap();
    store.commit().unwrap();
    out
}

fn read_all(store: &FileStore) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let got = store.read(usa(), out.len() as u64 + 1, 1000).unwrap();
        if got.is_empty() {
            return out;
        }
        for r in got {
            assert_eq!(r.seq, out.len() as u64 + 1);
            out.push(r.bytes);
        }
    }
}

fn resume(store: &FileStore) -> Chain {
    store.heads().into_iter().find(|c| c.origin() == usa()).unwrap_or_else(|| Chain::new(usa()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever groups are written, with reopenings between them, reading back any range gives
    /// exactly the records written, in order.
    #[test]
    fn store_matches_a_list(groups in proptest::collection::vec((1usize..40, 0usize..3000, any::<bool>()), 1..12),
                            ranges in proptest::collection::vec((0u64..400, 0usize..50), 1..10)) {
        let dir = tempfile::tempdir().unwrap();
        let mut model: Vec<Vec<u8>> = Vec::new();
        let (mut store, _) = FileStore::open(dir.path(), &trusted()).unwrap();
        let mut chain = resume(&store);
        for (n, body_len, reopen) in groups {
            model.extend(group(&mut store, &mut chain, n, body_len));
            if reopen {
                drop(store);
                let (s, rec) = FileStore::open(dir.path(), &trusted()).unwrap();
                prop_assert_eq!(rec, ledger::store::Recovery::default());
                store = s;
                chain = resume(&store);
                prop_assert_eq!(chain.seq(), model.len() as u64);
            }
        }
        prop_assert_eq!(read_all(&store), model.clone());
        for (from, max) in ranges {
            let got = store.read(usa(), from, max).unwrap();
            let start = from.max(1) as usize - 1;
            let want: Vec<_> = model.iter().skip(start).take(max).cloned().collect();
            prop_assert_eq!(got.into_iter().map(|r| r.bytes).collect::<Vec<_>>(), want);
        }
    }
}

/// Appends `n` records as one group (records and checkpoint) without committing it.
fn buffer_group(store: &mut FileStore, chain: &mut Chain, n: usize, body_len: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let s = chain.seal(NewRecord {
            time: UtcNanos::from_nanos(5),
            releasable_to: &[],
            kind: RecordKind::Heartbeat,
            body: vec![(chain.seq() % 251) as u8; body_len],
        });
        store.append_record(usa(), &s.bytes).unwrap();
        out.push(s.bytes);
    }
    let cp = chain.checkpoint(&key(), UtcNanos::from_nanos(6));
    store.append_checkpoint(usa(), &cp, Some(&key().verifying_key())).unwrap();
    out
}

fn durable_seq(store: &FileStore) -> u64 {
    resume(store).seq()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Commits split in three (write, sync without the store, publish) by several committers,
    /// their syncs finishing in any order: readers and heads see exactly the records of the
    /// furthest sync finished, never a record whose sync is still running, and everything
    /// survives a reopen.
    #[test]
    fn split_commits_publish_the_furthest_finished_sync(
        steps in proptest::collection::vec((1usize..20, 0usize..2000, any::<prop::sample::Index>(), any::<bool>()), 1..30),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = FileStore::open(dir.path(), &trusted()).unwrap();
        let mut chain = resume(&store);
        let mut model: Vec<Vec<u8>> = Vec::new();
        // Started commits whose sync has not been published: (its pending sync, seq it covers).
        let mut in_flight = Vec::new();
        let mut published = 0u64;
        for (n, body_len, pick, finish) in steps {
            model.extend(buffer_group(&mut store, &mut chain, n, body_len));
            let pending = store.commit_start().unwrap().expect("a group was buffered");
            in_flight.push((pending, chain.seq()));
            prop_assert_eq!(durable_seq(&store), published, "a started commit is not yet visible");
            // Reading ahead sees everything written, and ends on its checkpoint.
            let ahead = store.reader_ahead(usa(), 1, usize::MAX, usize::MAX).entries().unwrap();
            let records: Vec<_> =
                ahead.iter().filter_map(|e| match e { ledger::Entry::Record(r) => Some(r.bytes.clone()), _ => None }).collect();
            prop_assert_eq!(records, model.clone());
            let ends_on_checkpoint = matches!(ahead.last(), Some(ledger::Entry::Checkpoint { .. }));
            prop_assert!(ends_on_checkpoint);
            if finish {
                let (pending, seq) = in_flight.remove(pick.index(in_flight.len()));
                store.commit_finish(pending.run()).unwrap();
                published = published.max(seq);
                prop_assert_eq!(durable_seq(&store), published);
                prop_assert_eq!(read_all(&store), model[..published as usize].to_vec());
            }
        }
        while !in_flight.is_empty() {
            let (pending, seq) = in_flight.remove(in_flight.len() / 2);
            store.commit_finish(pending.run()).unwrap();
            published = published.max(seq);
        }
        prop_assert_eq!(published, model.len() as u64);
        prop_assert_eq!(read_all(&store), model.clone());
        drop(store);
        let (store, rec) = FileStore::open(dir.path(), &trusted()).unwrap();
        prop_assert_eq!(rec, ledger::store::Recovery::default());
        prop_assert_eq!(read_all(&store), model);
    }
}

/// A commit that fills a segment and the next one, in a new segment, have their syncs finish
/// in reverse order: the roll synced the full segment, so the second publishes everything,
/// and the log reads back, reopens clean and passes the audit.
#[test]
fn a_split_commit_across_a_roll_publishes_in_either_order() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = FileStore::open(dir.path(), &trusted()).unwrap();
    let mut chain = resume(&store);
    let mut model = Vec::new();
    let mut first = None;
    while first.is_none() {
        model.extend(buffer_group(&mut store, &mut chain, 1, 1 << 20));
        let pending = store.commit_start().unwrap().expect("buffered");
        if segment_files(dir.path()).len() == 1 && (model.len() as u64) << 20 >= ledger::MAX_SEGMENT_BYTES {
            // This write filled the segment: leave its sync running.
            first = Some(pending);
        } else {
            store.commit_finish(pending.run()).unwrap();
        }
    }
    let before = durable_seq(&store);
    model.extend(buffer_group(&mut store, &mut chain, 3, 100));
    let second = store.commit_start().unwrap().expect("buffered");
    assert_eq!(segment_files(dir.path()).len(), 2, "the second write rolled");
    assert_eq!(durable_seq(&store), before);
    store.commit_finish(second.run()).unwrap();
    assert_eq!(durable_seq(&store), model.len() as u64);
    assert_eq!(read_all(&store), model);
    store.commit_finish(first.take().unwrap().run()).unwrap();
    assert_eq!(durable_seq(&store), model.len() as u64, "a late sync does not move the head back");
    drop(store);
    let (store, rec) = FileStore::open(dir.path(), &trusted()).unwrap();
    assert_eq!(rec, ledger::store::Recovery::default());
    assert_eq!(read_all(&store), model);
    let audit = verify_dir(dir.path(), &trusted()).unwrap();
    assert_eq!((audit[0].records, audit[0].fault.clone()), (model.len() as u64, None));
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("USA")).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

/// Where a segment's frames end: the writer allocates zeroed space past them.
fn data_len(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Ok((_, _, n)) = ledger::frame::decode(&bytes[at..]) {
        at += n;
    }
    at
}

/// A crash can cut the last write anywhere: at every cut point, reopening keeps exactly the
/// groups that were whole (checkpointed) and the log stays writable and verifiable. The cut
/// write lands in space allocated ahead (zeros after it), or — as a log written before the
/// writer allocated ahead, or a file system that lost the size, would leave it — at the end
/// of the file.
#[test]
fn every_torn_tail_recovers_to_the_last_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = FileStore::open(dir.path(), &trusted()).unwrap();
    let mut chain = resume(&store);
    let first = group(&mut store, &mut chain, 3, 50);
    let len_first = data_len(&std::fs::read(&segment_files(dir.path())[0]).unwrap());
    group(&mut store, &mut chain, 4, 70);
    drop(store);
    let seg = segment_files(dir.path())[0].clone();
    let whole = std::fs::read(&seg).unwrap();
    let end = data_len(&whole);
    assert!(whole.len() > end && whole[end..].iter().all(|&b| b == 0), "space allocated ahead");
    for padded in [true, false] {
        for cut in len_first..end {
            let mut torn = whole[..cut].to_vec();
            if padded {
                torn.resize(whole.len(), 0);
            }
            std::fs::write(&seg, &torn).unwrap();
            // Torn bytes are counted to the last non-zero one: zeros after it are allocated space.
            let cut_bytes = whole[len_first..cut].iter().rposition(|&b| b != 0).map_or(0, |at| at + 1);
            let (mut store, rec) = FileStore::open(dir.path(), &trusted()).unwrap();
            assert_eq!(rec.torn_bytes_cut, cut_bytes as u64, "cut at {cut}, padded {padded}");
            assert_eq!(read_all(&store), first, "cut at {cut}, padded {padded}");
            let mut chain = resume(&store);
            assert_eq!(chain.seq(), 3);
            group(&mut store, &mut chain, 1, 10);
            drop(store);
            let audit = verify_dir(dir.path(), &trusted()).unwrap();
            let got = (audit[0].records, audit[0].covered, audit[0].fault.clone());
            assert_eq!(got, (4, 4, None), "cut at {cut}, padded {padded}");
            let (store, rec) = FileStore::open(dir.path(), &trusted()).unwrap();
            assert_eq!(rec, ledger::store::Recovery::default(), "cut at {cut}, padded {padded}");
            assert_eq!(resume(&store).seq(), 4);
        }
    }
}

/// A segment that rolls keeps no allocated space (it is trimmed to its frames); the new one
/// allocates ahead; both read back, reopen clean and pass the audit.
#[test]
fn a_rolled_segment_is_trimmed_to_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = FileStore::open(dir.path(), &trusted()).unwrap();
    let mut chain = resume(&store);
    let mut model = group(&mut store, &mut chain, 1, 1 << 20);
    while segment_files(dir.path()).len() < 2 {
        model.extend(group(&mut store, &mut chain, 1, 1 << 20));
    }
    model.extend(group(&mut store, &mut chain, 2, 100));
    assert_eq!(read_all(&store), model);
    drop(store);
    let files = segment_files(dir.path());
    let old = std::fs::read(&files[0]).unwrap();
    assert!(old.len() as u64 >= ledger::MAX_SEGMENT_BYTES);
    assert_eq!(data_len(&old), old.len(), "the rolled segment is trimmed");
    let new = std::fs::read(&files[1]).unwrap();
    assert!(new.len() > data_len(&new), "the new tail allocates ahead");
    let (store, rec) = FileStore::open(dir.path(), &trusted()).unwrap();
    assert_eq!(rec, ledger::store::Recovery::default());
    assert_eq!(read_all(&store), model);
    let audit = verify_dir(dir.path(), &trusted()).unwrap();
    assert_eq!((audit[0].records, audit[0].fault.clone()), (model.len() as u64, None));
}

#[test]
fn a_second_process_cannot_open_the_same_log() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FileStore::open(dir.path(), &trusted()).unwrap();
    let err = FileStore::open(dir.path(), &trusted()).unwrap_err();
    assert!(err.to_string().contains("another process holds it"), "{err}");
}

/// Damage inside the log (not at its tail) is never silently repaired: opening refuses, and
/// the audit names the first record that fails and why.
#[test]
fn audit_names_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let (mut store, _) = FileStore::open(dir.path(), &trusted()).unwrap();
    let mut chain = resume(&store);
    let a = group(&mut store, &mut chain, 5, 40);
    group(&mut store, &mut chain, 5, 40);
    drop(store);
    let ok = verify_dir(dir.path(), &trusted()).unwrap();
    assert_eq!((ok[0].records, ok[0].checkpoints, ok[0].covered, ok[0].key_trusted), (10, 2, 10, true));
    assert!(ok[0].fault.is_none());

    // Flip one byte inside record 3's body (frames are 9-byte header + record).
    let seg = segment_files(dir.path())[0].clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let offset3 = 9 * 2 + a[0].len() + a[1].len();
    bytes[offset3 + 9 + a[2].len() - 5] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    let bad = verify_dir(dir.path(), &trusted()).unwrap();
    let fault = bad[0].fault.clone().expect("fault found");
    assert_eq!((fault.bad_seq, fault.offset), (3, offset3 as u64));
    assert!(fault.why.contains("checksum"), "{}", fault.why);

    // A store refuses to open on it: the damaged group is not the tail.
    let err = FileStore::open(dir.path(), &trusted()).unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");

    // The same edit with a recomputed checksum (a forger's) breaks record 4's link to it.
    let original = std::fs::read(&seg).unwrap();
    let mut forged_record = a[2].clone();
    let n = forged_record.len();
    forged_record[n - 5] ^= 0x01;
    let mut framed = Vec::new();
    ledger::frame::encode(ledger::frame::FrameType::Record, &forged_record, &mut framed);
    let mut forged = original.clone();
    forged[offset3..offset3 + framed.len()].copy_from_slice(&framed);
    std::fs::write(&seg, &forged).unwrap();
    let fault = verify_dir(dir.path(), &trusted()).unwrap()[0].fault.clone().expect("fault found");
    assert_eq!(fault.bad_seq, 4);
    assert!(fault.why.contains("prev_hash does not match the hash of record 3"), "{}", fault.why);

    // Undamaged, but checked against another nation's key: the first checkpoint is named.
    bytes[offset3 + 9 + a[2].len() - 5] ^= 0x01;
    std::fs::write(&seg, &bytes).unwrap();
    assert!(verify_dir(dir.path(), &trusted()).unwrap()[0].fault.is_none());
    let other = BTreeMap::from([(usa(), SigningKey::from_bytes(&[8; 32]).verifying_key())]);
    let fault = verify_dir(dir.path(), &other).unwrap()[0].fault.clone().expect("fault found");
    assert!(fault.why.contains("checkpoint at seq 5") && fault.why.contains("not by the key trusted"), "{}", fault.why);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// A replica fed from any cursor by `read_entries` — with some records replaced by their
    /// `Withheld` stubs, as a sender does for a receiver that may not hold them — verifies
    /// every batch on its own, ends each batch on a checkpoint, and reads back as the origin's
    /// log with the stubs skipped; reopened, it still verifies.
    #[test]
    fn replicas_copy_from_any_cursor_with_stubs(groups in proptest::collection::vec(1usize..30, 1..10),
                                                batch in 1usize..40, withhold_every in 2u64..7) {
        let origin_dir = tempfile::tempdir().unwrap();
        let replica_dir = tempfile::tempdir().unwrap();
        let (mut origin, _) = FileStore::open(origin_dir.path(), &trusted()).unwrap();
        let mut chain = resume(&origin);
        for n in groups {
            group(&mut origin, &mut chain, n, 10);
        }
        let (mut replica, _) = FileStore::open(replica_dir.path(), &trusted()).unwrap();
        let mut expected = Vec::new();
        loop {
            let cursor = resume(&replica).seq();
            let entries = origin.read_entries(usa(), cursor + 1, batch).unwrap();
            if entries.is_empty() {
                break;
            }
            let ends_on_checkpoint = matches!(entries.last(), Some(ledger::Entry::Checkpoint { .. }));
            prop_assert!(ends_on_checkpoint);
            prop_assert_eq!(entries[0].seq(), cursor + 1);
            for e in entries {
                match e {
                    ledger::Entry::Record(r) if r.seq % withhold_every == 0 => {
                        replica.append_withheld(usa(), &ledger::chain::withhold(&r.bytes).unwrap()).unwrap();
                    }
                    ledger::Entry::Record(r) => {
                        replica.append_record(usa(), &r.bytes).unwrap();
                        expected.push(r.bytes);
                    }
                    ledger::Entry::Withheld { bytes, .. } => replica.append_withheld(usa(), &bytes).unwrap(),
                    ledger::Entry::Checkpoint { bytes, .. } => {
                        replica.append_checkpoint(usa(), &bytes, Some(&key().verifying_key())).unwrap()
                    }
                }
            }
            replica.commit().unwrap();
        }
        prop_assert_eq!(resume(&replica).seq(), chain.seq());
        let got: Vec<Vec<u8>> = replica.read(usa(), 1, 100_000).unwrap().into_iter().map(|r| r.bytes).collect();
        prop_assert_eq!(&got, &expected);
        // The replica's own entries carry its stubs onward (a relay).
        let relayed = replica.read_entries(usa(), 1, 100_000).unwrap();
        let mut check = Chain::new(usa());
        for e in &relayed {
            match e {
                ledger::Entry::Record(r) => { check.verify_next(&r.bytes).unwrap(); }
                ledger::Entry::Withheld { bytes, .. } => { check.verify_withheld(bytes).unwrap(); }
                ledger::Entry::Checkpoint { bytes, .. } => { check.verify_checkpoint(bytes, Some(&key().verifying_key())).unwrap(); }
            }
        }
        prop_assert_eq!(check.covered(), chain.seq());
        drop(replica);
        let (reopened, rec) = FileStore::open(replica_dir.path(), &trusted()).unwrap();
        prop_assert_eq!(rec.torn_bytes_cut, 0);
        prop_assert_eq!(resume(&reopened).seq(), chain.seq());
        let clean = verify_dir(replica_dir.path(), &trusted()).unwrap().iter().all(|a| a.fault.is_none());
        prop_assert!(clean);
    }
}

/// A stub whose marking names the store's owner is owed; the record it stands for (and only
/// that record) fills it, reads return it in the stub's place, and both survive a reopen and
/// the audit. A fill that is not the stub's record is refused.
#[test]
fn owed_stubs_are_filled_by_their_record_only() {
    let jpn = Nation::parse("JPN").unwrap();
    let origin_dir = tempfile::tempdir().unwrap();
    let (mut origin, _) = FileStore::open(origin_dir.path(), &trusted()).unwrap();
    let mut chain = resume(&origin);
    let mut bytes = Vec::new();
    for i in 0..4u8 {
        let marking = if i == 1 { vec![jpn] } else { vec![] };
        let s = chain.seal(NewRecord {
            time: UtcNanos::from_nanos(1),
            releasable_to: &marking,
            kind: RecordKind::Heartbeat,
            body: vec![i],
        });
        origin.append_record(usa(), &s.bytes).unwrap();
        bytes.push(s.bytes);
    }
    let cp = chain.checkpoint(&key(), UtcNanos::from_nanos(2));
    origin.append_checkpoint(usa(), &cp, Some(&key().verifying_key())).unwrap();
    origin.commit().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let (mut replica, _) = FileStore::open_for(dir.path(), &trusted(), Some(jpn)).unwrap();
    for b in &bytes {
        replica.append_withheld(usa(), &ledger::chain::withhold(b).unwrap()).unwrap();
    }
    replica.append_checkpoint(usa(), &cp, Some(&key().verifying_key())).unwrap();
    replica.commit().unwrap();
    // Only record 2's marking names JPN.
    assert_eq!(replica.owed(usa()), vec![2]);
    assert!(replica.append_fill(usa(), &bytes[2]).is_err(), "record 3 is not owed");
    let mut other = wire::Record::decode(bytes[1].as_slice()).unwrap();
    other.body = b"not it".to_vec();
    assert!(replica.append_fill(usa(), &other.encode_to_vec()).is_err(), "a different record 2");
    assert_eq!(replica.append_fill(usa(), &bytes[1]).unwrap(), 2);
    replica.commit().unwrap();
    assert!(replica.owed(usa()).is_empty());
    let read = replica.read(usa(), 1, 10).unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!((read[0].seq, &read[0].bytes), (2, &bytes[1]));
    drop(replica);
    let (reopened, rec) = FileStore::open_for(dir.path(), &trusted(), Some(jpn)).unwrap();
    assert_eq!(rec.fills_cut, 0);
    assert!(reopened.owed(usa()).is_empty());
    assert_eq!(reopened.read(usa(), 2, 1).unwrap()[0].bytes, bytes[1]);
    let audit = verify_dir(dir.path(), &trusted()).unwrap();
    assert!(audit[0].fault.is_none() && audit[0].fills == 1, "{audit:?}");
    drop(reopened);
    // Opened without an owner (a checker, a tool), the fill is read and kept, never cut.
    let (plain, rec) = FileStore::open(dir.path(), &trusted()).unwrap();
    assert_eq!(rec.fills_cut, 0);
    assert_eq!(plain.read(usa(), 2, 1).unwrap()[0].bytes, bytes[1]);
    drop(plain);
    // A damaged fill is cut at open (the record is owed again), and named by the audit.
    let fills = dir.path().join("USA").join("fills.dat");
    let mut data = std::fs::read(&fills).unwrap();
    let last = data.len() - 1;
    data[last] ^= 1;
    std::fs::write(&fills, &data).unwrap();
    assert!(verify_dir(dir.path(), &trusted()).unwrap()[0].fault.is_some());
    let (reopened, rec) = FileStore::open_for(dir.path(), &trusted(), Some(jpn)).unwrap();
    assert_eq!((rec.fills_cut, reopened.owed(usa())), (1, vec![2]));
}

/// The `LogStore` contract (`ledger::contract`), which the JetStream store runs too.
struct Files(tempfile::TempDir, usize);

impl ledger::contract::Backend for Files {
    fn create(&mut self) -> String {
        self.1 += 1;
        self.0.path().join(self.1.to_string()).to_string_lossy().into_owned()
    }

    fn open(
        &mut self,
        name: &str,
        trusted: &BTreeMap<Nation, ed25519_dalek::VerifyingKey>,
        owner: Option<Nation>,
    ) -> Result<(Box<dyn LogStore>, ledger::store::Recovery), ledger::StoreError> {
        FileStore::open_for(Path::new(name), trusted, owner).map(|(s, r)| (Box::new(s) as Box<dyn LogStore>, r))
    }
}

#[test]
fn file_store_keeps_the_log_store_contract() {
    let mut files = Files(tempfile::tempdir().unwrap(), 0);
    ledger::contract::run_all(&mut files).unwrap();
}
