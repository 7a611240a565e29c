//! The JetStream store against a real three-server NATS cluster: the `LogStore` contract that
//! `FileStore` keeps, the start-up durability checks, and a server killed mid-stream.

#![allow(clippy::unwrap_used)]

use ed25519_dalek::VerifyingKey;
use jetstore::local::LocalCluster;
use jetstore::{JetStore, Settings};
use ledger::contract::Backend;
use ledger::store::Recovery;
use ledger::{LogStore, StoreError};
use std::collections::BTreeMap;
use std::time::Duration;
use vocab::Nation;

struct Jet {
    settings: Settings,
    next: usize,
}

impl Jet {
    fn new(cluster: &LocalCluster) -> Jet {
        Jet {
            settings: Settings {
                servers: cluster.urls(),
                monitors: cluster.monitors(),
                prefix: String::new(),
                timeout: Duration::from_secs(20),
            },
            next: 0,
        }
    }
}

impl Backend for Jet {
    fn create(&mut self) -> String {
        self.next += 1;
        format!("T{}", self.next)
    }

    fn open(
        &mut self,
        name: &str,
        trusted: &BTreeMap<Nation, VerifyingKey>,
        owner: Option<Nation>,
    ) -> Result<(Box<dyn LogStore>, Recovery), StoreError> {
        let settings = Settings { prefix: name.to_string(), ..self.settings.clone() };
        JetStore::open(&settings, trusted, owner).map(|(s, r)| (Box::new(s) as Box<dyn LogStore>, r))
    }
}

#[test]
fn jetstream_store_keeps_the_log_store_contract_on_three_servers() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 3).unwrap();
    let mut jet = Jet::new(&cluster);
    ledger::contract::run_all(&mut jet).unwrap();
    // Three servers: every stream has three replicas.
    let (store, _) = jet.open("T1", &BTreeMap::new(), None).unwrap();
    drop(store);
    let (store, _) =
        JetStore::open(&Settings { prefix: "T1".into(), ..jet.settings.clone() }, &BTreeMap::new(), None).unwrap();
    assert_eq!(store.replicas(), 3);
}

