//! `trilink sim SCENARIO --out DIR`: run the simulator and write its files.

use crate::progress::Progress;
use crate::Failure;
use anyhow::{anyhow, Context};
use clap::Args;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct SimArgs {
    /// The scenario file (TOML; see docs/scenarios.md).
    scenario: PathBuf,
    /// Directory for truth.ndjson, measurements.ndjson and summary.json (created if missing).
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Instead of writing files, stream the sensor reports to a node's gRPC listener
    /// (https://HOST:PORT, with --ca; http:// for a node serving plain on loopback), paced in
    /// scenario time. Repeat as NATION=URL to send each nation's
    /// sensors to its own node (one time base for all).
    #[arg(long, value_name = "URL")]
    send: Vec<String>,
    /// With --send: how many times faster than real time.
    #[arg(long, default_value_t = 1.0, requires = "send")]
    speed: f64,
    /// With --send: sensor tokens, a TOML file `[tokens] SENSOR_ID = "TOKEN"`.
    #[arg(long, default_value = "config/demo-tokens.toml", requires = "send")]
    tokens: PathBuf,
    /// With --send to https:// URLs: CA certificates (PEM) the nodes' certificates are verified
    /// against (repeatable: one per nation's CA).
    #[arg(long, requires = "send")]
    ca: Vec<PathBuf>,
    /// With --send: only the sensors of these nations (repeatable; default all).
    #[arg(long = "nation", requires = "send")]
    nations: Vec<String>,
}

/// Writes `name` in `dir` through a temporary file renamed into place, so a reader never sees
/// a half-written file and an interrupted run leaves the previous output intact.
fn write_atomically(
    dir: &Path,
    name: &str,
    fill: impl FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let file = fs::File::create(&tmp).with_context(|| format!("failed to create {}", tmp.display()))?;
    let mut w = BufWriter::new(file);
    fill(&mut w).and_then(|()| w.flush()).with_context(|| format!("failed to write {}", tmp.display()))?;
    w.get_ref().sync_all().with_context(|| format!("failed to sync {}", tmp.display()))?;
    fs::rename(&tmp, &path).with_context(|| format!("failed to rename {} to {}", tmp.display(), path.display()))?;
    Ok(path)
}

pub fn run(args: &SimArgs) -> Result<(), Failure> {
    let shown = args.scenario.display().to_string();
    let text = fs::read_to_string(&args.scenario)
        .with_context(|| format!("failed to read scenario {shown}"))
        .map_err(Failure::Input)?;
    let mut scenario = sim::parse(&shown, &text).map_err(|e| Failure::Input(anyhow!(e)))?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let started = Instant::now();
    let progress = Progress::new();
    progress.stage("flying launches", scenario.launches.len());
    let cfg = flight::FlightConfig::default();
    let flown = sim::fly_all(&scenario, &cfg, &|done| progress.set(done)).map_err(|e| Failure::Run(anyhow!(e)))?;
    let flying = started.elapsed();
    let end = sim::end_time(&scenario, &flown);
    progress.stage("observing", 1);
    let measurements = sim::measure_all(&scenario, &flown, end);
    let truth = sim::truth_all(&scenario, &flown, end);
    progress.set(1);
    let computed = started.elapsed();
    if !args.send.is_empty() {
        progress.finish();
        let routes = crate::send_cmd::parse_routes(&args.send).map_err(Failure::Input)?;
        let nations = args
            .nations
            .iter()
            .map(|n| vocab::Nation::parse(n).map_err(|e| Failure::Input(anyhow!("--nation: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut text = Vec::new();
        sim::output::write_measurements(&mut text, &scenario, &flown, &measurements)
            .map_err(|e| Failure::Run(anyhow!("failed to format reports: {e}")))?;
        let text = String::from_utf8(text).map_err(|e| Failure::Run(anyhow!(e)))?;
        let reports = text
            .lines()
            .map(ingest::parse_line)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::Run(anyhow!("simulator produced an unparseable report: {e}")))?;
        let opts = crate::send_cmd::SendOptions {
            routes,
            speed: args.speed,
            tokens: &args.tokens,
            nations: &nations,
            ca: &args.ca,
        };
        return crate::send_cmd::send(reports, &opts);
    }

    progress.stage("writing", 3);
    fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create output directory {}", args.out.display()))
        .map_err(Failure::Run)?;
    let truth_path = write_atomically(&args.out, "truth.ndjson", |w| sim::output::write_truth(w, &flown, &truth))
        .map_err(Failure::Run)?;
    progress.set(1);
    let meas_path = write_atomically(&args.out, "measurements.ndjson", |w| {
        sim::output::write_measurements(w, &scenario, &flown, &measurements)
    })
    .map_err(Failure::Run)?;
    progress.set(2);
    let summary_path = write_atomically(&args.out, "summary.json", |w| {
        sim::output::write_summary(w, &scenario, &flown, end, truth.len(), &measurements)
    })
    .map_err(Failure::Run)?;
    progress.finish();

    let simulated_s = end.secs_since(scenario.start);
    let wall_s = computed.as_secs_f64();
    let observing_s = (computed - flying).as_secs_f64();
    println!(
        "scenario {:?}: {} launches, {} radars, {} space IR sensors; {simulated_s:.0} s simulated in {wall_s:.2} s ({:.0} simulated s per wall s; shaping trajectories {:.2} s, observing {observing_s:.3} s = {:.0} simulated s per wall s)",
        scenario.name,
        flown.len(),
        scenario.radars.len(),
        scenario.space_ir.len(),
        simulated_s / wall_s.max(1e-9),
        flying.as_secs_f64(),
        simulated_s / observing_s.max(1e-9),
    );
    for f in &flown {
        let t = &f.trajectory;
        println!(
            "  {} ({}): impact {:.3}°N {:.3}°E at {}, range {:.0} km, apogee {:.0} km, flight {:.0} s",
            f.plan.id,
            f.plan.class,
            t.impact.lat_deg(),
            t.impact.lon_deg(),
            f.impact_time(),
            t.range_m() / 1e3,
            t.apogee_alt_m / 1e3,
            t.impact_s
        );
    }
    let false_alarms = measurements.iter().filter(|m| m.truth.is_none()).count();
    println!(
        "wrote {} ({} samples), {} ({} reports, {false_alarms} false alarms), {}",
        truth_path.display(),
        truth.len(),
        meas_path.display(),
        measurements.len(),
        summary_path.display()
    );
    Ok(())
}
