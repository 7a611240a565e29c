//! A real node process driven as in the field: the bundled scenario streamed by
//! `trilink sim --send`, the picture and alerts read over HTTP; kill -9 under load; bad input
//! of every kind; the offline audit of what it wrote.

use crate::harness::*;
use ledger::LogStore;
use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The "done when": a node from the example config, driven by `sim --send`, shows
/// tracks and an impact alert for Japan over HTTP, exports them, logs the alert changes, and
/// its log passes the audit after a graceful stop.
#[test]
fn node_tracks_and_warns_on_the_bundled_scenario() {
    let mut node = Node::new("");
    // A WebSocket client collects the stream of changes for the whole run.
    let mut ws = WsClient::connect(node.http, "/v1/stream").expect("websocket");
    let stream = std::thread::spawn(move || {
        let mut messages = Vec::new();
        while let Ok(Some(m)) = ws.next_text() {
            messages.push(serde_json::from_str::<serde_json::Value>(&m).expect("stream JSON"));
        }
        messages
    });
    let url = format!("http://{}", node.grpc);
    let mut send = trilink()
        .args(["sim", "scenarios/mrbm-honshu.toml", "--send", &url, "--speed", "40", "--nation", "JPN"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sim --send");
    let mut best_level = String::new();
    let mut exports = None;
    let mut saw_track = false;
    let deadline = Instant::now() + Duration::from_secs(240);
    while send.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "sim --send did not finish");
        let alerts = get_json(node.http, "/v1/alerts");
        for a in alerts["alerts"].as_array().expect("alerts") {
            assert_eq!(a["area"], "Japan");
            let level = a["level"].as_str().expect("level").to_string();
            if level == "impact" || best_level.is_empty() {
                best_level = level;
            }
        }
        let tracks = get_json(node.http, "/v1/tracks");
        if let Some(t) = tracks["tracks"].as_array().and_then(|t| t.first()) {
            saw_track = true;
            if t["impact"].is_object() && exports.is_none() {
                let id = t["track"].as_u64().expect("id");
                let geo = get(node.http, &format!("/v1/tracks/{id}/geojson")).expect("geojson");
                let kml = get(node.http, &format!("/v1/tracks/{id}/kml")).expect("kml");
                exports = Some((geo, kml));
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = send.wait_with_output().expect("sim output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 rejected"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(saw_track, "no track was shown: {}", node.log_text());
    assert_eq!(best_level, "impact", "no impact alert for Japan: {}", node.log_text());

    let (geo, kml) = exports.expect("a track with an impact prediction");
    assert_eq!(geo.0, 200);
    let geo: serde_json::Value = serde_json::from_str(&geo.1).expect("geojson");
    let kinds: Vec<&str> =
        geo["features"].as_array().expect("features").iter().filter_map(|f| f["properties"]["kind"].as_str()).collect();
    assert!(kinds.contains(&"impact") && kinds.contains(&"ellipse95"), "{kinds:?}");
    assert!(kml.0 == 200 && kml.1.contains("<kml") && kml.1.contains("95% impact ellipse"), "{}", kml.1);

    // The alert's life is in the log: raised, then withdrawn once the missile has landed.
    let mut states = Vec::new();
    let mut from = 1;
    loop {
        let page = get_json(node.http, &format!("/v1/log/JPN?from={from}&limit=1000"));
        let records = page["records"].as_array().expect("records");
        if records.is_empty() {
            break;
        }
        for r in records {
            if r["kind"] == "RECORD_KIND_ALERT" {
                states.push(r["body"]["state"].as_str().expect("state").to_string());
            }
        }
        from = page["next"].as_u64().expect("next");
    }
    assert_eq!(states.first().map(String::as_str), Some("ALERT_STATE_RAISED"), "{states:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !get_json(node.http, "/v1/alerts")["alerts"].as_array().expect("alerts").is_empty() {
        assert!(Instant::now() < deadline, "the alert was never withdrawn");
        std::thread::sleep(Duration::from_millis(200));
    }
    // And the landed missile's track is deleted (on a loaded machine that can come after the
    // alert's withdrawal); the stream must carry both before the node stops.
    while !get_json(node.http, "/v1/tracks")["tracks"].as_array().expect("tracks").is_empty() {
        assert!(Instant::now() < deadline, "the landed track was never deleted");
        std::thread::sleep(Duration::from_millis(200));
    }

    let metrics = get(node.http, "/metrics").expect("metrics").1;
    assert!(metrics.contains("trilink_ingest_measurements_accepted_total 720"), "{metrics}");
    let openapi = get_json(node.http, "/openapi.json");
    assert_eq!(openapi["openapi"].as_str().map(|v| &v[..2]), Some("3."));

    assert!(node.stop(), "graceful stop failed: {}", node.log_text());
    // The stream began with a snapshot, carried the track and the alert's life, and was
    // closed by the node's shutdown.
    let messages = stream.join().expect("stream thread");
    assert_eq!(messages.first().map(|m| m["type"].clone()), Some(serde_json::json!("snapshot")));
    let has = |kind: &str, change: Option<&str>| {
        messages.iter().any(|m| m["type"] == kind && change.is_none_or(|c| m["change"] == c))
    };
    assert!(has("track", None) && has("launch", None) && has("track_deleted", None), "{} messages", messages.len());
    assert!(has("alert", Some("raised")) && has("alert", Some("withdrawn")), "{} messages", messages.len());
    let audit = audit(&node.log_dir());
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success() && text.contains("ok: every origin verifies"), "{text}");
}

/// kill -9 at random moments under load, many times: every acknowledged batch is in the log,
/// with exactly the measurements sent, and the log always verifies; each restart rebuilds the
/// picture from the log.
#[test]
fn kill_9_under_load_loses_no_acknowledged_record() {
    let mut node = Node::new("");
    let acked: Arc<Mutex<BTreeMap<u64, Vec<u64>>>> = Arc::default();
    let mut counter = 0u64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    const CYCLES: usize = 8;
    const CLIENTS: usize = 4;
    const PER_CLIENT: u64 = 20_000;
    for cycle in 0..CYCLES {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (acked, stop, addr) = (acked.clone(), stop.clone(), node.http);
            // Each client's batches are numbered from its own base; a batch's ranges are
            // 100 km plus twenty metres per number, under the 50,000 km any range must be.
            let base = counter + c as u64 * PER_CLIENT;
            clients.push(std::thread::spawn(move || {
                let mut k = base;
                while !stop.load(Ordering::Relaxed) {
                    assert!(k < base + PER_CLIENT, "client {c} ran out of batch numbers");
                    let ranges: Vec<u64> = (0..20).map(|i| 100_000 + k * 20 + i).collect();
                    let time = now_rfc3339();
                    let body: String =
                        ranges.iter().map(|r| radar_line("JPN-FPS5-SADO", &time, *r as f64) + "\n").collect();
                    k += 1;
                    let auth = format!("Bearer {SADO_TOKEN}");
                    let headers = [("Authorization", auth.as_str())];
                    // A connection error or a cut response is an unacknowledged batch.
                    match request(addr, "POST", "/v1/ingest", &headers, body.as_bytes()) {
                        Ok((200, text)) => {
                            let v: serde_json::Value = serde_json::from_str(&text).expect("ack JSON");
                            let seq = v["seq"].as_u64().expect("seq");
                            assert!(
                                acked.lock().expect("lock").insert(seq, ranges).is_none(),
                                "seq {seq} acknowledged twice"
                            );
                        }
                        // The test's own batches are valid: a refusal means it loads nothing.
                        Ok((status @ 400..=499, text)) => panic!("a valid batch was refused ({status}): {text}"),
                        _ => {}
                    }
                }
            }));
        }
        counter += CLIENTS as u64 * PER_CLIENT;
        // Some load in every cycle (a slow disk can hold the first writes for seconds), then
        // the kill at a random moment.
        let before = acked.lock().expect("lock").len();
        wait_for(&format!("eight acknowledgements in cycle {cycle}"), Duration::from_secs(60), || {
            acked.lock().expect("lock").len() >= before + 8
        });
        std::thread::sleep(Duration::from_millis(200 + next() % 600));
        node.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("client");
        }
        let audit = audit(&node.log_dir());
        assert!(audit.status.success(), "cycle {cycle}: {}", String::from_utf8_lossy(&audit.stdout));
        node.start();
        // The restarted node replays its log into fusion.
        let status = get_json(node.http, "/v1/status");
        let seq = status["log"]["seq"].as_u64().expect("seq");
        assert!(
            seq >= acked.lock().expect("lock").keys().last().copied().unwrap_or(0),
            "cycle {cycle}: log behind acks"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while get_json(node.http, "/v1/status")["log"]["fused_seq"].as_u64() != Some(seq) {
            assert!(Instant::now() < deadline, "replay did not reach seq {seq}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(node.stop());
    let acked = acked.lock().expect("lock");
    assert!(acked.len() > 50, "too little load to prove anything: {} acks", acked.len());
    let key =
        ledger::keys::parse_public_key(&std::fs::read_to_string(node.dir.join("node.pub")).expect("pub")).expect("key");
    let jpn = vocab::Nation::parse("JPN").expect("nation");
    let (store, _) = ledger::FileStore::open(&node.log_dir(), &BTreeMap::from([(jpn, key)])).expect("open log");
    for (seq, ranges) in acked.iter() {
        let r = store.read(jpn, *seq, 1).expect("read");
        assert_eq!(r.first().map(|r| r.seq), Some(*seq), "acknowledged seq {seq} missing");
        let got = radar_ranges(&r[0].bytes).expect("a measurement batch");
        assert_eq!(&got, ranges, "seq {seq} holds other measurements than were acknowledged");
    }
}

/// `fusion.realtime_priority` puts the fusion thread — and only it — under SCHED_FIFO when
/// this machine lets a process do so, and the node says which applies; where it may not, the
/// node warns and fuses at normal priority. Whether it may is asked of util-linux's `chrt`.
#[test]
fn fusion_runs_under_sched_fifo_when_configured() {
    let mut node = Node::new("[fusion]\nreorder_window_ms = 250\nrealtime_priority = 7\n");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let may = cpus >= 2 && Command::new("chrt").args(["-f", "7", "true"]).status().is_ok_and(|s| s.success());
    let why = if !may && cpus < 2 { "on a machine of one CPU" } else { "could not be applied" };
    // The fusion thread raises itself as it starts, which may be after the API answers.
    wait_for("fusion to settle its scheduling", Duration::from_secs(10), || {
        let applied = get_json(node.http, "/v1/status")["fusion"]["realtime_priority"] == 7;
        if may {
            applied
        } else {
            node.log_text().contains(why)
        }
    });
    let pid = node.pid().expect("node runs");
    // /proc/PID/task/TID/stat: after the command's ")", field 3 onwards; rt_priority is field
    // 40 and policy field 41 (0 normal, 1 SCHED_FIFO).
    let mut threads = BTreeMap::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let t = t.expect("task").path();
        let comm = std::fs::read_to_string(t.join("comm")).unwrap_or_default().trim().to_string();
        // A thread may end between the listing and the read (tokio's blocking pool): skipped.
        let Ok(stat) = std::fs::read_to_string(t.join("stat")) else { continue };
        let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, f)| f.split_whitespace().collect()).unwrap_or_default();
        let (prio, policy) = (fields[37].parse::<u32>().expect("prio"), fields[38].parse::<u32>().expect("policy"));
        threads.entry(comm).or_insert_with(Vec::new).push((prio, policy));
    }
    let fusion = threads.get("fusion").expect("a thread named fusion");
    let status = get_json(node.http, "/v1/status");
    if may {
        assert_eq!(fusion, &vec![(7, 1)], "{threads:?}");
        assert_eq!(status["fusion"]["realtime_priority"], 7);
        assert!(node.log_text().contains("fusion runs under SCHED_FIFO"), "{}", node.log_text());
        let others: Vec<_> = threads.iter().filter(|(n, v)| *n != "fusion" && v.iter().any(|t| t.1 != 0)).collect();
        assert!(others.is_empty(), "only fusion is real-time: {others:?}");
    } else {
        assert_eq!(fusion, &vec![(0, 0)], "{threads:?}");
        assert_eq!(status["fusion"]["realtime_priority"], 0);
        assert!(node.log_text().contains(why), "{}", node.log_text());
    }
    let (_, metrics) = get(node.http, "/metrics").expect("metrics");
    let want = if may { 7 } else { 0 };
    assert!(metrics.contains(&format!("trilink_fusion_realtime_priority {want}")), "{metrics}");
    // It fuses: a report reaches fusion's cursor.
    let (code, v) = post_ndjson(node.http, Some(SADO_TOKEN), &radar_line("JPN-FPS5-SADO", &now_rfc3339(), 250_000.0));
    assert_eq!(code, 200, "{v}");
    wait_for("fusion to read the report", Duration::from_secs(10), || {
        get_json(node.http, "/v1/status")["log"]["fused_seq"].as_u64() >= Some(1)
    });
    assert!(node.stop(), "graceful stop: {}", node.log_text());
}

/// Every kind of bad input gets a clear error and a counter; the node keeps running and what
/// it refused never reaches the log.
#[test]
fn bad_input_is_refused_clearly_and_counted() {
    let mut node = Node::new(
        "[ingest]\nmax_future_s = 60.0\nmax_age_s = 3600.0\nmax_batch_measurements = 50\nmax_body_bytes = 65536\n",
    );
    let now = now_rfc3339();
    let good = radar_line("JPN-FPS5-SADO", &now, 250_000.0);
    let check = |token: Option<&str>, body: &str, status: u16, want: &str| {
        let (got, v) = post_ndjson(node.http, token, body);
        assert_eq!(got, status, "{body:.200}: {v}");
        assert!(v.to_string().contains(want), "{want:?} not in {v}");
    };
    // HTTP's door refuses an unknown caller before ingest sees the batch (counted as an access
    // refusal); gRPC's ingest counts its own.
    check(None, &good, 401, "send `Authorization: Bearer <token>`");
    check(Some("not-a-token"), &good, 401, "send `Authorization: Bearer <token>`");
    check(Some(crate::harness::TEST_TOKEN), &good, 403, "this needs the role sensor");
    check(Some(SADO_TOKEN), "{\"type\":\"radar\"", 400, "\"line\":1");
    check(Some(SADO_TOKEN), &good.replace("\"el_rad\":0.2", "\"el_rad\":3.0"), 400, "el_rad");
    let tomorrow = journal::wall_clock().add_secs_f64(86_400.0).to_string();
    check(Some(SADO_TOKEN), &radar_line("JPN-FPS5-SADO", &tomorrow, 1e5), 400, "in_future");
    let last_year = journal::wall_clock().add_secs_f64(-86_400.0 * 365.0).to_string();
    check(Some(SADO_TOKEN), &radar_line("JPN-FPS5-SADO", &last_year, 1e5), 400, "too_old");
    check(Some(SADO_TOKEN), &radar_line("JPN-DDG-SOJ", &now, 1e5), 400, "wrong_sensor");
    check(Some(SADO_TOKEN), &"x".repeat(70_000), 413, "exceeds 65536 bytes");
    check(Some(SADO_TOKEN), &format!("{good}\n").repeat(51), 413, "batch limit of 50");
    check(Some(SADO_TOKEN), "\n\n", 400, "empty batch");
    check(Some(SADO_TOKEN), &format!("{good}\nnot json\n"), 200, "\"accepted\":1");
    // Raw garbage on both ports does not hurt the node.
    for addr in [node.http, node.grpc] {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            use std::io::Write;
            let _ = s.write_all(&[0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0xff].repeat(1000));
        }
    }
    // gRPC: unauthenticated, an invalid measurement, and a good one.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut client =
            wire::ingest_client::IngestClient::connect(format!("http://{}", node.grpc)).await.expect("connect");
        let line = ingest::parse_line(&good).expect("good line");
        let mut bad = ingest::to_wire(&line);
        if let Some(wire::measurement::Obs::Radar(r)) = &mut bad.obs {
            r.sigma_range_m = -1.0;
        }
        let err = client
            .submit(wire::MeasurementBatch { measurements: vec![ingest::to_wire(&line)] })
            .await
            .expect_err("no token");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let mut req = tonic::Request::new(wire::MeasurementBatch { measurements: vec![bad, ingest::to_wire(&line)] });
        req.metadata_mut().insert("authorization", format!("Bearer {SADO_TOKEN}").parse().expect("header"));
        let ack = client.submit(req).await.expect("submit").into_inner();
        assert_eq!((ack.accepted, ack.rejected), (1, 1));
        assert!(ack.rejections[0].reason.contains("sigma_range_m"), "{:?}", ack.rejections);
    });
    let metrics = get(node.http, "/metrics").expect("metrics").1;
    for (reason, n) in [
        ("unauthenticated", 1),
        ("malformed", 2),
        ("out_of_range", 2),
        ("in_future", 1),
        ("too_old", 1),
        ("wrong_sensor", 1),
        ("oversized", 2),
    ] {
        let line = format!("trilink_ingest_rejected_total{{reason=\"{reason}\"}} {n}");
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    assert!(metrics.contains("trilink_ingest_measurements_accepted_total 2"), "{metrics}");
    for (reason, n) in [("unauthenticated", 2), ("forbidden", 1)] {
        let line = format!("trilink_access_refused_total{{reason=\"{reason}\"}} {n}");
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    assert_eq!(get(node.http, "/healthz").expect("healthz").0, 200);
    let log = get_json(node.http, "/v1/log/JPN?from=1");
    assert_eq!(log["records"].as_array().expect("records").len(), 2, "{log}");
    // Bad queries are refused, not crashes.
    assert_eq!(get(node.http, "/v1/log/Japan").expect("log").0, 400);
    let (status, body) = get(node.http, "/v1/log/JPN?from=x").expect("log");
    assert!(status == 400 && body.contains("\"error\":\"bad query"), "{status} {body}");
    assert_eq!(get(node.http, "/v1/log/JPN?limit=1001").expect("log").0, 400);
    assert_eq!(get(node.http, "/v1/tracks/abc").expect("track").0, 400);
    assert_eq!(get(node.http, "/v1/tracks/999").expect("track").0, 404);
    grpc_stream_keeps_order(&mut node);
}

/// One gRPC stream sends its batches without waiting for acknowledgements (the node stages
/// each while earlier ones are in the group commit): the acknowledgements come back one per
/// batch, in order, each naming the record that holds exactly that batch's good measurements,
/// and a bad batch mid-stream ends the stream with its error after the good ones before it.
fn grpc_stream_keeps_order(node: &mut Node) {
    const BATCHES: u64 = 300;
    let now = now_rfc3339();
    let line = |range: u64| {
        ingest::to_wire(&ingest::parse_line(&radar_line("JPN-FPS5-SADO", &now, range as f64)).expect("line"))
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (acks, end) = rt.block_on(async {
        let mut client =
            wire::ingest_client::IngestClient::connect(format!("http://{}", node.grpc)).await.expect("connect");
        let mut batches: Vec<wire::MeasurementBatch> =
            (0..BATCHES).map(|i| wire::MeasurementBatch { measurements: vec![line(300_000 + i)] }).collect();
        // One with a bad measurement beside a good one: half accepted, in its place.
        let mut bad = line(1);
        if let Some(wire::measurement::Obs::Radar(r)) = &mut bad.obs {
            r.el_rad = 3.0;
        }
        batches[100].measurements.insert(0, bad);
        // Then an empty batch, which ends the stream with an error.
        batches.push(wire::MeasurementBatch { measurements: Vec::new() });
        let mut req = tonic::Request::new(tokio_stream::iter(batches));
        req.metadata_mut().insert("authorization", format!("Bearer {SADO_TOKEN}").parse().expect("header"));
        let mut stream = client.stream(req).await.expect("stream").into_inner();
        let mut acks = Vec::new();
        loop {
            match stream.message().await {
                Ok(Some(ack)) => acks.push(ack),
                Ok(None) => break (acks, None),
                Err(status) => break (acks, Some(status)),
            }
        }
    });
    let end = end.expect("the empty batch ends the stream with an error");
    assert_eq!(end.code(), tonic::Code::InvalidArgument, "{end:?}");
    assert_eq!(acks.len() as u64, BATCHES, "one acknowledgement per good batch");
    assert_eq!((acks[100].accepted, acks[100].rejected), (1, 1), "{:?}", acks[100]);
    assert!(acks.windows(2).all(|w| w[0].seq < w[1].seq), "acknowledged out of order");
    assert!(node.stop(), "{}", node.log_text());
    let key =
        ledger::keys::parse_public_key(&std::fs::read_to_string(node.dir.join("node.pub")).expect("pub")).expect("key");
    let jpn = vocab::Nation::parse("JPN").expect("nation");
    let (store, _) = ledger::FileStore::open(&node.log_dir(), &BTreeMap::from([(jpn, key)])).expect("open log");
    for (i, ack) in acks.iter().enumerate() {
        let r = store.read(jpn, ack.seq, 1).expect("read");
        assert_eq!(radar_ranges(&r[0].bytes), Some(vec![300_000 + i as u64]), "batch {i} at seq {}", ack.seq);
    }
}

/// The node's API against its own OpenAPI document, checked by an independent client:
/// schemathesis generates valid and invalid requests for every operation (the NDJSON ingest and
/// the WebSocket stream, which it cannot generate, are covered above) and checks statuses,
/// content types and response schemas. Runs when `TRILINK_PYTHON` names the CI virtualenv.
#[test]
fn api_conforms_to_its_openapi_document() {
    let Some(python) = std::env::var_os("TRILINK_PYTHON") else {
        eprintln!("skipped: TRILINK_PYTHON is not set (.ci/run sets it)");
        return;
    };
    let schemathesis = std::path::Path::new(&python).with_file_name("schemathesis");
    let node = Node::new("");
    // Something in the picture and the log for the generated requests to find.
    let (status, _) = post_ndjson(node.http, Some(SADO_TOKEN), &radar_line("JPN-FPS5-SADO", &now_rfc3339(), 300_000.0));
    assert_eq!(status, 200);
    let base = format!("http://{}", node.http);
    let document = crate::harness::repo().join("crates/node/src/openapi.json");
    let auth = format!("Authorization: Bearer {}", crate::harness::TEST_TOKEN);
    let out = std::process::Command::new(&schemathesis)
        .arg("run")
        .arg(&document)
        .args(["--url", &base, "--max-examples", "40", "--seed", "1", "-H", &auth])
        .args(["--exclude-path", "/v1/stream", "--exclude-path", "/v1/ingest"])
        // Its example database goes with the node's temporary directory, not into the repo.
        .current_dir(&node.dir)
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found failures:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("passed"), "{text}");
}

/// Issue 32, finding 7: a node started with a signing key others may read. Whoever reads it
/// signs records as the nation: the node refuses to start and says how to fix it.
#[test]
fn a_signing_key_others_may_read_is_refused() {
    let mut node = Node::new("");
    assert!(node.stop(), "graceful stop");
    let key = node.dir.join("node.key");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = trilink().args(["node", "--config"]).arg(&node.config).output().expect("node");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("may be read by others (mode 644)") && err.contains("chmod 600"),
        "{err}"
    );
}
