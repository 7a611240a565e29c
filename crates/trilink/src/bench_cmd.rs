//! `trilink bench fusion`: the engine at scale — a thousand objects, fifty thousand reports a
//! second — measured against real time on one core.

use crate::bench_cloud::{cloud, CLOUD_START, MAX_OBJECTS, MAX_REPORTS};
use crate::Failure;
use anyhow::anyhow;
use clap::{Args, Subcommand};
use fusion::{Engine, EngineConfig, TrackStatus};
use geodesy::Vector3;
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Fusion engine throughput with many objects in midcourse.
    Fusion(FusionBench),
    /// A running node's durable ingest throughput and acknowledgement latency.
    Ingest(crate::bench_ingest::IngestBench),
    /// A fault-injecting TCP proxy (one-way delay each way) in front of a node, until killed.
    Proxy(ProxyArgs),
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Address to listen on.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// Address to forward to.
    #[arg(long)]
    to: std::net::SocketAddr,
    /// Delay added to every chunk, each way, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
}

#[derive(Args, Debug)]
pub struct FusionBench {
    /// Objects in flight at once.
    #[arg(long, default_value_t = 1_000)]
    objects: usize,
    /// Radar reports per second across all radars (sets the radars' update rate).
    #[arg(long, default_value_t = 50_000.0)]
    reports_per_s: f64,
    /// Seconds of flight simulated.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Impact predictions per second of data across all tracks (0: tracking alone).
    #[arg(long, default_value_t = EngineConfig::default().impact_predictions_per_s)]
    impact_predictions_per_s: f64,
    /// Use the unscented (sigma-point) measurement update instead of the extended one.
    #[arg(long)]
    unscented: bool,
    /// Frames per radar scan: 1 reports every object of a scan at one instant, all radars in
    /// step (the worst burst); N spreads a scan over N frames evenly through the update
    /// interval and staggers the radars, as scanning radars report.
    #[arg(long, default_value_t = 1)]
    frames: u32,
}

pub fn run(cmd: &BenchCommand) -> Result<(), Failure> {
    let args = match cmd {
        BenchCommand::Proxy(p) => {
            if p.delay_ms > 60_000 {
                return Err(Failure::Input(anyhow!("--delay-ms must be at most 60000")));
            }
            let proxy = crate::proxy::Proxy::start(p.listen, p.to, Duration::from_millis(p.delay_ms))
                .map_err(|e| Failure::Run(anyhow!("failed to listen on {}: {e}", p.listen)))?;
            eprintln!("proxy {} -> {} with {} ms each way; Ctrl-C stops it", proxy.addr, p.to, p.delay_ms);
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        BenchCommand::Fusion(args) => args,
        BenchCommand::Ingest(args) => return crate::bench_ingest::run(args),
    };
    let expected_reports = args.reports_per_s * args.seconds;
    if args.objects == 0
        || args.objects > MAX_OBJECTS
        || !args.seconds.is_finite()
        || args.seconds <= 0.0
        || !args.reports_per_s.is_finite()
        || args.reports_per_s <= 0.0
        || expected_reports > MAX_REPORTS
    {
        return Err(Failure::Input(anyhow!(
            "need 1..={MAX_OBJECTS} objects, positive seconds and rate, and at most {MAX_REPORTS} reports in all"
        )));
    }
    let (reports, objects, radars, interval) =
        cloud(args.objects, args.reports_per_s, args.seconds, args.seed, args.frames)?;
    let n_reports = reports.len();
    let mut engine = Engine::new(crate::engine_config(args.impact_predictions_per_s, args.unscented)?);
    let mut engine_time = Duration::ZERO;
    for m in reports {
        let now = m.time;
        let t0 = Instant::now();
        engine.ingest(m);
        engine.advance(now);
        engine_time += t0.elapsed();
    }
    let t0 = Instant::now();
    engine.flush();
    engine_time += t0.elapsed();
    let tracks = engine.tracks();
    let confirmed: Vec<_> = tracks.iter().filter(|t| t.status == TrackStatus::Confirmed).collect();
    // GOSPA at the last processed instant, each track carried there by its own model.
    let end_s = args.seconds - interval;
    let end = CLOUD_START.add_secs_f64(end_s);
    let estimates: Vec<Vector3<f64>> = confirmed
        .iter()
        .map(|t| {
            let x = fusion::dynamics::propagate(&t.state, end.secs_since(t.time), fusion::dynamics::Model::Ballistic);
            Vector3::new(x[0], x[1], x[2])
        })
        .collect();
    let truths: Vec<Vector3<f64>> = objects.iter().filter_map(|f| f.state_at(end_s).map(|s| s.0)).collect();
    let g = eval::metrics::gospa(&estimates, &truths, 10_000.0, 2.0);
    let secs = engine_time.as_secs_f64();
    let c = engine.counters();
    println!(
        "{} objects, {} radars every {:.3} s: {n_reports} reports over {:.0} s of flight ({:.0} reports/s of flight time)",
        args.objects,
        radars.len(),
        interval,
        args.seconds,
        n_reports as f64 / args.seconds
    );
    println!(
        "engine ({} update): {secs:.2} s on one core = {:.0} reports/s; {:.2} s of engine per second of flight ({:.1}x real time)",
        if args.unscented { "unscented" } else { "extended" },
        n_reports as f64 / secs,
        secs / args.seconds,
        args.seconds / secs
    );
    println!(
        "tracks: {} confirmed for {} objects; GOSPA at the end {:.0} m ({} missed, {} false); impact predictions {} made, {} deferred",
        confirmed.len(),
        truths.len(),
        g.value_m,
        g.missed,
        g.false_tracks,
        c.impact_predictions,
        c.impact_predictions_deferred
    );
    println!(
        "reports: {} updated a track, {} became position fixes ({} of whose partner searches stopped at the candidate cap), {} tracks started, {} merged as duplicates",
        c.updates, c.fixes, c.pair_candidates_capped, c.tracks_initiated, c.tracks_merged
    );
    Ok(())
}
