//! The fusion engine judged end to end on a bundled scenario, and its handling of late and bad
//! input.

use fusion::{Engine, EngineConfig, TrackStatus};

fn bundled(name: &str) -> sim::Scenario {
    let path = format!("{}/../../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    sim::parse(&path, &std::fs::read_to_string(&path).expect("bundled scenario")).expect("valid scenario")
}

/// The scenario's missiles flown, and every report of its sensors as the engine takes it.
fn flown_and_measured(scenario: &sim::Scenario) -> (Vec<sim::Flown>, Vec<fusion::Measurement>) {
    let flown = sim::fly_all(scenario, &flight::FlightConfig::default(), &|_| {}).expect("the bundled scenario flies");
    let end = sim::end_time(scenario, &flown);
    let ms =
        sim::measure_all(scenario, &flown, end).iter().filter_map(|m| eval::convert::to_fusion(scenario, m)).collect();
    (flown, ms)
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
    assert_eq!(launch.coverage_95, 1.0, "the launch point's 95% ellipse misses it: {launch:?}");
    assert!(report.first_impact_prediction_s[0].is_some_and(|t| t < 120.0));
    no_ballistic_prediction_under_thrust(&run);
    // The last impact predictions are within a kilometre.
    let late: Vec<_> = run.impact_samples.iter().filter(|s| s.t_since_launch_s > 300.0).collect();
    assert!(!late.is_empty() && late.iter().all(|s| s.err_m < 2_000.0));
}

/// No impact prediction is offered as a ballistic one (not `during_boost`) while the missile
/// still thrusts: such a prediction is far short and its ellipse cannot hold the truth.
fn no_ballistic_prediction_under_thrust(run: &eval::RunOutcome) {
    let burnout_s =
        run.track_samples.iter().filter(|s| s.thrusting).map(|s| s.t_since_launch_s).fold(f64::NEG_INFINITY, f64::max);
    assert!(burnout_s > 30.0, "no boost-phase samples");
    let early: Vec<f64> = run
        .impact_samples
        .iter()
        .filter(|s| !s.during_boost && s.t_since_launch_s < burnout_s)
        .map(|s| s.t_since_launch_s)
        .collect();
    assert!(early.is_empty(), "ballistic predictions before burnout at {burnout_s} s: at {early:?} s");
}

#[test]
fn keeps_the_icbm_through_staging() {
    // This seed's staging (thrust from 65 to 24 m/s² in an instant) once looked like burnout
    // to the IMM: the track went on ballistic, drifted off the climbing missile and broke.
    let scenario = bundled("lofted-icbm");
    let run = eval::evaluate(&scenario, 20261136, &eval::EvalConfig::default()).unwrap();
    assert_eq!(run.breaks, vec![0], "the ICBM must be one unbroken track through staging");
    no_ballistic_prediction_under_thrust(&run);
}

#[test]
fn late_measurements_are_set_aside_and_change_nothing() {
    let scenario = bundled("mrbm-sea-of-japan");
    let (_, ms) = flown_and_measured(&scenario);
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

#[test]
fn partner_tracks_fuse_into_our_track() {
    // A partner node's track of the MRBM (truth plus 100 m / 5 m/s noise, 1 Hz) alongside our
    // own radar: one track, carrying both nations, its error no worse than the partner's.
    let scenario = bundled("mrbm-sea-of-japan");
    let flown = sim::fly_all(&scenario, &flight::FlightConfig::default(), &|_| {}).unwrap();
    let end = sim::end_time(&scenario, &flown);
    let mut inputs: Vec<fusion::Measurement> = sim::measure_all(&scenario, &flown, end)
        .iter()
        .filter(|m| m.sensor == 0)
        .filter_map(|m| eval::convert::to_fusion(&scenario, m))
        .collect();
    let mut rng = sim::rng::Rng::for_stream(7, "partner");
    let usa = vocab::Nation::parse("USA").unwrap();
    let mut t = flown[0].plan.time.add_secs_f64(120.0);
    while t < flown[0].impact_time().add_secs_f64(-30.0) {
        let s = flown[0].state_at(t).unwrap();
        let mut pv = nalgebra::SVector::<f64, 6>::zeros();
        for k in 0..3 {
            pv[k] = s.pos[k] + 100.0 * rng.normal();
            pv[3 + k] = s.vel[k] + 5.0 * rng.normal();
        }
        let cov = nalgebra::SMatrix::<f64, 6, 6>::from_diagonal(&nalgebra::SVector::<f64, 6>::from_column_slice(&[
            1e4, 1e4, 1e4, 25.0, 25.0, 25.0,
        ]));
        inputs.push(fusion::Measurement {
            time: t,
            sensor: "USA-NODE".into(),
            nation: usa,
            obs: fusion::Observation::Partner(fusion::PartnerTrack { partner_track: "USA-1".into(), pos_vel: pv, cov }),
        });
        t = t.add_secs_f64(1.0);
    }
    inputs.sort_by_key(|m| m.time);
    let mut e = Engine::new(EngineConfig { impact_predictions_per_s: 0.0, ..EngineConfig::default() });
    let mut worst = 0.0f64;
    let snapshot_at = flown[0].plan.time.add_secs_f64(300.0);
    let mut snapshot = Vec::new();
    for m in inputs {
        let now = m.time;
        e.ingest(m);
        e.advance(now);
        if now >= snapshot_at && snapshot.is_empty() {
            snapshot = e.tracks().into_iter().filter(|t| t.status == TrackStatus::Confirmed).collect();
        }
        for tr in e.tracks().iter().filter(|t| t.status == TrackStatus::Confirmed && t.nations.len() == 2) {
            if let Some(s) = flown[0].state_at(tr.time) {
                worst = worst.max((s.pos - nalgebra::Vector3::new(tr.state[0], tr.state[1], tr.state[2])).norm());
            }
        }
    }
    let confirmed = snapshot;
    assert_eq!(confirmed.len(), 1, "partner and radar must make one track: {}", confirmed.len());
    let names: Vec<&str> = confirmed[0].nations.iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["KOR", "USA"]);
    assert!(worst > 0.0 && worst < 1_000.0, "fused error reached {worst} m");
}

#[test]
fn learns_each_missiles_ballistic_coefficient_in_the_air_and_only_there() {
    // The salvo's SRBMs re-enter at 3,000 kg/m², its MRBMs at 8,000. A track above the air
    // has learnt nothing (it reports no β); one that has fallen through it knows its own.
    let scenario = bundled("salvo");
    let (flown, ms) = flown_and_measured(&scenario);
    let mut e = Engine::new(EngineConfig { impact_predictions_per_s: 0.0, ..EngineConfig::default() });
    // For each launch, the last β reported by the track nearest it, and whether any track
    // reported one while the missile was above 100 km.
    let mut last = vec![None; flown.len()];
    let mut learnt_above_the_air = 0;
    for m in ms {
        let now = m.time;
        e.ingest(m);
        e.advance(now);
        for tr in e.tracks().iter().filter(|t| t.status == TrackStatus::Confirmed && t.last_update == t.time) {
            let pos = nalgebra::Vector3::new(tr.state[0], tr.state[1], tr.state[2]);
            let nearest = flown
                .iter()
                .enumerate()
                .filter_map(|(j, f)| f.state_at(tr.time).map(|s| (j, (s.pos - pos).norm(), s.alt_m)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            if let (Some((j, d, alt)), Some(b)) = (nearest, tr.ballistic_coeff) {
                if d < 2_000.0 {
                    last[j] = Some((b, alt));
                    if alt > 100e3 {
                        learnt_above_the_air += 1;
                    }
                }
            }
        }
    }
    assert_eq!(learnt_above_the_air, 0, "β reported as learnt above 100 km");
    for (f, got) in flown.iter().zip(&last) {
        let truth = f.plan.vehicle.reentry_ballistic_coeff_kg_m2;
        let (b, alt) = got.unwrap_or_else(|| panic!("{}: no β learnt", f.plan.id));
        eprintln!("{}: β {:.0} kg/m² (σ ln {:.3}) at {:.0} m, truth {truth}", f.plan.id, b.kg_m2, b.ln_sd, alt);
        assert!((b.kg_m2.ln() - truth.ln()).abs() < 3.0 * b.ln_sd.max(0.03), "{}: β {b:?}, truth {truth}", f.plan.id);
        assert!(b.ln_sd < 0.2, "{}: β still loose: {b:?}", f.plan.id);
    }
}

#[test]
fn a_track_whose_sensors_fell_quiet_is_deleted_once_it_has_come_down() {
    // The MRBM seen by one radar that loses it 200 s before impact, and nothing after: the
    // track coasts, and only the passing of time (`Engine::idle`) can end it.
    let scenario = bundled("mrbm-sea-of-japan");
    let (flown, ms) = flown_and_measured(&scenario);
    let cut = flown[0].impact_time().add_secs_f64(-200.0);
    let mut e = Engine::new(EngineConfig::default());
    for m in ms.into_iter().filter(|m| m.time < cut) {
        let now = m.time;
        e.ingest(m);
        e.advance(now);
    }
    e.flush();
    let confirmed = |e: &Engine| e.tracks().into_iter().filter(|t| t.status == TrackStatus::Confirmed).count();
    assert_eq!(confirmed(&e), 1, "the missile is tracked when its radars fall quiet");
    // Before the impact the coasting track stands; well after it, it is gone.
    e.idle(flown[0].impact_time().add_secs_f64(-60.0));
    assert_eq!(confirmed(&e), 1, "deleted while still aloft");
    e.idle(flown[0].impact_time().add_secs_f64(60.0));
    assert_eq!(confirmed(&e), 0, "a track that has come down must go without another report");
}
