//! `trilink eval SCENARIO... [--runs N] [--out DIR]`: judge the fusion engine against truth.

use crate::Failure;
use anyhow::{anyhow, Context};
use clap::Args;
use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Scenario files (TOML; see docs/scenarios.md).
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Monte Carlo runs per scenario; run k uses the scenario's seed + k.
    #[arg(long, default_value_t = 10)]
    runs: u64,
    /// Directory for eval.json and the SVG plots.
    #[arg(long, default_value = "out/eval")]
    out: PathBuf,
    /// Measurement update: extended (linearised) or unscented (sigma points) Kalman.
    #[arg(long, value_enum, default_value_t = Update::Extended)]
    update: Update,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Update {
    Extended,
    Unscented,
}

/// Monte Carlo runs beyond this are refused: 1,000 runs of the salvo take hours.
const MAX_RUNS: u64 = 1_000;

pub fn run(args: &EvalArgs) -> Result<(), Failure> {
    if args.runs == 0 || args.runs > MAX_RUNS {
        return Err(Failure::Input(anyhow!("--runs must be 1 to {MAX_RUNS}, is {}", args.runs)));
    }
    let mut parsed = Vec::new();
    for path in &args.scenarios {
        let shown = path.display().to_string();
        let text = fs::read_to_string(path)
            .with_context(|| format!("failed to read scenario {shown}"))
            .map_err(Failure::Input)?;
        parsed.push((path.clone(), sim::parse(&shown, &text).map_err(|e| Failure::Input(anyhow!(e)))?));
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create output directory {}", args.out.display()))
        .map_err(Failure::Run)?;
    let mut cfg = eval::EvalConfig::default();
    cfg.engine.update = match args.update {
        Update::Extended => fusion::UpdateKind::Extended,
        Update::Unscented => fusion::UpdateKind::Unscented,
    };
    let mut reports = Vec::new();
    for (path, scenario) in &parsed {
        let seeds: Vec<u64> = (0..args.runs).map(|k| scenario.seed.wrapping_add(k)).collect();
        let outcomes: Mutex<Vec<Option<Result<eval::RunOutcome, sim::LaunchError>>>> =
            Mutex::new(vec![None; seeds.len()]);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(seeds.len());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= seeds.len() {
                        break;
                    }
                    let r = eval::evaluate(scenario, seeds[i], &cfg);
                    if let Ok(mut g) = outcomes.lock() {
                        g[i] = Some(r);
                    }
                });
            }
        });
        let outcomes: Vec<eval::RunOutcome> = outcomes
            .into_inner()
            .unwrap_or_default()
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    Err(sim::LaunchError {
                        id: String::new(),
                        source: flight::SolveError::Infeasible("run lost".into()),
                    })
                })
            })
            .collect::<Result<_, _>>()
            .map_err(|e| Failure::Run(anyhow!(e)))?;
        let report = eval::aggregate(&scenario.name, &outcomes);
        print!("{}", report.to_text());
        let stem = path.file_stem().map_or("scenario".into(), |s| s.to_string_lossy().to_string());
        let error_svg = args.out.join(format!("{stem}-error.svg"));
        fs::write(&error_svg, eval::svg::error_plot(&report))
            .with_context(|| format!("failed to write {}", error_svg.display()))
            .map_err(Failure::Run)?;
        let map_svg = args.out.join(format!("{stem}-map.svg"));
        let map = eval::svg::map_plot(
            &format!("{}: truth and 95% impact ellipses (seed {})", scenario.name, seeds[0]),
            &outcomes[0],
        );
        fs::write(&map_svg, map)
            .with_context(|| format!("failed to write {}", map_svg.display()))
            .map_err(Failure::Run)?;
        println!("  plots: {}, {}", error_svg.display(), map_svg.display());
        reports.push(report);
    }
    let json_path = args.out.join("eval.json");
    let json =
        serde_json::to_string_pretty(&eval::Report { scenarios: reports }).map_err(|e| Failure::Run(anyhow!(e)))?;
    fs::write(&json_path, json + "\n")
        .with_context(|| format!("failed to write {}", json_path.display()))
        .map_err(Failure::Run)?;
    println!("wrote {}", json_path.display());
    Ok(())
}
