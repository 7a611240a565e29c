//! `trilink demo`: the federation of the example configs (config/usa.toml, jpn.toml, kor.toml:
//! hub and spoke through USA) on this machine. Makes the test PKI if missing, starts the three
//! nodes as separate processes, waits until each answers, then streams the bundled scenario
//! with each nation's sensors sent to its own node, over and over. Ctrl-C (or SIGTERM) stops
//! the sender and then each node gracefully (SIGTERM), and waits for them.

use crate::Failure;
use anyhow::{anyhow, Context};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// The repository (config/, scenarios/; run/ is created in it).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Scenario streamed by the nations' sensors.
    #[arg(long, default_value = "scenarios/mrbm-honshu.toml")]
    scenario: PathBuf,
    /// Times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Stream the scenario once, then stop everything (default: repeat until Ctrl-C).
    #[arg(long)]
    once: bool,
}

/// The example federation: nation, config, HTTP port, gRPC port.
const NODES: [(&str, &str, u16, u16); 3] = [
    ("USA", "config/usa.toml", 8081, 50061),
    ("JPN", "config/jpn.toml", 8082, 50062),
    ("KOR", "config/kor.toml", 8083, 50063),
];

/// Whether something already listens on 127.0.0.1:`port`.
fn port_taken(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

/// One HTTPS GET of `path` on 127.0.0.1:`port`, trusting the nation's CA: the status code.
fn https_status(pki: &Path, nation: &str, port: u16, path: &str) -> Option<u16> {
    let tls = crate::https::client_config(&pki.join(nation.to_lowercase()).join("ca.crt")).ok()?;
    let addr = ([127, 0, 0, 1], port).into();
    crate::https::exchange(addr, Some(&tls), "GET", path, &[], b"", Duration::from_secs(2)).ok().map(|(s, _)| s)
}

/// The API certificates of a PKI made before nodes served TLS: issued by each nation's CA.
fn add_api_certs(pki: &Path) -> anyhow::Result<()> {
    for (nation, ..) in NODES {
        let dir = pki.join(nation.to_lowercase());
        if dir.join("api.crt").exists() {
            continue;
        }
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f)).with_context(|| format!("failed to read {}", dir.join(f).display()))
        };
        let ca = pki::Pem { cert: read("ca.crt")?, key: read("ca.key")? };
        let api = pki::make_api_cert(vocab::Nation::parse(nation)?, &ca, pki::Validity::days_from_now(365), &[])?;
        pki::write_file(&dir.join("api.crt"), &api.cert, false)?;
        pki::write_file(&dir.join("api.key"), &api.key, true)?;
    }
    Ok(())
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

struct Running {
    children: Vec<(String, Child)>,
    /// The federation's PKI (run/pki): the nations' CAs verify the nodes' HTTPS.
    pki: PathBuf,
}

