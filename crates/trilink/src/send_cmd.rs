//! `trilink sim SCENARIO --send URL`: stream a scenario's sensor reports to a node over gRPC,
//! each sensor on its own authenticated stream, paced in real time or `--speed` times faster.
//!
//! Times are shifted to the present so the node accepts them: at speed X the report made at
//! scenario time t is sent at start + (t − t_first)/X and stamped
//! t + (start − t_first) − (t_last − t_first)(1 − 1/X), so no stamp is ever ahead of the
//! node's clock and the last report is stamped exactly when it is sent (docs/cli.md).

use crate::Failure;
use anyhow::{anyhow, Context};
use fusion::Measurement;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;
use vocab::{Nation, UtcNanos};

/// Batches queued per sensor stream before the sender waits for the node.
const QUEUE_BATCHES: usize = 256;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: BTreeMap<String, String>,
}

/// Where reports go: one URL for all, or a URL per nation.
#[derive(Debug, Clone)]
pub enum Routes {
    All(String),
    PerNation(BTreeMap<Nation, String>),
}

impl Routes {
    fn url_for(&self, nation: Nation) -> Option<&str> {
        match self {
            Routes::All(u) => Some(u),
            Routes::PerNation(m) => m.get(&nation).map(String::as_str),
        }
    }
}

/// `--send URL` or `--send NATION=URL` (repeated).
pub fn parse_routes(args: &[String]) -> anyhow::Result<Routes> {
    if let [one] = args {
        if !one.contains('=') {
            return Ok(Routes::All(one.clone()));
        }
    }
    let mut m = BTreeMap::new();
    for a in args {
        let (n, url) =
            a.split_once('=').ok_or_else(|| anyhow!("--send {a:?}: with several --send, each must be NATION=URL"))?;
        let n = Nation::parse(n).map_err(|e| anyhow!("--send {a:?}: {e}"))?;
        if m.insert(n, url.to_string()).is_some() {
            return Err(anyhow!("--send: {n} given twice"));
        }
    }
    Ok(Routes::PerNation(m))
}

pub struct SendOptions<'a> {
    pub routes: Routes,
    pub speed: f64,
    pub tokens: &'a Path,
    pub nations: &'a [Nation],
    /// CA certificates (PEM files) to verify https:// nodes with.
    pub ca: &'a [std::path::PathBuf],
}

#[derive(Debug, Default)]
struct Tally {
    batches: u64,
    accepted: u64,
    rejected: u64,
    failed: u64,
    first_rejection: Option<String>,
}

