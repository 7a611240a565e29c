//! Cursor on Target output checked by independent TAK software (oracles/tak_stream.py, with
//! PyPI's pytak and takproto): a node driven by the bundled scenario streams XML CoT over TCP,
//! TAK protocol version 1 over TCP and over mutual TLS to pytak clients, and pushes to two TAK
//! server stand-ins (TAK protocol over TCP; XML over mutual TLS, Python's ssl checking the
//! node's client certificate); every decoded event's position matches what the node's API
//! published.

use crate::harness::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

fn python() -> Option<std::ffi::OsString> {
    std::env::var_os("TRILINK_PYTHON")
}

fn tak(python: &std::ffi::OsStr, args: &[&str]) -> Child {
    Command::new(python)
        .arg(repo().join("oracles/tak_stream.py"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tak_stream.py")
}

/// The decoded events a tak_stream.py run printed (its stderr when it failed).
fn events(child: Child) -> Vec<Value> {
    let out = child.wait_with_output().expect("tak_stream.py");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "tak_stream.py failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert!(lines.iter().all(|l| l.get("error").is_none()), "{text}");
    lines.into_iter().filter(|l| l.get("uid").is_some()).collect()
}

/// Metres between two points on a sphere (enough to check 1 m agreement).
fn metres(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dl = (lon2 - lon1).to_radians();
    let a = ((p2 - p1) / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_371_008.8 * a.sqrt().asin()
}

#[test]
fn tak_clients_and_servers_decode_the_node_cot_output() {
    let Some(py) = python() else {
        eprintln!("skipped: TRILINK_PYTHON is not set (.ci/run sets it)");
        return;
    };
    // A TAK PKI: the node's certificate serves CoT over TLS; the client presents one the
    // configured CA issued (here another of the same CA's certificates).
    let pki = tempfile::tempdir().expect("tempdir");
    let out = trilink().args(["pki", "init", "--nations", "JPN,USA", "--out"]).arg(pki.path()).output().expect("pki");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let jpn = pki.path().join("jpn");
    let usa = pki.path().join("usa");
    let (xml_port, proto_port, tls_port, push_port) = (free_port(), free_port(), free_port(), free_port());
    let tls_push_port = free_port();
    let mut server = tak(&py, &["server", &push_port.to_string(), "protobuf", "40"]);
    // A TAK server over mutual TLS (Python's ssl): its certificate is USA's node certificate,
    // and it requires a client certificate JPN's CA issued.
    let mut tls_server = tak(
        &py,
        &[
            "server",
            &tls_push_port.to_string(),
            "xml",
            "40",
            "--cert",
            usa.join("tls.crt").to_str().expect("path"),
            "--key",
            usa.join("tls.key").to_str().expect("path"),
            "--ca",
            jpn.join("ca.crt").to_str().expect("path"),
        ],
    );
    let mut server_out = BufReader::new(server.stdout.take().expect("stdout"));
    let mut tls_server_out = BufReader::new(tls_server.stdout.take().expect("stdout"));
    for out in [&mut server_out, &mut tls_server_out] {
        let mut first = String::new();
        out.read_line(&mut first).expect("server line");
        assert!(first.contains("listening"), "{first}");
    }
    let extra = format!(
        r#"
[cot]
track_stale_s = 10.0
min_interval_ms = 1000

[[cot.listen]]
address = "127.0.0.1:{xml_port}"
format = "xml"
plain = true

[[cot.listen]]
address = "127.0.0.1:{proto_port}"
format = "protobuf"
plain = true

[[cot.listen]]
address = "127.0.0.1:{tls_port}"
format = "protobuf"
tls_cert = {cert:?}
tls_key = {key:?}
client_ca = {ca:?}

[[cot.push]]
address = "127.0.0.1:{push_port}"
format = "protobuf"

[[cot.push]]
address = "127.0.0.1:{tls_push_port}"
format = "xml"
ca = {usa_ca:?}
cert = {cert:?}
key = {key:?}
server_name = "usa.node.trilink"
"#,
        cert = jpn.join("tls.crt"),
        key = jpn.join("tls.key"),
        ca = jpn.join("ca.crt"),
        usa_ca = usa.join("ca.crt"),
    );
    let mut node = Node::new(&extra);
    // The API's side: every track message of the WebSocket stream.
    let mut ws = WsClient::connect(node.http, "/v1/stream").expect("websocket");
    let stream = std::thread::spawn(move || {
        let mut messages = Vec::new();
        while let Ok(Some(m)) = ws.next_text() {
            messages.push(serde_json::from_str::<Value>(&m).expect("stream JSON"));
        }
        messages
    });
    let seconds = "30";
    let xml = tak(&py, &["client", &format!("tcp://127.0.0.1:{xml_port}"), "xml", seconds]);
    let proto = tak(&py, &["client", &format!("tcp://127.0.0.1:{proto_port}"), "protobuf", seconds]);
    let (cert, key, ca) = (jpn.join("tls.crt"), jpn.join("tls.key"), jpn.join("ca.crt"));
    let tls = tak(
        &py,
        &[
            "client",
            &format!("tls://127.0.0.1:{tls_port}"),
            "protobuf",
            seconds,
            "--cert",
            cert.to_str().expect("path"),
            "--key",
            key.to_str().expect("path"),
            "--ca",
            ca.to_str().expect("path"),
            "--hostname",
            "jpn.node.trilink",
        ],
    );
    // A client without a certificate of that CA is refused at the handshake.
    let stranger = tak(
        &py,
        &[
            "client",
            &format!("tls://127.0.0.1:{tls_port}"),
            "protobuf",
            "3",
            "--cert",
            pki.path().join("usa/tls.crt").to_str().expect("path"),
            "--key",
            pki.path().join("usa/tls.key").to_str().expect("path"),
            "--ca",
            ca.to_str().expect("path"),
            "--hostname",
            "jpn.node.trilink",
        ],
    );
    let url = format!("http://{}", node.grpc);
    let send = trilink()
        .args(["sim", "scenarios/mrbm-honshu.toml", "--send", &url, "--speed", "20", "--nation", "JPN"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sim --send");

    let mut rest = String::new();
    let server_events: Vec<Value> = {
        let _ = std::io::Read::read_to_string(&mut server_out, &mut rest);
        rest.lines()
            .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
            .inspect(|l| assert!(l.get("error").is_none(), "{l}"))
            .filter(|l| l.get("uid").is_some())
            .collect()
    };
    assert!(server.wait().expect("server").success(), "the TAK server stand-in failed");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut tls_server_out, &mut rest);
    assert!(tls_server.wait().expect("server").success(), "the TLS TAK server stand-in failed");
    let lines: Vec<Value> = rest.lines().map(|l| serde_json::from_str::<Value>(l).expect("JSON line")).collect();
    let peer = lines.iter().find_map(|l| l.get("peer")).expect("the TLS push presented no verified certificate");
    assert!(peer.to_string().contains("urn:trilink:nation:JPN"), "the push's client certificate: {peer}");
    let tls_push_events: Vec<Value> = lines
        .into_iter()
        .inspect(|l| assert!(l.get("error").is_none(), "{l}"))
        .filter(|l| l.get("uid").is_some())
        .collect();
    let xml = events(xml);
    let proto = events(proto);
    let tls = events(tls);
    let stranger_out = stranger.wait_with_output().expect("stranger");
    assert!(
        !stranger_out.status.success() || !String::from_utf8_lossy(&stranger_out.stdout).contains("\"uid\""),
        "a client of another CA got events"
    );
    let mut send = send;
    let _ = send.wait();
    // Stopping the node closes the WebSocket stream.
    assert!(node.stop(), "graceful stop failed: {}", node.log_text());
    let messages = stream.join().expect("stream thread");

    // What the API published: (track, time ms) -> (lat, lon, alt), and every impact and launch point.
    let mut api = std::collections::BTreeMap::new();
    let mut points = Vec::new();
    for m in messages.iter().filter(|m| m["type"] == "track") {
        let t = &m["data"];
        let ms =
            vocab::UtcNanos::parse_rfc3339(t["time"].as_str().expect("time")).expect("time").as_nanos() / 1_000_000;
        api.insert((t["track"].as_u64().expect("id"), ms), t.clone());
        for k in ["impact", "launch"] {
            if t[k].is_object() {
                points.push((k, t[k]["lat_deg"].as_f64().expect("lat"), t[k]["lon_deg"].as_f64().expect("lon")));
            }
        }
    }
    assert!(!api.is_empty(), "the API published no track");
    for (name, evs) in [
        ("xml/tcp", &xml),
        ("protobuf/tcp", &proto),
        ("protobuf/tls", &tls),
        ("push", &server_events),
        ("xml push/tls", &tls_push_events),
    ] {
        let kinds = |t: &str| evs.iter().filter(|e| e["type"] == t).count();
        assert!(
            kinds("a-h-A-W-M") > 0 && kinds("b-m-p-s-p-i") > 0 && kinds("a-h-G") > 0,
            "{name}: track, impact and launch events expected: {} events",
            evs.len()
        );
        let mut matched = 0;
        for e in evs {
            let uid = e["uid"].as_str().expect("uid");
            assert!(uid.starts_with("trilink.JPN."), "{uid}");
            let (lat, lon) = (e["lat"].as_f64().expect("lat"), e["lon"].as_f64().expect("lon"));
            let stale = e["stale_ms"].as_u64().expect("stale");
            assert!(stale >= e["start_ms"].as_u64().expect("start"), "{name}: stale before start: {e}");
            if e["type"] == "a-h-A-W-M" {
                if e["remarks"].as_str().unwrap_or("").contains("dropped") {
                    continue;
                }
                let id: u64 = uid.rsplit('.').next().expect("id").parse().expect("id");
                let Some(t) = api.get(&(id, e["start_ms"].as_u64().expect("start") as i64)) else { continue };
                let d = metres(lat, lon, t["lat_deg"].as_f64().expect("lat"), t["lon_deg"].as_f64().expect("lon"));
                let dh = (e["hae"].as_f64().expect("hae") - t["alt_m"].as_f64().expect("alt")).abs();
                assert!(d < 1.0 && dh < 1.0, "{name}: {uid} is {d:.3} m / {dh:.3} m from the API's position");
                matched += 1;
            } else {
                let kind = if e["type"] == "a-h-G" { "launch" } else { "impact" };
                let near = points.iter().any(|(k, la, lo)| *k == kind && metres(lat, lon, *la, *lo) < 1.0);
                assert!(near, "{name}: {kind} point {lat},{lon} is not one the API published");
            }
        }
        assert!(matched > 0, "{name}: no track event matched an API state by time");
    }
}
