//! Nobody reads or writes what they are not entitled to (docs/security.md): the route table
//! walked against a running node, a user of each role and an anonymous caller at every route;
//! the browser's session held to the node's own names and origin; the security headers.

use crate::harness::{request, Node, WsClient, SADO_TOKEN};
use access::{Role, Roles};

/// A user of each role (token `token-<role>`), for the table walk.
fn role_users() -> String {
    let mut t = String::new();
    for r in Role::ALL.into_iter().filter(|r| *r != Role::Sensor) {
        t += &format!(
            "[[user]]\nname = \"role {0}\"\nroles = [\"{0}\"]\ntoken_sha256 = \"{1}\"\n",
            r.as_str(),
            hex::encode(pki::token_hash(&format!("token-{}", r.as_str())))
        );
    }
    t
}

/// A concrete request path for a route's pattern.
fn concrete(path: &str) -> String {
    path.replace("{id}", "1").replace("{origin}", "JPN").replace("{file}", "app.js").replace("{object}", "indicator--1")
}

fn token_of(role: Role) -> String {
    if role == Role::Sensor {
        SADO_TOKEN.to_string()
    } else {
        format!("token-{}", role.as_str())
    }
}

/// Every route the HTTP listener serves refuses an anonymous caller (but the probes and the
/// login), answers each role as the table says, and is documented in openapi.json with the
/// same roles: a route added without a decision stops the node from building its router, and
/// a decision changed without its document fails here.
#[test]
fn every_route_asks_its_role_of_every_caller() {
    let node = Node::new(&role_users());
    let table = node::route_table();
    let openapi: serde_json::Value =
        serde_json::from_str(include_str!("../../../node/src/openapi.json")).expect("openapi");
    let mut documented = 0;
    for route in &table {
        let path = concrete(route.path);
        let login_body = format!("token={}", token_of(Role::Viewer));
        let body: &[u8] = if route.path == "/login" { login_body.as_bytes() } else { b"" };
        let form = [("Content-Type", "application/x-www-form-urlencoded")];
        let (status, text) = request(node.http, route.method, &path, &form, body).expect("anonymous request");
        if route.need == access::Need::Public {
            assert!(![401, 403].contains(&status), "{} {path} is public but refused: {status} {text}", route.method);
        } else if route.method == "GET" && (route.path == "/" || route.path.starts_with("/ui/")) {
            assert_eq!(status, 303, "{} {path}: an anonymous browser goes to /login", route.method);
        } else {
            assert_eq!(status, 401, "{} {path} answered an anonymous caller: {text}", route.method);
        }
        for role in Role::ALL {
            let auth = format!("Bearer {}", token_of(role));
            let (status, text) =
                request(node.http, route.method, &path, &[("Authorization", auth.as_str()), form[0]], body)
                    .expect("request");
            let allowed = route.need.allows(Roles::of(&[role]));
            if allowed {
                assert!(
                    ![401, 403].contains(&status),
                    "{} {path} refused a {}: {status} {text}",
                    route.method,
                    role.as_str()
                );
            } else {
                assert_eq!(status, 403, "{} {path} let a {} in: {text}", route.method, role.as_str());
                assert!(text.contains("this needs the role"), "{text}");
            }
        }
        // The document says the same.
        if route.path.starts_with("/taxii2/") || route.path == "/v1/cti/correlations" {
            continue; // TAXII's own document is the specification (docs/cti.md).
        }
        let op = &openapi["paths"][route.path][route.method.to_lowercase()];
        let roles: Vec<&str> = op["x-trilink-roles"]
            .as_array()
            .expect("x-trilink-roles")
            .iter()
            .map(|v| v.as_str().expect("role"))
            .collect();
        let want: Vec<&str> = match route.need {
            access::Need::Public => vec![],
            access::Need::Authenticated => vec!["any"],
            access::Need::AnyOf(rs) => rs.iter().map(|r| r.as_str()).collect(),
        };
        assert_eq!(roles, want, "openapi.json's roles for {} {}", route.method, route.path);
        documented += 1;
    }
    // Reads of raw records and TAXII are in the access audit, with who, what and the answer.
    let audit_path = node.dir.join("log/access-audit.jsonl");
    let audited = |who: &str, target: &str| {
        std::fs::read_to_string(&audit_path).unwrap_or_default().lines().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("audit line is JSON");
            v["who"] == who && v["target"] == target && v["status"].as_u64().is_some() && v["time"].is_string()
        })
    };
    crate::harness::wait_for("the access audit", std::time::Duration::from_secs(5), || {
        audited("role auditor", "/v1/log/JPN") && audited("role analyst", "/taxii2/api/collections/")
    });
    assert!(!audited("role viewer", "/v1/log/JPN"), "a refused read is a refusal, not an access");
    // Replays are rate-limited per credential: the auditor has used one of three.
    let auth = format!("Bearer {}", token_of(Role::Auditor));
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            request(node.http, "GET", "/v1/replay?minutes=1", &[("Authorization", auth.as_str())], b"")
                .expect("replay")
                .0
        })
        .collect();
    assert_eq!(statuses[2], 429, "the fourth replay within seconds: {statuses:?}");
    assert!(statuses[..2].iter().all(|s| *s != 429), "{statuses:?}");
    // And every documented operation is served.
    let ops: usize =
        openapi["paths"].as_object().expect("paths").values().map(|p| p.as_object().expect("ops").len()).sum();
    assert_eq!(ops, documented, "openapi.json documents operations the route table does not hold");
    eprintln!("{} routes walked, {documented} documented", table.len());
    // gRPC ingest takes only sensors' tokens.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut client =
            wire::ingest_client::IngestClient::connect(format!("http://{}", node.grpc)).await.expect("connect");
        for token in [None, Some("token-admin"), Some("token-viewer")] {
            let mut req = tonic::Request::new(wire::MeasurementBatch { measurements: vec![] });
            if let Some(t) = token {
                req.metadata_mut().insert("authorization", format!("Bearer {t}").parse().expect("header"));
            }
            let err = client.submit(req).await.expect_err("refused");
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{token:?}");
        }
    });
}