#[test]
fn servers_that_do_not_sync_every_write_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start_with(dir.path(), 1, "").unwrap();
    let jet = Jet::new(&cluster);
    let settings = Settings { prefix: "T".into(), ..jet.settings.clone() };
    let err = JetStore::open(&settings, &BTreeMap::new(), None).unwrap_err();
    assert!(matches!(err, StoreError::Misconfigured(_)), "{err}");
    assert!(err.to_string().contains("sync_interval: always"), "{err}");
    // No monitoring URL: refused, not assumed.
    let err = JetStore::open(&Settings { monitors: vec![], ..settings.clone() }, &BTreeMap::new(), None).unwrap_err();
    assert!(err.to_string().contains("monitoring URL"), "{err}");
    // Nothing listening: a clear error within the timeout, no hang.
    let err = JetStore::open(
        &Settings { monitors: vec!["http://127.0.0.1:1".into()], timeout: Duration::from_secs(2), ..settings },
        &BTreeMap::new(),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

/// One server killed while groups are committed: every commit that returned Ok is read back
/// once, in order, after the server comes back and the store is opened afresh.
#[test]
fn a_server_killed_mid_stream_loses_and_duplicates_nothing_acknowledged() {
    use ed25519_dalek::SigningKey;
    use ledger::chain::NewRecord;
    use ledger::Chain;
    use vocab::UtcNanos;

    let dir = tempfile::tempdir().unwrap();
    let mut cluster = LocalCluster::start(dir.path(), 3).unwrap();
    let jet = Jet::new(&cluster);
    let settings = Settings { prefix: "KILL".into(), ..jet.settings.clone() };
    let usa = Nation::parse("USA").unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    let trusted: BTreeMap<Nation, VerifyingKey> = [(usa, key.verifying_key())].into();
    let (mut store, _) = JetStore::open(&settings, &trusted, Some(usa)).unwrap();
    let mut chain = Chain::new(usa);
    let mut acked: Vec<Vec<u8>> = Vec::new();
    for group in 0..60 {
        if group == 20 {
            // Each server in turn may lead the stream; kill the second.
            cluster.kill_server(1);
        }
        let mut sealed = Vec::new();
        for i in 0..10u8 {
            let s = chain.seal(NewRecord {
                time: UtcNanos::from_nanos(group),
                releasable_to: &[],
                kind: wire::RecordKind::Heartbeat,
                body: vec![i; 100],
            });
            store.append_record(usa, &s.bytes).unwrap();
            sealed.push(s.bytes);
        }
        let cp = chain.checkpoint(&key, UtcNanos::from_nanos(group));
        store.append_checkpoint(usa, &cp, Some(&key.verifying_key())).unwrap();
        store.commit().unwrap_or_else(|e| panic!("group {group} after the kill: {e}"));
        acked.extend(sealed);
    }
    drop(store);
    cluster.start_server(1).unwrap();
    cluster.wait_ready(Duration::from_secs(30)).unwrap();
    let (store, recovery) = JetStore::open(&settings, &trusted, Some(usa)).unwrap();
    assert_eq!(recovery.uncovered_records_kept, 0);
    let read = store.read(usa, 1, usize::MAX).unwrap();
    assert_eq!(read.len(), acked.len());
    assert!(read.iter().zip(&acked).all(|(r, a)| &r.bytes == a));
}

/// A follower (another process of the same nation) reads what the writer appends after the
/// follower opened, and cannot append itself.
#[test]
fn a_follower_reads_what_the_writer_commits_and_writes_nothing() {
    use ed25519_dalek::SigningKey;
    use ledger::chain::NewRecord;
    use ledger::Chain;
    use vocab::UtcNanos;

    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 1).unwrap();
    let settings = Settings { prefix: "FOLLOW".into(), ..Jet::new(&cluster).settings };
    let usa = Nation::parse("USA").unwrap();
    let key = SigningKey::from_bytes(&[3; 32]);
    let trusted: BTreeMap<Nation, VerifyingKey> = [(usa, key.verifying_key())].into();
    let (mut follower, _) = JetStore::open_follower(&settings, &trusted).unwrap();
    assert!(follower.read(usa, 1, 10).unwrap().is_empty());
    let (mut writer, _) = JetStore::open(&settings, &trusted, Some(usa)).unwrap();
    assert!(writer.ends_reader().is_none(), "a writer is its own truth");
    // The node reads the ends without holding the store, then hands them over.
    let ends = follower.ends_reader().expect("a follower reads its ends");
    let mut chain = Chain::new(usa);
    let mut written = Vec::new();
    for group in 0..5 {
        for i in 0..7u8 {
            let s = chain.seal(NewRecord {
                time: UtcNanos::from_nanos(group),
                releasable_to: &[],
                kind: wire::RecordKind::Heartbeat,
                body: vec![i; 10],
            });
            writer.append_record(usa, &s.bytes).unwrap();
            written.push(s.bytes);
        }
        writer.append_checkpoint(usa, &chain.checkpoint(&key, UtcNanos::from_nanos(group)), None).unwrap();
        writer.commit().unwrap();
        let read: Vec<Vec<u8>> = follower.read(usa, 1, usize::MAX).unwrap().into_iter().map(|r| r.bytes).collect();
        assert_eq!(read, written, "after group {group}");
        if group % 2 == 0 {
            follower.refresh_heads().unwrap();
        } else {
            let read = ends.read().unwrap();
            follower.apply_ends(read).unwrap();
        }
        let head = follower.heads().into_iter().find(|c| c.origin() == usa).unwrap();
        assert_eq!((head.seq(), head.covered(), head.head()), (chain.seq(), chain.seq(), chain.head()));
        assert_eq!(follower.last_checkpoint(usa), writer.last_checkpoint(usa));
        let entries = follower.read_entries(usa, 3, 2).unwrap();
        assert!(matches!(entries.last(), Some(ledger::Entry::Checkpoint { .. })));
    }
    // The server knows each record by its identity (Nats-Msg-Id = origin.seq): the same record
    // published again is a duplicate, and the stream does not grow.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (dup, before, after) = rt.block_on(async {
        let js = jetstore::async_nats::jetstream::new(jetstore::async_nats::connect(cluster.urls()).await.unwrap());
        let mut stream = js.get_stream("FOLLOW_USA").await.unwrap();
        let before = stream.info().await.unwrap().state.last_sequence;
        let mut headers = jetstore::async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", "USA.3");
        headers.insert(jetstore::SEQ_HEADER, "3");
        let ack = js.publish_with_headers("FOLLOW.USA.log.r", headers, written[2].clone().into()).await.unwrap();
        let ack = ack.await.unwrap();
        (ack.duplicate, before, stream.info().await.unwrap().state.last_sequence)
    });
    assert!(dup, "a record published again was not recognised as a duplicate");
    assert_eq!(before, after);
    let s = chain.seal(NewRecord {
        time: UtcNanos::from_nanos(9),
        releasable_to: &[],
        kind: wire::RecordKind::Heartbeat,
        body: vec![],
    });
    assert!(matches!(follower.append_record(usa, &s.bytes), Err(StoreError::Failed(_))));
}

