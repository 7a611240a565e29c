//! One evaluation run: simulate a scenario with a seed, feed the engine as a live node would
//! (in time order, processing behind a reorder window), and compare every confirmed track with
//! the truth.

use crate::convert::to_fusion;
use crate::metrics::gospa;
use crate::pcrlb::{bound, Bound};
use fusion::dynamics::{propagate, Model};
use fusion::{Engine, EngineConfig, TrackStatus, TrackView};
use geodesy::{geodesic_inverse, Vector3};
use sim::{Flown, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use vocab::UtcNanos;

#[derive(Debug, Clone, Copy)]
pub struct EvalConfig {
    pub engine: EngineConfig,
    /// How often the picture is compared with the truth (scenario time).
    pub eval_interval_s: f64,
    /// A track farther than this from every truth is a false track.
    pub truth_gate_m: f64,
    /// GOSPA cut-off c (p = 2, α = 2).
    pub gospa_c_m: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            engine: EngineConfig::default(),
            eval_interval_s: 1.0,
            truth_gate_m: 20_000.0,
            gospa_c_m: 10_000.0,
        }
    }
}

/// A track compared with its truth at the track's time.
#[derive(Debug, Clone, Copy)]
pub struct TrackSample {
    pub truth: usize,
    pub t_since_launch_s: f64,
    pub pos_err_m: f64,
    pub vel_err_mps: f64,
    pub nees: f64,
    pub thrusting: bool,
    pub alt_m: f64,
}

/// An impact prediction compared with where the missile came down.
#[derive(Debug, Clone, Copy)]
pub struct ImpactSample {
    pub truth: usize,
    pub t_since_launch_s: f64,
    pub err_m: f64,
    pub inside_50: bool,
    pub inside_95: bool,
    pub during_boost: bool,
    pub time_to_impact_err_s: f64,
    pub time_to_impact_sd_s: f64,
}

/// The 95% quantile of χ² with two degrees of freedom: a 2-D 95% ellipse's Mahalanobis radius².
const CHI2_2D_95: f64 = 5.991_464_547;

#[derive(Debug, Clone, Copy)]
pub struct LaunchSample {
    pub err_m: f64,
    pub time_err_s: f64,
    pub sd_m: f64,
    pub time_sd_s: f64,
    /// The estimate's 95% ellipse holds the true launch point.
    pub inside_95: bool,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub seed: u64,
    pub launches: Vec<String>,
    pub track_samples: Vec<TrackSample>,
    pub impact_samples: Vec<ImpactSample>,
    pub gospa: Vec<(f64, f64)>,
    pub bounds: Vec<Vec<Bound>>,
    pub launch: Vec<Option<LaunchSample>>,
    pub first_impact_s: Vec<Option<f64>>,
    pub first_ballistic_impact_s: Vec<Option<f64>>,
    pub breaks: Vec<usize>,
    pub id_switches: usize,
    pub false_track_samples: usize,
    pub measurements: usize,
    pub engine_time: Duration,
    /// Scenario time covered, to compare engine time with real time.
    pub scenario_s: f64,
    pub counters: fusion::Counters,
    /// Final tracks and truth, for the map.
    pub final_tracks: Vec<TrackView>,
    pub truth_paths: Vec<Vec<(f64, f64)>>,
    pub impacts: Vec<(f64, f64)>,
    /// The last impact prediction made after burnout for each truth.
    pub last_impact_predictions: Vec<Option<fusion::ImpactPrediction>>,
    /// Estimated ground tracks (lon, lat) of the confirmed tracks that followed a truth.
    pub track_paths: Vec<Vec<(f64, f64)>>,
}