/// A page on another site can make an operator's browser send requests to the node, with its
/// session cookie, or under the attacker's own DNS name pointed at the node (DNS rebinding):
/// the node answers a session only under its own names and, for writes and the live stream,
/// only from its own origin. Finding 8 of issue 31: the stream took any Origin and any Host.
#[test]
fn a_session_is_honoured_only_from_the_nodes_own_origin_and_names() {
    let node = Node::new("");
    let host = node.http.to_string();
    let origin = format!("http://{host}");
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", origin.as_str())];
    // A login from another origin is refused; from the node's own page it sets the cookie.
    let evil = [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", "http://evil.example")];
    let (status, _) = request(node.http, "POST", "/login", &evil, b"token=demo-jpn-duty-officer").expect("login");
    assert_eq!(status, 403);
    let (status, _) = request(node.http, "POST", "/login", &form, b"token=wrong").expect("login");
    assert_eq!(status, 401);
    let cookie = login(node.http, &form);
    let c = [("Cookie", cookie.as_str())];
    let (status, body) = request(node.http, "GET", "/v1/session", &c, b"").expect("session");
    assert!(status == 200 && body.contains("JPN duty officer") && body.contains("duty_officer"), "{status} {body}");
    assert_eq!(request(node.http, "GET", "/v1/tracks", &c, b"").expect("tracks").0, 200);
    // Under another name (DNS rebinding) the session is not honoured.
    let (status, body) =
        request(node.http, "GET", "/v1/tracks", &[c[0], ("Host", "evil.example")], b"").expect("tracks");
    assert!(status == 403 && body.contains("not one of this node's names"), "{status} {body}");
    // A write from another origin, or with no origin at all, is refused; from its own, taken.
    let ack =
        |headers: &[(&str, &str)]| request(node.http, "POST", "/v1/alerts/none/ack", headers, b"{}").expect("ack").0;
    assert_eq!(ack(&[c[0], ("Origin", "http://evil.example")]), 403);
    assert_eq!(ack(&[c[0]]), 403);
    assert_eq!(
        ack(&[c[0], ("Origin", origin.as_str())]),
        404,
        "the node's own page reaches the handler (no such alert)"
    );
    // The live stream: another origin and another Host are refused, the node's own origin gets it.
    for headers in [
        vec![c[0], ("Origin", "http://evil.example")],
        vec![c[0], ("Origin", "http://evil.example:1"), ("Host", "evil.example:1")],
        vec![("Origin", origin.as_str())],
        vec![],
    ] {
        let refused = WsClient::connect_with(node.http, "/v1/stream", &headers);
        let err = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("403") || err.contains("401"), "{headers:?}: {err}");
    }
    let mut ws =
        WsClient::connect_with(node.http, "/v1/stream", &[c[0], ("Origin", origin.as_str())]).expect("own origin");
    assert!(ws.next_text().expect("snapshot").is_some_and(|t| t.contains("\"snapshot\"")));
    // Logged out, the cookie is dead.
    request(node.http, "POST", "/logout", &[c[0], ("Origin", origin.as_str())], b"").expect("logout");
    assert_eq!(request(node.http, "GET", "/v1/tracks", &c, b"").expect("tracks").0, 401);
    // Every answer carries the security headers.
    let (_, head) = raw_head(node.http, "/login");
    for h in [
        "content-security-policy: default-src 'self'",
        "x-frame-options: DENY",
        "x-content-type-options: nosniff",
        "referrer-policy: same-origin",
        "cache-control: no-store",
    ] {
        assert!(head.to_lowercase().contains(&h.to_lowercase()), "{h} not in {head}");
    }
}

