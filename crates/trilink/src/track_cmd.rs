//! `trilink track MEASUREMENTS --out TRACKS`: run the fusion engine over a file of sensor
//! reports (NDJSON, docs/sim-output.md) and write the confirmed tracks as they change.

use crate::Failure;
use anyhow::{anyhow, Context};
use clap::Args;
use fusion::{Engine, EngineConfig, TrackStatus, TrackView};
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct TrackArgs {
    /// Sensor reports, one JSON object per line, in time order (late lines are set aside).
    measurements: PathBuf,
    /// Where to write track updates (NDJSON; docs/tracks.md).
    #[arg(long, default_value = "out/tracks.ndjson")]
    out: PathBuf,
    /// Impact predictions per second of data across all tracks (0: none, tracking only).
    #[arg(long, default_value_t = EngineConfig::default().impact_predictions_per_s)]
    impact_predictions_per_s: f64,
    /// Use the unscented (sigma-point) measurement update instead of the extended one.
    #[arg(long)]
    unscented: bool,
}

fn record(t: &TrackView) -> serde_json::Value {
    node::products::track_json(t)
}

pub fn run(args: &TrackArgs) -> Result<(), Failure> {
    let shown = args.measurements.display().to_string();
    let file = fs::File::open(&args.measurements)
        .with_context(|| format!("failed to open {shown}"))
        .map_err(Failure::Input)?;
    let mut inputs = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("failed to read {shown}:{}", i + 1)).map_err(Failure::Input)?;
        if line.trim().is_empty() {
            continue;
        }
        let m = ingest::parse_line(&line).map_err(|e| Failure::Input(anyhow!("{shown}:{}: {e}", i + 1)))?;
        inputs.push(m);
    }
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display())).map_err(Failure::Run)?;
    }
    let out = fs::File::create(&args.out)
        .with_context(|| format!("failed to create {}", args.out.display()))
        .map_err(Failure::Run)?;
    let mut w = BufWriter::new(out);
    let mut engine = Engine::new(crate::engine_config(args.impact_predictions_per_s, args.unscented)?);
    let mut engine_time = Duration::ZERO;
    let mut lines = 0usize;
    let emit = |engine: &Engine, changed: Vec<fusion::TrackId>, w: &mut BufWriter<fs::File>| -> anyhow::Result<usize> {
        let mut n = 0;
        if changed.is_empty() {
            return Ok(0);
        }
        for t in engine.tracks().iter().filter(|t| t.status == TrackStatus::Confirmed && changed.contains(&t.id)) {
            serde_json::to_writer(&mut *w, &record(t))?;
            w.write_all(b"\n")?;
            n += 1;
        }
        Ok(n)
    };
    let count = inputs.len();
    for m in inputs {
        let now = m.time;
        let t0 = Instant::now();
        engine.ingest(m);
        let changed = engine.advance(now);
        engine_time += t0.elapsed();
        lines += emit(&engine, changed, &mut w).context("failed to write tracks").map_err(Failure::Run)?;
    }
    let t0 = Instant::now();
    let changed = engine.flush();
    engine_time += t0.elapsed();
    lines += emit(&engine, changed, &mut w).context("failed to write tracks").map_err(Failure::Run)?;
    w.flush().context("failed to write tracks").map_err(Failure::Run)?;
    let c = engine.counters();
    println!(
        "{count} reports in {:.3} s of engine time ({:.0} reports/s); {} tracks confirmed, {} late set aside; wrote {lines} track updates to {}",
        engine_time.as_secs_f64(),
        count as f64 / engine_time.as_secs_f64().max(1e-9),
        c.tracks_confirmed,
        c.late_set_aside,
        args.out.display()
    );
    Ok(())
}