/// Runs one seed of `scenario`.
pub fn evaluate(scenario: &Scenario, seed: u64, cfg: &EvalConfig) -> Result<RunOutcome, sim::LaunchError> {
    let mut scenario = scenario.clone();
    scenario.seed = seed;
    let flown = sim::fly_all(&scenario, &flight::FlightConfig::default(), &|_| {})?;
    let end = sim::end_time(&scenario, &flown);
    let measurements = sim::measure_all(&scenario, &flown, end);
    let inputs: Vec<(Option<usize>, fusion::Measurement)> =
        measurements.iter().filter_map(|m| to_fusion(&scenario, m).map(|f| (m.truth, f))).collect();

    // The bound per launch from its own reports.
    let bounds = (0..flown.len())
        .map(|li| {
            let reports: Vec<&fusion::Measurement> =
                inputs.iter().filter(|(t, _)| *t == Some(li)).map(|(_, m)| m).collect();
            bound(&flown[li], &reports, &cfg.engine.noise)
        })
        .collect();

    let mut engine = Engine::new(cfg.engine);
    let mut state = Judge::new(&flown, cfg);
    let mut engine_time = Duration::ZERO;
    let mut next_eval = scenario.start;
    for (_, m) in &inputs {
        while m.time >= next_eval {
            let t0 = Instant::now();
            engine.advance(next_eval);
            engine_time += t0.elapsed();
            state.judge(&engine.tracks(), next_eval.add_secs_f64(-cfg.engine.reorder_window_s));
            next_eval = next_eval.add_secs_f64(cfg.eval_interval_s);
        }
        let t0 = Instant::now();
        engine.ingest(m.clone());
        engine_time += t0.elapsed();
    }
    let t0 = Instant::now();
    engine.flush();
    engine_time += t0.elapsed();
    let tracks = engine.tracks();
    state.judge(&tracks, end);

    let truth_paths = flown
        .iter()
        .map(|f| {
            f.trajectory
                .samples
                .iter()
                .step_by(10)
                .map(|s| {
                    let g = geodesy::ecef_to_geodetic(&s.pos_ecef_m);
                    (g.lon_deg(), g.lat_deg())
                })
                .collect()
        })
        .collect();
    Ok(RunOutcome {
        seed,
        launches: flown.iter().map(|f| f.plan.id.clone()).collect(),
        launch: state.launch_result(),
        last_impact_predictions: state.last_impact.clone(),
        track_paths: state.track_paths.values().cloned().collect(),
        track_samples: state.track_samples,
        impact_samples: state.impact_samples,
        gospa: state.gospa,
        bounds,
        first_impact_s: state.first_impact,
        first_ballistic_impact_s: state.first_ballistic_impact,
        breaks: state.truth_tracks.iter().map(|s| s.len().saturating_sub(1)).collect(),
        id_switches: state.switches,
        false_track_samples: state.false_samples,
        measurements: inputs.len(),
        engine_time,
        scenario_s: end.secs_since(scenario.start),
        counters: engine.counters(),
        final_tracks: tracks,
        truth_paths,
        impacts: flown.iter().map(|f| (f.trajectory.impact.lon_deg(), f.trajectory.impact.lat_deg())).collect(),
    })
}

/// Compares pictures with the truth as the run goes.
struct Judge<'a> {
    flown: &'a [Flown],
    cfg: &'a EvalConfig,
    track_samples: Vec<TrackSample>,
    impact_samples: Vec<ImpactSample>,
    gospa: Vec<(f64, f64)>,
    /// Tracks that have followed each truth.
    truth_tracks: Vec<BTreeSet<u64>>,
    /// Which truth each track last followed, and how often tracks switched.
    track_truth: BTreeMap<u64, usize>,
    switches: usize,
    false_samples: usize,
    /// Last state time judged per track, so an un-updated track is not counted twice.
    judged: BTreeMap<u64, UtcNanos>,
    judged_impact: BTreeMap<u64, UtcNanos>,
    first_impact: Vec<Option<f64>>,
    first_ballistic_impact: Vec<Option<f64>>,
    /// Updates each track had while following each truth, to pick its main track.
    follow_count: BTreeMap<(usize, u64), usize>,
    /// The latest launch estimate each track gave (tracks end; their estimates are kept).
    launch_seen: BTreeMap<u64, (UtcNanos, fusion::LaunchEstimate)>,
    last_impact: Vec<Option<fusion::ImpactPrediction>>,
    track_paths: BTreeMap<u64, Vec<(f64, f64)>>,
}