/// A writer that opens fences off every writer before it (this node before a crash, whose
/// last batch may land late, or a second process started by mistake): the older writer's next
/// batch is refused, the newer one's lands, and the log stays one verifiable chain with the
/// fence (a copy of the last checkpoint) standing between the groups.
#[test]
fn a_writer_that_opens_fences_off_the_writers_before_it() {
    use ed25519_dalek::SigningKey;
    use ledger::chain::NewRecord;
    use ledger::Chain;
    use vocab::UtcNanos;

    let dir = tempfile::tempdir().unwrap();
    let cluster = LocalCluster::start(dir.path(), 1).unwrap();
    let settings = Settings { prefix: "FENCE".into(), ..Jet::new(&cluster).settings };
    let usa = Nation::parse("USA").unwrap();
    let key = SigningKey::from_bytes(&[5; 32]);
    let trusted: BTreeMap<Nation, VerifyingKey> = [(usa, key.verifying_key())].into();
    let group = |store: &mut JetStore, chain: &mut Chain, tag: u8| {
        let mut sealed = Vec::new();
        for i in 0..4u8 {
            let s = chain.seal(NewRecord {
                time: UtcNanos::from_nanos(i64::from(tag)),
                releasable_to: &[],
                kind: wire::RecordKind::Heartbeat,
                body: vec![tag, i],
            });
            store.append_record(usa, &s.bytes).unwrap();
            sealed.push(s.bytes);
        }
        let cp = chain.checkpoint(&key, UtcNanos::from_nanos(i64::from(tag)));
        store.append_checkpoint(usa, &cp, Some(&key.verifying_key())).unwrap();
        (sealed, store.commit())
    };
    let (mut older, _) = JetStore::open(&settings, &trusted, Some(usa)).unwrap();
    let mut older_chain = Chain::new(usa);
    let (first, done) = group(&mut older, &mut older_chain, 1);
    done.unwrap();

    let (mut newer, _) = JetStore::open(&settings, &trusted, Some(usa)).unwrap();
    let head = newer.heads().into_iter().find(|c| c.origin() == usa).unwrap();
    assert_eq!((head.seq(), head.covered(), head.head()), (4, 4, older_chain.head()));
    let mut newer_chain = Chain::resume(usa, 4, head.head(), 4);
    // The older writer goes on as if nothing happened: refused, and it stops.
    let (_, done) = group(&mut older, &mut older_chain, 2);
    let err = done.unwrap_err();
    assert!(err.to_string().contains("another process writes this log"), "{err}");
    assert!(matches!(older.commit(), Err(StoreError::Superseded(_))), "a fenced writer accepts nothing more");
    let (second, done) = group(&mut newer, &mut newer_chain, 3);
    done.unwrap();

    // One chain: the first group, the fence, the newer writer's group; it audits clean and
    // a reader gets each checkpoint once.
    let (store, recovery) = JetStore::open(&settings, &trusted, None).unwrap();
    assert_eq!(recovery.uncovered_records_kept, 0);
    let read: Vec<Vec<u8>> = store.read(usa, 1, usize::MAX).unwrap().into_iter().map(|r| r.bytes).collect();
    assert_eq!(read, [first, second].concat());
    let audit = store.audit(&trusted);
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].records, audit[0].covered, &audit[0].fault), (8, 8, &None), "{:?}", audit[0].fault);
    let entries = store.read_entries(usa, 1, usize::MAX).unwrap();
    let checkpoints: Vec<u64> =
        entries.iter().filter(|e| matches!(e, ledger::Entry::Checkpoint { .. })).map(|e| e.seq()).collect();
    assert_eq!(checkpoints, [4, 8]);

    // A writer killed mid-commit: its batch races the next writer's open. Whichever way each
    // round falls, the next writer's first commit lands, and the log holds the older batch
    // exactly when its commit said it did.
    let mut expected = read;
    let (mut older, mut older_chain) = (newer, newer_chain);
    for round in 0..24u8 {
        let (raced, opened) = std::thread::scope(|s| {
            let racing = s.spawn(|| {
                // Stagger the commit against the open (which takes some milliseconds).
                std::thread::sleep(Duration::from_micros(u64::from(round) * 250));
                group(&mut older, &mut older_chain, 10 + round)
            });
            let opened = JetStore::open(&settings, &trusted, Some(usa)).unwrap().0;
            (racing.join().unwrap(), opened)
        });
        let (sealed, done) = raced;
        if done.is_ok() {
            expected.extend(sealed);
        }
        let mut next = opened;
        let head = next.heads().into_iter().find(|c| c.origin() == usa).unwrap();
        assert_eq!(head.seq(), expected.len() as u64, "round {round}: the open saw the log as it is");
        let mut next_chain = Chain::resume(usa, head.seq(), head.head(), head.seq());
        let (sealed, done) = group(&mut next, &mut next_chain, 100 + round);
        done.unwrap_or_else(|e| panic!("round {round}: the new writer's first commit: {e}"));
        expected.extend(sealed);
        (older, older_chain) = (next, next_chain);
    }
    let (store, _) = JetStore::open(&settings, &trusted, None).unwrap();
    let read: Vec<Vec<u8>> = store.read(usa, 1, usize::MAX).unwrap().into_iter().map(|r| r.bytes).collect();
    assert_eq!(read, expected);
    assert_eq!(store.audit(&trusted)[0].fault, None);
}
