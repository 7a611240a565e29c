//! Which engine holds the log: the segment-file `FileStore` against redb (an embedded
//! B-tree store with durable commits) and against a bare append + fdatasync, on the workload
//! the node gives it — records of about 1 KiB (a few radar plots) appended in groups, each
//! group made durable by one commit. Prints records/s and the ratios, then each engine's
//! commit latency (p50, p99, max) at the node's usual group size.
//!
//!     cargo run --release -p ledger --example store_bench
//!
//! Every engine does the same durable work per group: the bytes of its records and one sync.
//! FileStore also seals nothing here (records are pre-sealed) but verifies each record's
//! chain link and writes a signed checkpoint per group, which the others do not.

use ed25519_dalek::SigningKey;
use ledger::chain::NewRecord;
use ledger::{Chain, FileStore, LogStore};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;
use vocab::{Nation, UtcNanos};

const RECORDS: usize = 20_000;
const BODY_BYTES: usize = 1_000;
const TABLE: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("records");

fn records() -> Vec<Vec<u8>> {
    let mut chain = Chain::new(Nation::parse("USA").expect("nation"));
    (0..RECORDS)
        .map(|i| {
            chain
                .seal(NewRecord {
                    time: UtcNanos::from_nanos(i as i64),
                    releasable_to: &[],
                    kind: wire::RecordKind::MeasurementBatch,
                    body: vec![(i % 251) as u8; BODY_BYTES],
                })
                .bytes
        })
        .collect()
}

fn file_store(records: &[Vec<u8>], group: usize) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let usa = Nation::parse("USA").expect("nation");
    let key = SigningKey::from_bytes(&[1; 32]);
    let (mut store, _) = FileStore::open(dir.path(), &BTreeMap::new()).expect("open");
    let mut chain = Chain::new(usa);
    let t0 = Instant::now();
    let mut commits = Vec::new();
    for g in records.chunks(group) {
        let t = Instant::now();
        for r in g {
            chain.verify_next(r).expect("chain");
            store.append_record(usa, r).expect("append");
        }
        // As the node's writer does: the store takes the proof of the signature just made.
        let (cp, proof) = chain.checkpoint_proven(&key, UtcNanos::from_nanos(0));
        store.append_proven_checkpoint(usa, &cp, &proof, None).expect("checkpoint");
        store.commit().expect("commit");
        commits.push(t.elapsed().as_secs_f64());
    }
    Run::new(records.len(), t0, commits)
}

fn redb(records: &[Vec<u8>], group: usize) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = redb::Database::create(dir.path().join("log.redb")).expect("create");
    let t0 = Instant::now();
    let mut seq = 0u64;
    let mut commits = Vec::new();
    for g in records.chunks(group) {
        let t = Instant::now();
        let txn = db.begin_write().expect("txn");
        {
            let mut t = txn.open_table(TABLE).expect("table");
            for r in g {
                seq += 1;
                t.insert(seq, r.as_slice()).expect("insert");
            }
        }
        txn.commit().expect("commit");
        commits.push(t.elapsed().as_secs_f64());
    }
    Run::new(records.len(), t0, commits)
}

fn bare(records: &[Vec<u8>], group: usize) -> Run {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut f = std::fs::File::create(dir.path().join("bare")).expect("create");
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let mut commits = Vec::new();
    for g in records.chunks(group) {
        let t = Instant::now();
        buf.clear();
        for r in g {
            buf.extend_from_slice(&(r.len() as u32).to_le_bytes());
            buf.extend_from_slice(r);
        }
        f.write_all(&buf).expect("write");
        f.sync_data().expect("sync");
        commits.push(t.elapsed().as_secs_f64());
    }
    Run::new(records.len(), t0, commits)
}

/// One engine's run: records/s and each commit's latency in seconds, sorted.
struct Run {
    rate: f64,
    commits: Vec<f64>,
}

impl Run {
    fn new(records: usize, t0: Instant, mut commits: Vec<f64>) -> Run {
        commits.sort_by(f64::total_cmp);
        Run { rate: records as f64 / t0.elapsed().as_secs_f64(), commits }
    }

    /// The `q` quantile of commit latency, in ms.
    fn ms(&self, q: f64) -> f64 {
        let i = ((self.commits.len() as f64 * q) as usize).min(self.commits.len() - 1);
        self.commits[i] * 1e3
    }
}

fn main() {
    let records = records();
    println!("{RECORDS} records of ~{BODY_BYTES} B; records/s durable (higher is better)");
    println!(
        "{:>6} {:>12} {:>12} {:>12} {:>10} {:>10}",
        "group", "FileStore", "redb", "bare+sync", "File/redb", "File/bare"
    );
    let mut at_16 = None;
    for group in [1, 16, 256] {
        let n = if group == 1 { 2_000 } else { RECORDS };
        let runs = (file_store(&records[..n], group), redb(&records[..n], group), bare(&records[..n], group));
        let (f, r, b) = (runs.0.rate, runs.1.rate, runs.2.rate);
        println!("{group:>6} {f:>12.0} {r:>12.0} {b:>12.0} {:>10.2} {:>10.2}", f / r, f / b);
        if group == 16 {
            at_16 = Some(runs);
        }
    }
    if let Some((f, r, b)) = at_16 {
        println!("commit latency in groups of 16, ms (lower is better)");
        println!("{:>10} {:>8} {:>8} {:>8}", "engine", "p50", "p99", "max");
        for (name, run) in [("FileStore", &f), ("redb", &r), ("bare+sync", &b)] {
            println!("{name:>10} {:>8.2} {:>8.2} {:>8.2}", run.ms(0.5), run.ms(0.99), run.ms(1.0));
        }
        println!("FileStore p99 / bare p99: {:.2}", f.ms(0.99) / b.ms(0.99));
    }
}