impl<'a> Judge<'a> {
    fn new(flown: &'a [Flown], cfg: &'a EvalConfig) -> Judge<'a> {
        let n = flown.len();
        Judge {
            flown,
            cfg,
            track_samples: Vec::new(),
            impact_samples: Vec::new(),
            gospa: Vec::new(),
            truth_tracks: vec![BTreeSet::new(); n],
            track_truth: BTreeMap::new(),
            switches: 0,
            false_samples: 0,
            judged: BTreeMap::new(),
            judged_impact: BTreeMap::new(),
            first_impact: vec![None; n],
            first_ballistic_impact: vec![None; n],
            follow_count: BTreeMap::new(),
            launch_seen: BTreeMap::new(),
            last_impact: vec![None; n],
            track_paths: BTreeMap::new(),
        }
    }

    fn judge(&mut self, tracks: &[TrackView], at: UtcNanos) {
        let confirmed: Vec<&TrackView> = tracks.iter().filter(|t| t.status == TrackStatus::Confirmed).collect();
        // Assign tracks to truths by position at each track's own time.
        let n = confirmed.len();
        let m = self.flown.len();
        let mut gated = Vec::new();
        for (i, tr) in confirmed.iter().enumerate() {
            let pos = Vector3::new(tr.state[0], tr.state[1], tr.state[2]);
            for (j, f) in self.flown.iter().enumerate() {
                if let Some(s) = f.state_at(tr.time) {
                    let d = (s.pos - pos).norm();
                    if d < self.cfg.truth_gate_m {
                        gated.push((i, j, d * d));
                    }
                }
            }
        }
        let pairs = fusion::assoc::assign(n, m, &gated, self.cfg.truth_gate_m.powi(2));
        let assigned: BTreeMap<usize, usize> = pairs.into_iter().collect();
        for tr in &confirmed {
            if let Some(l) = &tr.launch {
                self.launch_seen.insert(tr.id.0, l.clone());
            }
        }
        for (i, tr) in confirmed.iter().enumerate() {
            let Some(&j) = assigned.get(&i) else {
                if self.judged.insert(tr.id.0, tr.time) != Some(tr.time) {
                    self.false_samples += 1;
                }
                continue;
            };
            self.truth_tracks[j].insert(tr.id.0);
            if let Some(prev) = self.track_truth.insert(tr.id.0, j) {
                if prev != j {
                    self.switches += 1;
                }
            }
            *self.follow_count.entry((j, tr.id.0)).or_default() += 1;
            let f = &self.flown[j];
            let since = tr.time.secs_since(f.plan.time);
            // Judged at update instants only: the bound is computed at report times, and a
            // coasting track's growing error would be compared with a stale bound.
            if tr.last_update == tr.time && self.judged.insert(tr.id.0, tr.time) != Some(tr.time) {
                let g = geodesy::ecef_to_geodetic(&Vector3::new(tr.state[0], tr.state[1], tr.state[2]));
                self.track_paths.entry(tr.id.0).or_default().push((g.lon_deg(), g.lat_deg()));
                if let Some(s) = f.state_at(tr.time) {
                    let mut e = nalgebra::SVector::<f64, 6>::zeros();
                    for k in 0..3 {
                        e[k] = tr.state[k] - s.pos[k];
                        e[3 + k] = tr.state[3 + k] - s.vel[k];
                    }
                    let p = tr.cov.fixed_view::<6, 6>(0, 0).into_owned();
                    let nees = p.cholesky().map_or(f64::NAN, |c| e.dot(&c.solve(&e)));
                    self.track_samples.push(TrackSample {
                        truth: j,
                        t_since_launch_s: since,
                        pos_err_m: e.fixed_rows::<3>(0).norm(),
                        vel_err_mps: e.fixed_rows::<3>(3).norm(),
                        nees,
                        thrusting: s.thrusting,
                        alt_m: s.alt_m,
                    });
                }
            }
            if let Some((t_pred, pred)) = &tr.impact {
                if self.judged_impact.insert(tr.id.0, *t_pred) != Some(*t_pred) {
                    let since_pred = t_pred.secs_since(f.plan.time);
                    self.first_impact[j].get_or_insert(since_pred);
                    if !pred.during_boost {
                        self.first_ballistic_impact[j].get_or_insert(since_pred);
                        self.last_impact[j] = Some(pred.clone());
                    }
                    let truth = &f.trajectory.impact;
                    let err = geodesic_inverse(pred.point.lat_rad, pred.point.lon_rad, truth.lat_rad, truth.lon_rad)
                        .distance_m;
                    let d2 = pred.mahalanobis2(truth);
                    let tti_true = f.impact_time().secs_since(*t_pred);
                    self.impact_samples.push(ImpactSample {
                        truth: j,
                        t_since_launch_s: since_pred,
                        err_m: err,
                        inside_50: d2 <= 1.386_294_361,
                        inside_95: d2 <= CHI2_2D_95,
                        during_boost: pred.during_boost,
                        time_to_impact_err_s: pred.time_to_impact_s - tti_true,
                        time_to_impact_sd_s: pred.time_to_impact_sd_s,
                    });
                }
            }
        }
        // GOSPA at `at`: each track carried there by its own motion model (a track that has
        // coasted for minutes is not where a straight line would put it).
        let estimates: Vec<Vector3<f64>> = confirmed
            .iter()
            .map(|tr| {
                let dt = at.secs_since(tr.time);
                let model = if tr.boost_probability > 0.5 { Model::Boost } else { Model::Ballistic };
                let x = if dt.abs() > 1e-9 { propagate(&tr.state, dt, model) } else { tr.state };
                Vector3::new(x[0], x[1], x[2])
            })
            .collect();
        let truths: Vec<Vector3<f64>> = self.flown.iter().filter_map(|f| f.state_at(at).map(|s| s.pos)).collect();
        if !truths.is_empty() || !estimates.is_empty() {
            let g = gospa(&estimates, &truths, self.cfg.gospa_c_m, 2.0);
            self.gospa.push((at.secs_since(self.flown.iter().map(|f| f.plan.time).min().unwrap_or(at)), g.value_m));
        }
    }

    /// The launch estimate of each truth's main track (the one that followed it longest).
    fn launch_result(&self) -> Vec<Option<LaunchSample>> {
        (0..self.flown.len())
            .map(|j| {
                let main = self
                    .follow_count
                    .iter()
                    .filter(|((t, _), _)| *t == j)
                    .max_by_key(|(_, c)| **c)
                    .map(|((_, id), _)| *id)?;
                let (t_state, l) = self.launch_seen.get(&main)?;
                let f = &self.flown[j];
                let err = geodesic_inverse(l.point.lat_rad, l.point.lon_rad, f.plan.site.lat_rad, f.plan.site.lon_rad)
                    .distance_m;
                let launch_time = t_state.add_secs_f64(-l.seconds_before);
                Some(LaunchSample {
                    err_m: err,
                    time_err_s: launch_time.secs_since(f.plan.time),
                    sd_m: l.cov_en_m2.trace().sqrt(),
                    time_sd_s: l.seconds_before_sd,
                    inside_95: l.mahalanobis2(&f.plan.site) <= CHI2_2D_95,
                })
            })
            .collect()
    }
}
