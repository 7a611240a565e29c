//! A node whose log is on a real three-server NATS JetStream cluster (`store = "nats://…"`):
//! under ingest load, one NATS server is killed and then the node itself (SIGKILL). The node
//! keeps acknowledging through the server's death, comes back on the same streams, and every
//! acknowledged batch is in the log exactly once.

use crate::harness::*;
use jetstore::local::LocalCluster;
use ledger::LogStore;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Ingest clients posting 20-measurement batches until stopped; acknowledged seqs with their
/// ranges go into `acked`.
fn clients(
    addr: std::net::SocketAddr,
    acked: &Arc<Mutex<BTreeMap<u64, Vec<u64>>>>,
    base: u64,
    stop: &Arc<AtomicBool>,
    acks: &Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..3u64)
        .map(|c| {
            let (acked, stop, acks) = (acked.clone(), stop.clone(), acks.clone());
            std::thread::spawn(move || {
                let mut k = base + c * 100_000;
                while !stop.load(Ordering::Relaxed) {
                    let ranges: Vec<u64> = (0..20).map(|i| 100_000 + k * 20 + i).collect();
                    let time = now_rfc3339();
                    let body: String =
                        ranges.iter().map(|r| radar_line("JPN-FPS5-SADO", &time, *r as f64) + "\n").collect();
                    k += 1;
                    let auth = format!("Bearer {SADO_TOKEN}");
                    match request(addr, "POST", "/v1/ingest", &[("Authorization", auth.as_str())], body.as_bytes()) {
                        Ok((200, text)) => {
                            let v: serde_json::Value = serde_json::from_str(&text).expect("ack JSON");
                            let seq = v["seq"].as_u64().expect("seq");
                            assert!(acked.lock().expect("lock").insert(seq, ranges).is_none(), "seq {seq} acked twice");
                            acks.fetch_add(1, Ordering::Relaxed);
                        }
                        // The test's own batches are valid: a refusal means it loads nothing.
                        Ok((status @ 400..=499, text)) => panic!("a valid batch was refused ({status}): {text}"),
                        _ => {}
                    }
                }
            })
        })
        .collect()
}

/// The config lines that put a node's log on `cluster`, then `extra`.
fn on_cluster(cluster: &LocalCluster, extra: &str) -> String {
    format!(
        "store = {:?}\nstore_monitor = [{}]\n{extra}",
        cluster.urls().join(","),
        cluster.monitors().iter().map(|m| format!("{m:?}")).collect::<Vec<_>>().join(", ")
    )
}

/// Another process of `of`'s nation: its config (same sensors, same key, same store) with
/// `first_line` before it, on its own ports. The directory must outlive the process.
fn sibling(of: &Node, first_line: &str) -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().expect("tempdir");
    let http: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let grpc: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let text = format!("{first_line}{}", std::fs::read_to_string(&of.config).expect("config"))
        .replace(&format!("http = \"{}\"", of.http), &format!("http = \"{http}\""))
        .replace(&format!("grpc = \"{}\"", of.grpc), &format!("grpc = \"{grpc}\""));
    let config = dir.path().join("sibling.toml");
    std::fs::write(&config, text).expect("write");
    let node = Node::at(dir.path(), http, grpc, config);
    (dir, node)
}

