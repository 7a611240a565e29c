//! The fusion engine judged end to end on a bundled scenario, and its handling of late and bad
//! input.

use fusion::{Engine, EngineConfig, TrackStatus};

fn bundled(name: &str) -> sim::Scenario {
    let path = format!("{}/../../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    sim::parse(&path, &std::fs::read_to_string(&path).expect("bundled scenario")).expect("valid scenario")
}

#[test]
fn tracks_the_mrbm_from_boost_to_impact() {
    let scenario = bundled("mrbm-sea-of-japan");
    let run = eval::evaluate(&scenario, scenario.seed, &eval::EvalConfig::default()).unwrap();
    let report = eval::aggregate(&scenario.name, std::slice::from_ref(&run));
    eprintln!("{}", report.to_text());
    assert_eq!(run.breaks, vec![0], "the single launch must be one unbroken track");
    assert_eq!(run.id_switches, 0);
    let ss = &report.steady_state;
    assert!(ss.samples > 100 && ss.rmse_over_pcrlb < 2.0, "steady state {ss:?}");
    assert!(report.impact_coverage_95 > 0.8, "95% ellipse coverage {}", report.impact_coverage_95);
    let launch = &report.launch_point[0];
    assert!(launch.estimates == 1 && launch.mean_point_error_m < 30e3, "launch {launch:?}");
    assert!(report.first_impact_prediction_s[0].is_some_and(|t| t < 120.0));
    // The last impact predictions are within a kilometre.
    let late: Vec<_> = run.impact_samples.iter().filter(|s| s.t_since_launch_s > 300.0).collect();
    assert!(!late.is_empty() && late.iter().all(|s| s.err_m < 2_000.0));
}

#[test]
fn late_measurements_are_set_aside_and_change_nothing() {
    let scenario = bundled("mrbm-sea-of-japan");
    let flown = sim::fly_all(&scenario, &flight::FlightConfig::default(), &|_| {}).unwrap();
    let end = sim::end_time(&scenario, &flown);
    let ms: Vec<fusion::Measurement> = sim::measure_all(&scenario, &flown, end)
        .iter()
        .filter_map(|m| eval::convert::to_fusion(&scenario, m))
        .collect();
    let cut = ms.len() / 2;
    let run = |late: &[fusion::Measurement]| {
        let mut e = Engine::new(EngineConfig::default());
        for m in &ms[..cut] {
            e.ingest(m.clone());
            e.advance(m.time);
        }
        // A burst of stale reports from a partner link, older than the reorder window.
        for m in late {
            e.ingest(m.clone());
        }
        e.advance(ms[cut - 1].time);
        (e.tracks(), e.counters())
    };
    let (clean, _) = run(&[]);
    let stale: Vec<_> = ms[cut / 2..cut / 2 + 50].to_vec();
    let (with_late, counters) = run(&stale);
    assert_eq!(counters.late_set_aside, 50);
    let confirmed = |v: &[fusion::TrackView]| {
        v.iter().filter(|t| t.status == TrackStatus::Confirmed).map(|t| (t.id, t.state)).collect::<Vec<_>>()
    };
    assert_eq!(confirmed(&clean), confirmed(&with_late), "late reports changed a track");
}