/// Logs in with the demo duty officer's token; returns the `Cookie` header value.
fn login(addr: std::net::SocketAddr, form: &[(&str, &str)]) -> String {
    let (status, head) = raw(addr, "POST", "/login", form, b"token=demo-jpn-duty-officer");
    assert_eq!(status, 303, "{head}");
    let line = head.lines().find(|l| l.to_lowercase().starts_with("set-cookie:")).expect("Set-Cookie");
    let lower = line.to_lowercase();
    assert!(lower.contains("httponly") && lower.contains("samesite=strict") && lower.contains("max-age="), "{line}");
    line.split_once(':').expect("header").1.split(';').next().expect("cookie").trim().to_string()
}

fn raw_head(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    raw(addr, "GET", path, &[], b"")
}

/// A request whose response head is returned whole.
fn raw(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).to_string();
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_string();
    (head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0), head)
}

/// The API speaks TLS (finding 1 of issue 31: HTTP, TAXII and gRPC ingest were plaintext, so
/// the tokens they check crossed the network in clear): a plain request to the HTTP port gets
/// no answer, HTTPS does (with HSTS and a Secure session cookie), and gRPC ingest takes a
/// sensor's batch over TLS and nothing over plain HTTP/2.
#[test]
fn the_api_is_served_over_tls() {
    let node = Node::new_tls("");
    let tls = crate::harness::tls_for(node.http).expect("a TLS node");
    let (status, _) = raw(node.http, "GET", "/healthz", &[], b"");
    assert_eq!(status, 0, "plain HTTP to the TLS port got an HTTP answer");
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Origin", &format!("https://{}", node.http))];
    let origin = form[1].1.to_string();
    let form = [form[0], ("Origin", origin.as_str())];
    let (status, head) = crate::https::exchange(
        node.http,
        Some(&tls),
        "POST",
        "/login",
        &form,
        b"token=demo-jpn-duty-officer",
        std::time::Duration::from_secs(10),
    )
    .expect("https");
    assert_eq!(status, 303, "{head}");
    let lower = head.to_lowercase();
    assert!(lower.contains("strict-transport-security: max-age="), "{head}");
    let cookie = lower.lines().find(|l| l.starts_with("set-cookie:")).expect("cookie");
    assert!(cookie.contains("; secure") && cookie.contains("httponly"), "{cookie}");
    let ca = node.dir.join("pki/jpn/ca.crt");
    let line = crate::harness::radar_line("JPN-FPS5-SADO", &crate::harness::now_rfc3339(), 250_000.0);
    let m = ingest::to_wire(&ingest::parse_line(&line).expect("line"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(std::fs::read(&ca).expect("ca")));
        let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", node.grpc))
            .expect("url")
            .tls_config(tls)
            .expect("tls")
            .connect()
            .await
            .expect("connect over TLS");
        let mut client = wire::ingest_client::IngestClient::new(channel);
        let mut req = tonic::Request::new(wire::MeasurementBatch { measurements: vec![m.clone()] });
        req.metadata_mut().insert("authorization", format!("Bearer {SADO_TOKEN}").parse().expect("header"));
        let ack = client.submit(req).await.expect("submit over TLS").into_inner();
        assert_eq!(ack.accepted, 1);
        let plain = wire::ingest_client::IngestClient::connect(format!("http://{}", node.grpc)).await;
        if let Ok(mut c) = plain {
            let mut req = tonic::Request::new(wire::MeasurementBatch { measurements: vec![m] });
            req.metadata_mut().insert("authorization", format!("Bearer {SADO_TOKEN}").parse().expect("header"));
            assert!(c.submit(req).await.is_err(), "plain gRPC was served on the TLS port");
        }
    });
}