impl Running {
    /// SIGTERM to each, then wait (SIGKILL after 20 s).
    fn stop(&mut self) {
        for (_, c) in &self.children {
            signal(c, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for (name, c) in &mut self.children {
            loop {
                match c.try_wait() {
                    Ok(Some(status)) => {
                        eprintln!("{name} stopped ({status})");
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                    _ => {
                        eprintln!("{name} did not stop in time; killing it");
                        let _ = c.kill();
                        let _ = c.wait();
                        break;
                    }
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn run(args: &DemoArgs) -> Result<(), Failure> {
    if !(args.speed.is_finite() && args.speed > 0.0 && args.speed <= 100.0) {
        return Err(Failure::Input(anyhow!("--speed must be in (0, 100]")));
    }
    let dir = &args.dir;
    for (_, config, _, _) in NODES {
        if !dir.join(config).exists() {
            return Err(Failure::Input(anyhow!(
                "{} not found: run the demo from the repository (or pass --dir)",
                dir.join(config).display()
            )));
        }
    }
    let scenario = dir.join(&args.scenario);
    if !scenario.exists() {
        return Err(Failure::Input(anyhow!("scenario {} not found", scenario.display())));
    }
    for (nation, _, http, _) in NODES {
        if port_taken(http) {
            return Err(Failure::Input(anyhow!(
                "port {http} (the {nation} node's HTTP) is already served — an earlier demo? Stop it first"
            )));
        }
    }
    let exe = std::env::current_exe().context("failed to find the trilink binary").map_err(Failure::Run)?;
    let pki = dir.join("run/pki");
    if !pki.join("usa/node.key").exists() {
        let out = Command::new(&exe)
            .args(["pki", "init", "--nations", "USA,JPN,KOR", "--out"])
            .arg(&pki)
            .output()
            .context("failed to run trilink pki init")
            .map_err(Failure::Run)?;
        if !out.status.success() {
            return Err(Failure::Run(anyhow!("pki init failed: {}", String::from_utf8_lossy(&out.stderr))));
        }
        println!("made the federation's test PKI in {}", pki.display());
    }
    add_api_certs(&pki).map_err(Failure::Run)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook_like::SIGINT, signal_hook_like::SIGTERM] {
        signal_hook_like::register(sig, stop.clone()).map_err(Failure::Run)?;
    }
    let mut running = Running { children: Vec::new(), pki: pki.clone() };
    for (nation, config, _, _) in NODES {
        let log_path = dir.join(format!("run/{}.log", nation.to_lowercase()));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("failed to create {}", log_path.display()))
            .map_err(Failure::Run)?;
        let child = Command::new(&exe)
            .args(["node", "--log", "info", "--config"])
            .arg(dir.join(config))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("failed to start the {nation} node"))
            .map_err(Failure::Run)?;
        running.children.push((nation.to_string(), child));
    }
    wait_up(&mut running, &stop)?;
    println!("federation up (hub and spoke: JPN <-> USA <-> KOR, mutual TLS, relay at USA)");
    for (nation, _, http, grpc) in NODES {
        let n = nation.to_lowercase();
        println!(
            "  {nation}: operator picture https://127.0.0.1:{http}/   API /v1/tracks  /v1/alerts  /v1/status  /metrics   (sensors: gRPC over TLS 127.0.0.1:{grpc}; CA run/pki/{n}/ca.crt; log: run/{n}.log)"
        );
        println!(
            "       log in with the DEMO tokens demo-{n}-duty-officer (duty officer, auditor) or demo-{n}-admin (admin, viewer); API: Authorization: Bearer <token>"
        );
    }
    if !args.dir.join("web/dist/index.html").exists() {
        println!("  (the web UI is not built: run `npm ci && npm run build` in web/, or start with `bash demo.sh`)");
    }
    println!("  acknowledge alerts as the demo operator of each nation: token demo-<nation>-duty-officer (e.g. demo-jpn-duty-officer)");
    println!(
        "streaming {} at {}x, each nation's sensors to its own node; Ctrl-C stops everything",
        args.scenario.display(),
        args.speed
    );
    let result = stream(&exe, &scenario, args, &stop, &mut running);
    running.stop();
    result
}

fn wait_up(running: &mut Running, stop: &AtomicBool) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, (nation, _, http, _)) in NODES.iter().enumerate() {
        loop {
            if https_status(&running.pki, nation, *http, "/healthz") == Some(200) {
                break;
            }
            if let Ok(Some(status)) = running.children[i].1.try_wait() {
                return Err(Failure::Run(anyhow!(
                    "the {nation} node exited ({status}); see run/{}.log",
                    nation.to_lowercase()
                )));
            }
            if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                return Err(Failure::Run(anyhow!(
                    "the {nation} node did not come up; see run/{}.log",
                    nation.to_lowercase()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn stream(
    exe: &Path,
    scenario: &Path,
    args: &DemoArgs,
    stop: &AtomicBool,
    running: &mut Running,
) -> Result<(), Failure> {
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let mut cmd = Command::new(exe);
        cmd.arg("sim").arg(scenario).args(["--speed", &args.speed.to_string()]);
        cmd.arg("--tokens").arg(args.dir.join("config/demo-tokens.toml"));
        for (nation, _, _, grpc) in NODES {
            cmd.args(["--send", &format!("{nation}=https://127.0.0.1:{grpc}")]);
            cmd.arg("--ca").arg(args.dir.join(format!("run/pki/{}/ca.crt", nation.to_lowercase())));
        }
        let mut sender = cmd
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .context("failed to start the simulated sensors")
            .map_err(Failure::Run)?;
        println!("round {round}: launches under way");
        loop {
            if stop.load(Ordering::Relaxed) {
                signal(&sender, rustix::process::Signal::TERM);
                let _ = sender.kill();
                let _ = sender.wait();
                return Ok(());
            }
            for (name, c) in &mut running.children {
                if let Ok(Some(status)) = c.try_wait() {
                    let _ = sender.kill();
                    let _ = sender.wait();
                    return Err(Failure::Run(anyhow!(
                        "the {name} node exited ({status}); see run/{}.log",
                        name.to_lowercase()
                    )));
                }
            }
            match sender.try_wait() {
                Ok(Some(status)) if status.success() => break,
                Ok(Some(status)) => return Err(Failure::Run(anyhow!("the simulated sensors failed ({status})"))),
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(Failure::Run(anyhow!("failed to watch the sensors: {e}"))),
            }
        }
        if args.once {
            return Ok(());
        }
    }
    Ok(())
}

use std::os::unix::process::CommandExt;

/// SIGINT/SIGTERM set a flag (the demo polls it): tokio's signal handling, on a small runtime
/// thread, so that no unsafe code is needed.
mod signal_hook_like {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;

    pub fn register(sig: i32, flag: Arc<AtomicBool>) -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let kind = tokio::signal::unix::SignalKind::from_raw(sig);
        // Registering inside the runtime, so the handler is installed before this returns.
        let mut s = rt.block_on(async { tokio::signal::unix::signal(kind) })?;
        std::thread::Builder::new().name(format!("signal-{sig}")).spawn(move || {
            rt.block_on(async move {
                s.recv().await;
                flag.store(true, Ordering::Relaxed);
            });
        })?;
        Ok(())
    }
}