#[test]
fn node_on_jetstream_survives_a_nats_server_and_its_own_kill_without_losing_or_repeating_an_ack() {
    let nats_dir = tempfile::tempdir().expect("tempdir");
    let mut cluster = LocalCluster::start(nats_dir.path(), 3).expect("NATS cluster");
    let top = on_cluster(&cluster, "");
    let mut node = Node::new(&top);
    assert!(node.log_text().contains("log on JetStream"), "{}", node.log_text());
    let acked: Arc<Mutex<BTreeMap<u64, Vec<u64>>>> = Arc::default();
    let acks = Arc::new(AtomicU64::new(0));

    // Load; one NATS server dies under it; the node goes on acknowledging.
    let stop = Arc::new(AtomicBool::new(false));
    let running = clients(node.http, &acked, 0, &stop, &acks);
    // Enough load first that the kill proves something; a slow disk can hold the first
    // JetStream writes for seconds, so wait for acknowledgements rather than for a time.
    wait_for("more than 20 acknowledgements before the kill", Duration::from_secs(60), || {
        acks.load(Ordering::Relaxed) > 20
    });
    cluster.kill_server(0);
    let at_kill = acks.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.load(Ordering::Relaxed) < at_kill + 30 {
        assert!(Instant::now() < deadline, "the node stopped acknowledging after a NATS server died");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Then the node itself is killed mid-stream.
    node.kill();
    stop.store(true, Ordering::Relaxed);
    for c in running {
        c.join().expect("client");
    }

    // It comes back on the two remaining servers and serves again.
    node.start();
    let stop = Arc::new(AtomicBool::new(false));
    let before = acks.load(Ordering::Relaxed);
    let running = clients(node.http, &acked, 500_000, &stop, &acks);
    let restarted = Instant::now();
    while acks.load(Ordering::Relaxed) < before + 30 && restarted.elapsed() < Duration::from_secs(40) {
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("first 30 acks after the restart took {:?}", restarted.elapsed());
    stop.store(true, Ordering::Relaxed);
    for c in running {
        c.join().expect("client");
    }
    assert!(acks.load(Ordering::Relaxed) > before, "the restarted node acknowledged nothing: {}", node.log_text());
    let status = get_json(node.http, "/v1/status");
    let head = status["log"]["seq"].as_u64().expect("seq");
    assert!(node.stop());
    cluster.start_server(0).expect("restart NATS server");
    cluster.wait_ready(Duration::from_secs(30)).expect("cluster");
    check_log(&cluster, &node.dir, head, &acked.lock().expect("lock"));

    // The offline audit re-verifies the whole chain on the cluster: with the node's key it
    // passes and covers the head; with another key the checkpoints are refused.
    let audit = |key: &str| {
        let mut cmd = trilink();
        cmd.args(["audit", "verify", &cluster.urls().join(","), "--prefix", "TRILINK_JPN", "--key", key]);
        for m in cluster.monitors() {
            cmd.args(["--monitor", &m]);
        }
        cmd.output().expect("audit")
    };
    let out = audit(&format!("JPN={}", node.dir.join("node.pub").display()));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && text.contains("ok: every origin verifies"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let covered: u64 = text
        .split("covered to seq ")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .and_then(|n| n.parse().ok())
        .expect("covered seq");
    assert!(covered >= head, "{text}");
    let other = tempfile::tempdir().expect("tempdir");
    assert!(trilink().args(["pki", "init", "--out"]).arg(other.path()).output().expect("pki").status.success());
    let out = audit(&format!("JPN={}", other.path().join("node.pub").display()));
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not by the key trusted"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The whole cluster goes away under load: the node refuses input (503) rather than
/// acknowledge what it cannot store, and when the cluster is back it reopens the log by itself
/// and acknowledges again — no operator restart — with every acknowledged batch logged once.
#[test]
fn a_node_on_jetstream_takes_input_again_by_itself_when_the_cluster_comes_back() {
    let nats_dir = tempfile::tempdir().expect("tempdir");
    let mut cluster = LocalCluster::start(nats_dir.path(), 1).expect("NATS server");
    let top = on_cluster(&cluster, "store_timeout_s = 2\n");
    let mut node = Node::new(&top);
    let acked: Arc<Mutex<BTreeMap<u64, Vec<u64>>>> = Arc::default();
    let acks = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let running = clients(node.http, &acked, 0, &stop, &acks);
    wait_acks(&acks, 20, "the node acknowledged nothing");

    cluster.kill_server(0);
    let line = |r: f64| radar_line("JPN-FPS5-SADO", &now_rfc3339(), r);
    wait_for("the node to refuse input with the cluster gone", Duration::from_secs(30), || {
        post_ndjson(node.http, Some(SADO_TOKEN), &line(7.0e5)).0 == 503
    });
    assert!(node.log_text().contains("refusing input until the log store answers again"), "{}", node.log_text());
    let status = get_json(node.http, "/v1/status");
    assert!(status["log"]["failed"].as_str().is_some_and(|f| f.contains("unavailable")), "{status}");
    cluster.start_server(0).expect("NATS server back");
    cluster.wait_ready(Duration::from_secs(30)).expect("the cluster back");
    let back = acks.load(Ordering::Relaxed);
    wait_acks(&acks, back + 30, "the node did not acknowledge again after the cluster came back");
    stop.store(true, Ordering::Relaxed);
    for c in running {
        c.join().expect("client");
    }
    assert!(node.log_text().contains("log reopened; acknowledging again"), "{}", node.log_text());
    assert!(get_json(node.http, "/v1/status")["log"]["failed"].is_null());

    // A second writer started by mistake on the same store takes the log (it fences at open).
    // The first is refused and, told that another process writes the log, does not reopen
    // and take it back: the two never alternate.
    let (_dir, mut second) = sibling(&node, "");
    assert_eq!(post_ndjson(node.http, Some(SADO_TOKEN), &line(7.1e5)).0, 503, "{}", node.log_text());
    assert!(node.log_text().contains("refusing all further input until restart"), "{}", node.log_text());
    let stop = Arc::new(AtomicBool::new(false));
    let before = acks.load(Ordering::Relaxed);
    let running = clients(second.http, &acked, 900_000, &stop, &acks);
    wait_acks(&acks, before + 30, "the second writer acknowledged nothing");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(post_ndjson(node.http, Some(SADO_TOKEN), &line(7.2e5)).0, 503, "the fenced writer took input again");
    wait_acks(&acks, acks.load(Ordering::Relaxed) + 10, "the second writer stopped acknowledging");
    stop.store(true, Ordering::Relaxed);
    for c in running {
        c.join().expect("client");
    }
    assert_eq!(node.log_text().matches("acknowledging again").count(), 1, "{}", node.log_text());
    let status = get_json(node.http, "/v1/status");
    assert!(
        status["log"]["failed"].as_str().is_some_and(|f| f.contains("another process writes this log")),
        "{status}"
    );
    let head = get_json(second.http, "/v1/status")["log"]["seq"].as_u64().expect("seq");
    assert!(second.stop());
    assert!(node.stop());
    check_log(&cluster, &node.dir, head, &acked.lock().expect("lock"));
}

/// Every acknowledged batch is in the log once, at its seq; no other record repeats one; the
/// log reaches `head`.
fn check_log(cluster: &LocalCluster, node_dir: &std::path::Path, head: u64, acked: &BTreeMap<u64, Vec<u64>>) {
    let key =
        ledger::keys::parse_public_key(&std::fs::read_to_string(node_dir.join("node.pub")).expect("pub")).expect("key");
    let jpn = vocab::Nation::parse("JPN").expect("nation");
    let settings = jetstore::Settings {
        servers: cluster.urls(),
        monitors: cluster.monitors(),
        prefix: jetstore::Settings::default_prefix(jpn),
        timeout: Duration::from_secs(20),
    };
    let (store, _) = jetstore::JetStore::open(&settings, &BTreeMap::from([(jpn, key)]), None).expect("open log");
    let mut seen: BTreeMap<Vec<u64>, u64> = BTreeMap::new();
    let mut from = 1;
    loop {
        let records = store.read(jpn, from, 5000).expect("read");
        let Some(last) = records.last() else { break };
        from = last.seq + 1;
        for r in &records {
            let Some(ranges) = radar_ranges(&r.bytes) else { continue };
            if let Some(other) = seen.insert(ranges, r.seq) {
                panic!("records {other} and {} hold the same batch", r.seq);
            }
        }
    }
    assert!(from > head, "the log ends at {} before the node's head {head}", from - 1);
    for (seq, ranges) in acked {
        assert_eq!(seen.get(ranges), Some(seq), "acknowledged batch at seq {seq} is not in the log at that seq");
    }
}

fn wait_acks(acks: &AtomicU64, at_least: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while acks.load(Ordering::Relaxed) < at_least {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Two processes of JPN's node on one store: the writer, and an ingest process that checks
/// sensors' batches and forwards them. Both acknowledge; the ingest process serves the log and
/// a picture fused from it that follows the writer; killing the ingest process does not stop
/// the writer; with the writer gone the ingest process refuses at once (503) instead of
/// acknowledging or hanging, and acknowledges again when the writer is back. Every
/// acknowledged batch is logged once.
#[test]
fn an_ingest_process_shares_the_nations_store_with_its_writer() {
    let nats_dir = tempfile::tempdir().expect("tempdir");
    let mut cluster = LocalCluster::start(nats_dir.path(), 3).expect("NATS cluster");
    let top = on_cluster(&cluster, "store_timeout_s = 5\n");
    let mut writer = Node::new(&top);
    // The ingest process: the writer's config (same sensors, same key), its own ports.
    let (_dir, mut ingest) = sibling(&writer, "store_role = \"ingest\"\n");
    assert!(ingest.log_text().contains("ingest process listening"), "{}", ingest.log_text());

    let acked: Arc<Mutex<BTreeMap<u64, Vec<u64>>>> = Arc::default();
    let (w_acks, i_acks) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let mut running = clients(writer.http, &acked, 0, &stop, &w_acks);
    running.extend(clients(ingest.http, &acked, 300_000, &stop, &i_acks));
    wait_acks(&i_acks, 30, "the ingest process acknowledged nothing");
    wait_acks(&w_acks, 30, "the writer acknowledged nothing");
    // The ingest process serves the log, and its own picture fused from it follows the writer.
    let (code, body) = get(ingest.http, "/v1/log/JPN?from=1&limit=5").expect("log");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["records"].as_array().map(Vec::len),
        Some(5)
    );
    let writer_head = get_json(writer.http, "/v1/status")["log"]["seq"].as_u64().expect("seq");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_json(ingest.http, "/v1/status")["log"]["fused_seq"].as_u64().unwrap_or(0) < writer_head {
        assert!(Instant::now() < deadline, "the ingest process's picture did not reach seq {writer_head}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, body) = get(ingest.http, "/v1/tracks").expect("tracks");
    assert!(code == 200 && body.contains("\"tracks\""), "{code} {body}");

    // The ingest process killed mid-stream: the writer goes on.
    ingest.kill();
    let w = w_acks.load(Ordering::Relaxed);
    wait_acks(&w_acks, w + 30, "the writer stopped when the ingest process died");
    stop.store(true, Ordering::Relaxed);
    for c in running {
        c.join().expect("client");
    }

    // The writer gone: the ingest process refuses at once; the writer back: it acknowledges.
    ingest.start();
    writer.kill();
    let t = Instant::now();
    let (code, body) =
        post_ndjson(ingest.http, Some(SADO_TOKEN), &radar_line("JPN-FPS5-SADO", &now_rfc3339(), 123_456.0));
    assert_eq!(code, 503, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("writer")), "{body}");
    assert!(t.elapsed() < Duration::from_secs(6), "the refusal took {:?}", t.elapsed());
    // The whole cluster down as well: the ingest process keeps asking it for the log's ends
    // (each ask waits up to the store's 5 s timeout), but without holding the store, so what
    // reads the store meanwhile (the status) still answers at once.
    for i in 0..3 {
        cluster.kill_server(i);
    }
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..6 {
        let t = Instant::now();
        let (code, body) = get(ingest.http, "/v1/status").expect("status");
        assert_eq!(code, 200, "{body}");
        assert!(t.elapsed() < Duration::from_secs(1), "the status took {:?} with the cluster down", t.elapsed());
        std::thread::sleep(Duration::from_millis(200));
    }
    for i in 0..3 {
        cluster.start_server(i).expect("NATS server back");
    }
    cluster.wait_ready(Duration::from_secs(30)).expect("the cluster back");
    writer.start();
    let stop = Arc::new(AtomicBool::new(false));
    let i = i_acks.load(Ordering::Relaxed);
    let running = clients(ingest.http, &acked, 600_000, &stop, &i_acks);
    wait_acks(&i_acks, i + 30, "the ingest process did not acknowledge after the writer came back");
    stop.store(true, Ordering::Relaxed);
    for c in running {
        c.join().expect("client");
    }
    let head = get_json(writer.http, "/v1/status")["log"]["seq"].as_u64().expect("seq");
    assert!(writer.stop());
    assert!(ingest.stop());
    check_log(&cluster, &writer.dir, head, &acked.lock().expect("lock"));
}
