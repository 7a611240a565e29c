//! `trilink bench ingest`: load a running node's gRPC ingest and measure what it sustains
//! durably — measurements and records per second, and the acknowledgement latency each
//! sender sees (a batch is acknowledged only once durable).
//!
//! The load is `trilink bench fusion`'s cloud — objects in midcourse over the Sea of Japan
//! seen by five radars — stamped with the present and sent paced by its own times, each radar
//! on its own authenticated stream (token `bench-<radar id in lower case>`). The node fuses
//! it as it would real traffic. `bench/node.sh` makes a node for it and runs the benchmarks.

use crate::Failure;
use anyhow::{anyhow, Context};
use clap::Args;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::metadata::MetadataValue;

#[derive(Args, Debug)]
pub struct IngestBench {
    /// The node's gRPC address (https:// with --ca, or http:// for a node serving plain on
    /// loopback).
    #[arg(long, default_value = "http://127.0.0.1:50062")]
    grpc: String,
    /// With an https:// address: the CA certificate (PEM) the node's is verified against.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// Objects in the cloud.
    #[arg(long, default_value_t = 1_000)]
    objects: usize,
    /// Measurements per second offered, across the five radars.
    #[arg(long, default_value_t = 10_000.0)]
    rate: f64,
    /// Most measurements per batch (one record each); a radar's scan is split into batches.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Send batches evenly spaced at the rate instead of each radar scan at once (the
    /// measurements keep their times): a steady load rather than bursts.
    #[arg(long)]
    pace: bool,
    /// Frames per radar scan (as `bench fusion --frames`): 1 sends each radar's whole scan at
    /// one instant, all radars together; N spreads it over the update interval.
    #[arg(long, default_value_t = 1)]
    frames: u32,
}

/// Batches a stream may have unacknowledged: enough to keep the group commit full.
const IN_FLIGHT: usize = 32;

pub fn run(args: &IngestBench) -> Result<(), Failure> {
    if args.batch == 0 || args.batch > 10_000 {
        return Err(Failure::Input(anyhow!("--batch must be 1..=10000")));
    }
    if !(args.seconds > 0.0 && args.seconds <= 3_600.0 && args.rate > 0.0 && args.rate.is_finite()) {
        return Err(Failure::Input(anyhow!("--seconds must be in (0, 3600] and --rate positive")));
    }
    eprintln!("flying the cloud ...");
    let (reports, _, radars, _) = crate::bench_cloud::cloud(args.objects, args.rate, args.seconds, 1, args.frames)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Failure::Run(anyhow!(e)))?;
    let ids: Vec<String> = radars.iter().map(|r| r.id.clone()).collect();
    rt.block_on(load(args, reports, ids)).map_err(Failure::Run)
}

/// Token of a benchmark radar.
pub fn bench_token(sensor: &str) -> String {
    format!("bench-{}", sensor.to_lowercase())
}

async fn load(args: &IngestBench, reports: Vec<fusion::Measurement>, sensors: Vec<String>) -> anyhow::Result<()> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(args.grpc.clone()).context("bad --grpc URL")?;
    if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca).with_context(|| format!("failed to read --ca {}", ca.display()))?;
        endpoint = endpoint
            .tls_config(
                tonic::transport::ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(pem)),
            )
            .context("--ca: TLS")?;
    }
    let channel = endpoint.connect().await.with_context(|| format!("failed to connect to {}", args.grpc))?;
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut queues = std::collections::BTreeMap::new();
    let mut tasks = Vec::new();
    for sensor in &sensors {
        let mut client = wire::ingest_client::IngestClient::new(channel.clone());
        let auth: MetadataValue<_> =
            format!("Bearer {}", bench_token(sensor)).parse().map_err(|_| anyhow!("bad token"))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<wire::MeasurementBatch>(IN_FLIGHT);
        let sent_at = Arc::new(Mutex::new(std::collections::VecDeque::<Instant>::new()));
        queues.insert(sensor.clone(), (tx, sent_at.clone()));
        let (lat, acc) = (latencies.clone(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
            req.metadata_mut().insert("authorization", auth);
            let mut acks =
                client.stream(req).await.map_err(|s| anyhow!("stream refused: {}", s.message()))?.into_inner();
            while let Some(ack) = acks.message().await.map_err(|s| anyhow!("stream failed: {}", s.message()))? {
                let t0 = sent_at.lock().map_err(|_| anyhow!("poisoned"))?.pop_front();
                if let Some(t0) = t0 {
                    lat.lock().map_err(|_| anyhow!("poisoned"))?.push(t0.elapsed().as_secs_f64());
                }
                acc.fetch_add(ack.accepted, std::sync::atomic::Ordering::Relaxed);
                if ack.rejected > 0 {
                    return Err(anyhow!("node rejected: {:?}", ack.rejections.first()));
                }
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    let now = journal::wall_clock();
    let shift_s = now.secs_since(crate::bench_cloud::CLOUD_START);
    let mut i = 0;
    let mut batches = 0u64;
    while i < reports.len() {
        let (t, sensor) = (reports[i].time, reports[i].sensor.clone());
        let mut j = i;
        while j < reports.len() && j - i < args.batch && reports[j].time == t && reports[j].sensor == sensor {
            j += 1;
        }
        let due = if args.pace {
            Duration::from_secs_f64(i as f64 / args.rate)
        } else {
            Duration::from_secs_f64(t.secs_since(crate::bench_cloud::CLOUD_START).max(0.0))
        };
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let measurements = reports[i..j]
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.time = m.time.add_secs_f64(shift_s);
                ingest::to_wire(&m)
            })
            .collect();
        let (tx, sent_at) = &queues[&sensor];
        sent_at.lock().map_err(|_| anyhow!("poisoned"))?.push_back(Instant::now());
        tx.send(wire::MeasurementBatch { measurements }).await.map_err(|_| anyhow!("stream of {sensor} closed"))?;
        batches += 1;
        i = j;
    }
    let offered_s = started.elapsed().as_secs_f64();
    drop(queues);
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = latencies.lock().map_err(|_| anyhow!("poisoned"))?.clone();
    lat.sort_by(f64::total_cmp);
    let q = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(f64::NAN) * 1e3
    };
    let n = accepted.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "ingest: {n} measurements in {batches} batches over {elapsed:.1} s (offered {:.0}/s for {offered_s:.1} s) = {:.0} measurements/s, {:.0} records/s durable; ack latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        args.rate,
        n as f64 / elapsed,
        batches as f64 / elapsed,
        q(0.5),
        q(0.99),
        lat.last().copied().unwrap_or(f64::NAN) * 1e3,
    );
    Ok(())
}
