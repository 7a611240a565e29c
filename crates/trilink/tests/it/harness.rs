//! Real node processes for the end-to-end tests: a config in a temporary directory with free
//! loopback ports, a fresh signing key, the process itself (killed on drop), and a minimal
//! HTTP/1.1 client (std only, so the tests exercise the node's server and nothing else's).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn trilink() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_trilink"));
    c.current_dir(repo());
    c
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A free loopback port below the ephemeral range, so that no outgoing connection (which takes
/// an ephemeral source port) can hold it while a killed node restarts on it; unique within this
/// test process, and checked free by binding.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 12_000;
    const SPAN: u32 = 20_000;
    let base = std::process::id() * 7919 % SPAN;
    loop {
        let port = (LOW + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A node under test: its directory, addresses and process.
pub struct Node {
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    pub config: PathBuf,
    child: Option<Child>,
    /// Run inside this network namespace (`ip netns exec`), as a separate host.
    netns: Option<String>,
    /// Run through this command (which execs the node, e.g. `prlimit --nofile=… --`).
    pub wrapper: Vec<String>,
}

impl Node {
    /// A JPN node with the example config's sensors and areas; `extra` is appended to the
    /// config (TOML tables such as `[ingest]`).
    pub fn new(extra: &str) -> Node {
        Node::build(extra, false, &[])
    }

    /// `new`, its API over TLS (the certificate of `trilink pki init --nations JPN`, in
    /// `pki/jpn/` of its directory), which `request` and `get` then speak to it.
    pub fn new_tls(extra: &str) -> Node {
        Node::build(extra, true, &[])
    }

    /// `new`, the node run through `wrapper` (a command that execs it).
    pub fn new_wrapped(extra: &str, wrapper: &[&str]) -> Node {
        Node::build(extra, false, wrapper)
    }

    fn build(extra: &str, tls: bool, wrapper: &[&str]) -> Node {
        // Keys of a `[listen]` table in `extra` join the example's `[listen]` (which holds the
        // addresses the harness chose).
        let (extra, listen_keys) = match extra.strip_prefix("[listen]\n") {
            Some(rest) => {
                let end = rest.find("\n[").map(|i| i + 1).unwrap_or(rest.len());
                (&rest[end..], &rest[..end])
            }
            None => (extra, ""),
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = dir.path().join("pki");
        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let example = std::fs::read_to_string(repo().join("config/jpn.toml")).expect("example config");
        let areas = repo().join("config/areas");
        let mut text = String::new();
        let mut skip_table = false;
        for line in example.lines() {
            if line.starts_with('[') {
                // A single node: the example's federation tables are left out, and its CoT
                // listeners (fixed ports) too.
                let federation =
                    ["[federation]", "[[partner]]", "[[origin_key]]", "[cot]", "[[cot.listen]]", "[[cot.push]]"]
                        .contains(&line.trim());
                skip_table = federation || extra.contains(line.trim());
            }
            if skip_table {
                continue;
            }
            let line = match line.split_once(" = ").map(|(k, _)| k) {
                Some("data_dir") => format!("data_dir = {:?}", dir.path().join("log")),
                Some("signing_key") => format!("signing_key = {:?}", dir.path().join("node.key")),
                Some("http") => format!("http = \"{http}\""),
                Some("grpc") => format!("grpc = \"{grpc}\"\n{}", listen_keys.trim_end()),
                // The example's API certificate is the demo's: a test node has its own, or
                // serves plain on loopback.
                Some("tls_cert") if tls => format!("tls_cert = {:?}", pki.join("jpn/api.crt")),
                Some("tls_key") if tls => format!("tls_key = {:?}", pki.join("jpn/api.key")),
                Some("tls_cert") => "plain = true".to_string(),
                Some("tls_key") => continue,
                Some("file") => line.replace("areas/", &format!("{}/", areas.display())),
                _ => line.to_string(),
            };
            text.push_str(&line);
            text.push('\n');
        }
        // Top-level keys of `extra` (before its first table) go before every table.
        let table_at = if extra.starts_with('[') { 0 } else { extra.find("\n[").map(|i| i + 1).unwrap_or(extra.len()) };
        let (top, tables) = extra.split_at(table_at);
        let mut text = format!("{top}\n{text}");
        text.push_str(tables);
        text.push_str(&test_user());
        let config = dir.path().join("node.toml");
        std::fs::write(&config, text).expect("write config");
        let out = trilink().args(["pki", "init", "--out"]).arg(dir.path()).output().expect("pki");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        if tls {
            let out = trilink().args(["pki", "init", "--nations", "JPN", "--out"]).arg(&pki).output().expect("pki");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            trust(http, &pki.join("jpn/ca.crt"));
        }
        let wrapper = wrapper.iter().map(|w| w.to_string()).collect();
        let mut node = Node {
            dir: dir.path().to_path_buf(),
            _tmp: Some(dir),
            http,
            grpc,
            config,
            child: None,
            netns: None,
            wrapper,
        };
        node.start();
        node
    }

    /// A node of a config written by the caller in `dir` (which the caller keeps), started.
    pub fn at(dir: &Path, http: SocketAddr, grpc: SocketAddr, config: PathBuf) -> Node {
        Node::in_netns(dir, http, grpc, config, None)
    }

    /// `at`, inside network namespace `netns` when given.
    pub fn in_netns(dir: &Path, http: SocketAddr, grpc: SocketAddr, config: PathBuf, netns: Option<String>) -> Node {
        let mut node =
            Node { dir: dir.to_path_buf(), _tmp: None, http, grpc, config, child: None, netns, wrapper: Vec::new() };
        node.start();
        node
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("node.log")).expect("node log");
        let mut cmd = match &self.netns {
            None if !self.wrapper.is_empty() => {
                let mut c = Command::new(&self.wrapper[0]);
                c.args(&self.wrapper[1..]).arg(env!("CARGO_BIN_EXE_trilink")).current_dir(repo());
                c
            }
            None => trilink(),
            Some(ns) => {
                // `ip netns exec` execs the node, so the child's pid is the node's.
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.as_str(), env!("CARGO_BIN_EXE_trilink")]).current_dir(repo());
                c
            }
        };
        let child = cmd
            .args(["node", "--log", "info", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn node");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok((200, _)) = get(self.http, "/healthz") {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("node exited with {status}: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("node did not come up: {}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// The node process's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a graceful exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let Some(mut c) = self.child.take() else { return true };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        false
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Addresses whose API is TLS, with the client config that trusts their CA.
static TLS: std::sync::Mutex<Vec<(SocketAddr, std::sync::Arc<rustls::ClientConfig>)>> =
    std::sync::Mutex::new(Vec::new());

/// From now on `request` speaks TLS to `addr`, trusting the CA certificate in `ca`.
pub fn trust(addr: SocketAddr, ca: &Path) {
    let config = crate::https::client_config(ca).expect("CA certificate");
    let mut t = TLS.lock().expect("lock");
    t.retain(|(a, _)| *a != addr);
    t.push((addr, config));
}

pub fn tls_for(addr: SocketAddr) -> Option<std::sync::Arc<rustls::ClientConfig>> {
    TLS.lock().expect("lock").iter().find(|(a, _)| *a == addr).map(|(_, c)| c.clone())
}

/// One HTTP/1.1 request on its own connection (over TLS to a node `trust` was told of);
/// returns the status and body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let tls = tls_for(addr);
    let (status, text) =
        crate::https::exchange(addr, tls.as_ref(), method, path, headers, body, Duration::from_secs(30))?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A GET as the test suite's user (`TEST_TOKEN`, every role).
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    request(addr, "GET", path, &[("Authorization", &format!("Bearer {TEST_TOKEN}"))], b"")
}

/// The test suite's own user: every role but sensor, so that tests read everything.
pub const TEST_TOKEN: &str = "trilink-test-suite";

/// The `[[user]]` table of the test suite's user, for configs tests write.
pub fn test_user() -> String {
    format!(
        "\n[[user]]\nname = \"test suite\"\nroles = [\"viewer\", \"duty_officer\", \"analyst\", \"auditor\", \"admin\"]\ntoken_sha256 = \"{}\"\n",
        hex::encode(pki::token_hash(TEST_TOKEN))
    )
}

pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = get(addr, path).expect("GET");
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("JSON")
}

pub fn post_ndjson(addr: SocketAddr, token: Option<&str>, body: &str) -> (u16, serde_json::Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/x-ndjson")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let (status, text) = request(addr, "POST", "/v1/ingest", &headers, body.as_bytes()).expect("POST");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
}

/// A radar report line from the Sado radar at `time`, with a distinguishing range.
pub fn radar_line(sensor: &str, time: &str, range_m: f64) -> String {
    format!(
        r#"{{"type":"radar","time":"{time}","sensor":"{sensor}","nation":"JPN","site":{{"lat_deg":38.0,"lon_deg":138.3,"alt_m":400.0}},"range_m":{range_m},"az_rad":4.9,"el_rad":0.2,"sigma_range_m":40.0,"sigma_az_rad":0.0015,"sigma_el_rad":0.0015}}"#
    )
}

pub const SADO_TOKEN: &str = "demo-jpn-fps5-sado";

/// Polls `ok` every 100 ms until it holds; fails the test naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn now_rfc3339() -> String {
    journal::wall_clock().to_string()
}

pub fn audit(dir: &Path) -> std::process::Output {
    trilink().args(["audit", "verify"]).arg(dir).output().expect("audit")
}

/// A WebSocket client, just enough for the node's stream: the upgrade handshake, then text
/// frames (the server does not mask; frames are not fragmented by the node).
pub struct WsClient {
    stream: TcpStream,
}

impl WsClient {
    /// Connects as the test suite's user (a bearer token, as a tool would: no Origin).
    pub fn connect(addr: SocketAddr, path: &str) -> std::io::Result<WsClient> {
        let auth = format!("Bearer {TEST_TOKEN}");
        WsClient::connect_with(addr, path, &[("Authorization", &auth)])
    }

    /// Connects with these extra request headers (credentials, Origin, Host).
    pub fn connect_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> std::io::Result<WsClient> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let host = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("host")).map(|(_, v)| v.to_string());
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
            host.unwrap_or_else(|| addr.to_string())
        );
        for (k, v) in headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte)?;
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        if !head.starts_with("HTTP/1.1 101") {
            return Err(std::io::Error::other(format!("no upgrade: {head}")));
        }
        Ok(WsClient { stream })
    }

    /// The next text message, or None when the server closes.
    pub fn next_text(&mut self) -> std::io::Result<Option<String>> {
        loop {
            let mut h = [0u8; 2];
            self.stream.read_exact(&mut h)?;
            let opcode = h[0] & 0x0f;
            let mut len = u64::from(h[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.stream.read_exact(&mut b)?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.stream.read_exact(&mut b)?;
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.stream.read_exact(&mut payload)?;
            match opcode {
                0x1 => return Ok(Some(String::from_utf8_lossy(&payload).to_string())),
                0x8 => return Ok(None),
                _ => continue,
            }
        }
    }
}

/// The radar ranges (m, truncated) of a logged measurement-batch record, in order; `None` for
/// a record of another kind. Tests tell batches apart by the ranges they sent.
pub fn radar_ranges(record_bytes: &[u8]) -> Option<Vec<u64>> {
    use prost::Message;
    let record = wire::Record::decode(record_bytes).expect("record");
    if record.kind != wire::RecordKind::MeasurementBatch as i32 {
        return None;
    }
    let batch = wire::MeasurementBatch::decode(record.body.as_slice()).expect("batch");
    Some(
        batch
            .measurements
            .iter()
            .map(|m| match &m.obs {
                Some(wire::measurement::Obs::Radar(r)) => r.range_m as u64,
                _ => 0,
            })
            .collect(),
    )
}