pub fn send(reports: Vec<Measurement>, opts: &SendOptions<'_>) -> Result<(), Failure> {
    if !(opts.speed.is_finite() && opts.speed > 0.0 && opts.speed <= 1e6) {
        return Err(Failure::Input(anyhow!("--speed must be in (0, 1e6]")));
    }
    let text = std::fs::read_to_string(opts.tokens)
        .with_context(|| format!("failed to read sensor tokens {}", opts.tokens.display()))
        .map_err(Failure::Input)?;
    let tokens: TokenFile = toml::from_str(&text)
        .with_context(|| format!("failed to parse {} (expected [tokens] SENSOR = \"TOKEN\")", opts.tokens.display()))
        .map_err(Failure::Input)?;
    let reports: Vec<Measurement> = reports
        .into_iter()
        .filter(|m| opts.nations.is_empty() || opts.nations.contains(&m.nation))
        .filter(|m| opts.routes.url_for(m.nation).is_some())
        .collect();
    let (Some(first), Some(last)) = (reports.first().map(|m| m.time), reports.last().map(|m| m.time)) else {
        return Err(Failure::Input(anyhow!("no reports to send (check --nation)")));
    };
    let sensors: Vec<(String, Nation)> = {
        let mut s: Vec<(String, Nation)> = reports.iter().map(|m| (m.sensor.clone(), m.nation)).collect();
        s.sort();
        s.dedup();
        s
    };
    for (s, _) in &sensors {
        if !tokens.tokens.contains_key(s) {
            return Err(Failure::Input(anyhow!("no token for sensor {s} in {}", opts.tokens.display())));
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(anyhow!("failed to start the runtime: {e}")))?;
    rt.block_on(run(reports, sensors, tokens.tokens, first, last, opts)).map_err(Failure::Run)
}

async fn run(
    reports: Vec<Measurement>,
    sensors: Vec<(String, Nation)>,
    tokens: BTreeMap<String, String>,
    first: UtcNanos,
    last: UtcNanos,
    opts: &SendOptions<'_>,
) -> anyhow::Result<()> {
    let mut channels = BTreeMap::new();
    for (_, nation) in &sensors {
        let url = opts.routes.url_for(*nation).ok_or_else(|| anyhow!("no --send URL for {nation}"))?.to_string();
        if channels.contains_key(&url) {
            continue;
        }
        let mut endpoint = tonic::transport::Endpoint::from_shared(url.clone()).with_context(|| {
            format!("bad --send URL {url:?} (expected https://HOST:PORT of the node's gRPC listener)")
        })?;
        if url.starts_with("https://") {
            if opts.ca.is_empty() {
                anyhow::bail!("--send {url}: give --ca with the node's CA certificate (PEM)");
            }
            let mut cas = Vec::new();
            for path in opts.ca {
                let pem = std::fs::read(path).with_context(|| format!("failed to read --ca {}", path.display()))?;
                cas.push(tonic::transport::Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificates(cas))
                .with_context(|| format!("--send {url}: TLS"))?;
        }
        let channel = endpoint.connect().await.with_context(|| format!("failed to connect to {url}"))?;
        channels.insert(url, channel);
    }
    let tally = std::sync::Arc::new(std::sync::Mutex::new(Tally::default()));
    let mut queues = BTreeMap::new();
    let mut tasks = Vec::new();
    for (s, nation) in &sensors {
        let (tx, rx) = mpsc::channel::<wire::MeasurementBatch>(QUEUE_BATCHES);
        queues.insert(s.clone(), tx);
        let url = opts.routes.url_for(*nation).unwrap_or_default();
        let channel = channels.get(url).ok_or_else(|| anyhow!("no channel for {nation}"))?;
        let mut client = wire::ingest_client::IngestClient::new(channel.clone());
        let auth: MetadataValue<_> =
            format!("Bearer {}", tokens[s]).parse().map_err(|_| anyhow!("token of {s} is not a valid header value"))?;
        let tally = tally.clone();
        let sensor = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
            req.metadata_mut().insert("authorization", auth);
            let mut acks = match client.stream(req).await {
                Ok(r) => r.into_inner(),
                Err(status) => return Err(anyhow!("sensor {sensor}: {}", status.message())),
            };
            loop {
                match acks.message().await {
                    Ok(Some(ack)) => {
                        let mut t = tally.lock().map_err(|_| anyhow!("tally poisoned"))?;
                        t.batches += 1;
                        t.accepted += ack.accepted;
                        t.rejected += ack.rejected;
                        if t.first_rejection.is_none() {
                            t.first_rejection = ack.rejections.first().map(|r| format!("{sensor}: {}", r.reason));
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(status) => {
                        tally.lock().map_err(|_| anyhow!("tally poisoned"))?.failed += 1;
                        return Err(anyhow!("sensor {sensor}: {}", status.message()));
                    }
                }
            }
        }));
    }
    let speed = opts.speed;
    let span_s = last.secs_since(first);
    let shift_s = journal::wall_clock().secs_since(first) - span_s * (1.0 - 1.0 / speed);
    let started = Instant::now();
    let mut sent = 0usize;
    let mut last_report = Instant::now();
    let mut i = 0;
    while i < reports.len() {
        let (t, sensor) = (reports[i].time, reports[i].sensor.clone());
        let mut j = i;
        let mut batch = Vec::new();
        while j < reports.len() && reports[j].time == t && reports[j].sensor == sensor {
            let mut m = reports[j].clone();
            m.time = m.time.add_secs_f64(shift_s);
            batch.push(ingest::to_wire(&m));
            j += 1;
        }
        let due = Duration::from_secs_f64(t.secs_since(first).max(0.0) / speed);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        sent += batch.len();
        if queues[&sensor].send(wire::MeasurementBatch { measurements: batch }).await.is_err() {
            break;
        }
        i = j;
        if last_report.elapsed() > Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!("sent {sent} of {} reports ({:.0} s of scenario time)", reports.len(), t.secs_since(first));
        }
    }
    drop(queues);
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let t = tally.lock().map_err(|_| anyhow!("tally poisoned"))?;
    println!(
        "sent {sent} reports from {} sensors in {:.1} s: {} accepted, {} rejected, in {} acknowledged batches",
        sensors.len(),
        started.elapsed().as_secs_f64(),
        t.accepted,
        t.rejected,
        t.batches
    );
    if let Some(r) = &t.first_rejection {
        println!("first rejection: {r}");
    }
    if !errors.is_empty() {
        return Err(anyhow!("{} sensor streams failed: {}", errors.len(), errors.join("; ")));
    }
    Ok(())
}
