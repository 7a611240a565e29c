//! The log on JetStream against the embedded store, at the `LogStore` boundary: records of
//! about 1 KiB appended in groups, each group (its records and a signed checkpoint) made
//! durable by one commit, as the node's writer does. The same records go to `FileStore` (one
//! fdatasync per group), to a JetStream store on one `nats-server`, and to one on a
//! three-server cluster (3 replicas); every server runs with `sync_interval: always`, as
//! trilink requires. Prints records/s and the commit latency (p50, p99) of each, and the
//! ratios to `FileStore`.
//!
//!     TRILINK_PYTHON=.ci/venv/bin/python cargo run --release -p jetstore --example jetstream_bench
//!
//! The servers are real processes on this machine (`jetstore::local`), sharing its cores with
//! the benchmark.

use ed25519_dalek::SigningKey;
use jetstore::local::LocalCluster;
use jetstore::{JetStore, Settings};
use ledger::chain::NewRecord;
use ledger::{Chain, FileStore, LogStore};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use vocab::{Nation, UtcNanos};

const BODY_BYTES: usize = 1_000;

struct Run {
    records_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Appends `n` records in groups of `group` with a checkpoint each; one commit per group.
fn drive(store: &mut dyn LogStore, n: usize, group: usize) -> Run {
    let usa = Nation::parse("USA").expect("nation");
    let key = SigningKey::from_bytes(&[1; 32]);
    let mut chain = Chain::new(usa);
    let mut latencies = Vec::new();
    let t0 = Instant::now();
    let mut written = 0;
    while written < n {
        let t = Instant::now();
        for _ in 0..group {
            let sealed = chain.seal(NewRecord {
                time: UtcNanos::from_nanos(written as i64),
                releasable_to: &[],
                kind: wire::RecordKind::MeasurementBatch,
                body: vec![(written % 251) as u8; BODY_BYTES],
            });
            store.append_record(usa, &sealed.bytes).expect("append");
            written += 1;
        }
        let cp = chain.checkpoint(&key, UtcNanos::from_nanos(0));
        store.append_checkpoint(usa, &cp, Some(&key.verifying_key())).expect("checkpoint");
        store.commit().expect("commit");
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Run { records_per_s: written as f64 / elapsed, p50_ms: q(0.5), p99_ms: q(0.99) }
}

fn main() {
    let groups = [1usize, 16, 256];
    let n_for = |group: usize| (group * 400).clamp(2_000, 20_000);
    let mut rows: Vec<(String, usize, Run)> = Vec::new();
    for &group in &groups {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut store, _) = FileStore::open(dir.path(), &BTreeMap::new()).expect("open");
        rows.push(("FileStore".into(), group, drive(&mut store, n_for(group), group)));
    }
    for servers in [1usize, 3] {
        let dir = tempfile::tempdir().expect("tempdir");
        let cluster = LocalCluster::start(dir.path(), servers).expect("NATS");
        for &group in &groups {
            let settings = Settings {
                servers: cluster.urls(),
                monitors: cluster.monitors(),
                prefix: format!("BENCH{group}"),
                timeout: Duration::from_secs(30),
            };
            let (mut store, _) = JetStore::open(&settings, &BTreeMap::new(), None).expect("open");
            let label =
                format!("JetStream, {servers} server{} (R{})", if servers > 1 { "s" } else { "" }, store.replicas());
            rows.push((label, group, drive(&mut store, n_for(group), group)));
        }
    }
    println!(
        "{:<28} {:>6} {:>11} {:>9} {:>9} {:>12} {:>11}",
        "store", "group", "records/s", "p50 ms", "p99 ms", "÷ FileStore", "p50 ÷ File"
    );
    for (label, group, run) in &rows {
        let base = rows.iter().find(|(l, g, _)| l == "FileStore" && g == group).map(|r| &r.2).expect("peer");
        println!(
            "{label:<28} {group:>6} {:>11.0} {:>9.2} {:>9.2} {:>12.2} {:>11.2}",
            run.records_per_s,
            run.p50_ms,
            run.p99_ms,
            run.records_per_s / base.records_per_s,
            run.p50_ms / base.p50_ms
        );
    }
}