/// One request from source address `from` (another loopback address: another host, to the
/// node's per-source caps); the whole response, or the error.
fn from_source(from: &str, to: std::net::SocketAddr, request: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
        s.bind(format!("{from}:0").parse().map_err(|e: std::net::AddrParseError| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let mut c = tokio::time::timeout(std::time::Duration::from_secs(5), s.connect(to))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        c.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        tokio::time::timeout(std::time::Duration::from_secs(10), c.read_to_end(&mut out))
            .await
            .map_err(|_| "no answer in 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out).to_string())
    })
}

/// Finding 6 of issue 31: under the usual soft limit of 1,024 descriptors, 1,100 idle HTTP
/// connections stopped the node accepting anything — sensors included — until they went away,
/// and idle connections were never closed. Now the node raises its soft limit to the hard one
/// at start, one source holds at most its share of connections, a sensor and the health probe
/// from elsewhere keep working, and idle connections are closed after the idle timeout.
#[test]
fn idle_connections_from_one_host_keep_no_sensor_out() {
    let node = Node::new_wrapped("[listen]\nidle_timeout_s = 5\n", &["prlimit", "--nofile=1024:4096", "--"]);
    let raised = node.log_text().lines().any(|l| l.contains("API connection caps") && l.contains("4096"));
    assert!(raised, "the node raised its descriptor limit to the hard 4,096: {}", node.log_text());
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match std::net::TcpStream::connect(node.http) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect {}: {e}", idle.len()),
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let body = crate::harness::radar_line("JPN-FPS5-SADO", &crate::harness::now_rfc3339(), 260_000.0);
    let ingest = format!(
        "POST /v1/ingest HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {SADO_TOKEN}\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        node.http,
        body.len()
    );
    let status = from_source("127.0.0.2", node.http, &ingest).expect("a sensor on another host is served");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let probe = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", node.http);
    let status = from_source("127.0.0.3", node.http, &probe).expect("the probe is served");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // The idle host got its share (256) and no more; the rest were closed at once, counted.
    let metrics = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        node.http,
        crate::harness::TEST_TOKEN
    );
    // The node takes the connections from the kernel's queue as fast as it can; under load
    // that takes a moment.
    let refused = || -> u64 {
        let text = from_source("127.0.0.4", node.http, &metrics).expect("metrics");
        text.lines()
            .find_map(|l| l.strip_prefix("trilink_access_refused_total{reason=\"too_many_connections\"} "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    crate::harness::wait_for(
        "the connections over the per-source cap refused and counted",
        std::time::Duration::from_secs(20),
        || refused() >= 1100 - 256 - 1,
    );
    // After the idle timeout, the node has closed the idle ones it held.
    use std::io::Read;
    std::thread::sleep(std::time::Duration::from_secs(7));
    let mut closed = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(std::time::Duration::from_millis(50))).expect("timeout");
        if matches!(s.read(&mut [0u8; 1]), Ok(0)) {
            closed += 1;
        }
    }
    assert!(closed >= 1100 - 5, "{closed} of 1100 idle connections closed by the node");
}
