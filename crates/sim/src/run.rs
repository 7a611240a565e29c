//! Running a scenario: fly every launch, then let every sensor look at every flight.

use crate::rng::Rng;
use crate::scenario::{Aim, LaunchPlan, Scenario};
use crate::sensors::Observation;
use flight::{solve_program, FlightConfig, Phase, PitchProgram, SolveError, Trajectory};
use geodesy::{ecef_to_geodetic, geodesic_inverse, Vector3};
use std::f64::consts::{PI, TAU};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use vocab::UtcNanos;

/// Aim-point iterations: each corrects the azimuth for the bearing error that Earth's rotation
/// caused, until the impact is within `AIM_TOLERANCE_M` of the aim (three or four suffice).
const AIM_ITERATIONS: usize = 8;
const AIM_TOLERANCE_M: f64 = 100.0;
/// Margin after the last impact when the scenario gives no duration.
const TAIL_S: f64 = 30.0;

#[derive(Debug, Clone, thiserror::Error)]
#[error("failed to fly launch {id:?}: {source}")]
pub struct LaunchError {
    pub id: String,
    #[source]
    pub source: SolveError,
}

/// A launch and the flight it made.
#[derive(Debug, Clone)]
pub struct Flown {
    pub plan: LaunchPlan,
    pub program: PitchProgram,
    pub trajectory: Trajectory,
}

impl Flown {
    pub fn impact_time(&self) -> UtcNanos {
        self.plan.time.add_secs_f64(self.trajectory.impact_s)
    }

    /// Position, velocity, height and phase at `t`, if the missile is flying then.
    pub fn state_at(&self, t: UtcNanos) -> Option<TruthState> {
        let since = t.secs_since(self.plan.time);
        let (pos, vel) = self.trajectory.state_at(since)?;
        let alt_m = ecef_to_geodetic(&pos).alt_m;
        Some(TruthState {
            pos,
            vel,
            alt_m,
            phase: self.trajectory.phase_at(since, alt_m),
            thrusting: self.trajectory.thrusting_at(since),
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TruthState {
    pub pos: Vector3<f64>,
    pub vel: Vector3<f64>,
    pub alt_m: f64,
    pub phase: Phase,
    pub thrusting: bool,
}

fn fly_one(plan: &LaunchPlan, cfg: &FlightConfig) -> Result<Flown, LaunchError> {
    let wrap = |source| LaunchError { id: plan.id.clone(), source };
    let solve = |az: f64| solve_program(&plan.vehicle, &plan.site, az, plan.shape, cfg).map_err(wrap);
    let solved = match plan.aim {
        Aim::Azimuth { azimuth_rad } => solve(azimuth_rad)?,
        Aim::Point { target } => {
            let bearing = |to: &geodesy::Geodetic| {
                geodesic_inverse(plan.site.lat_rad, plan.site.lon_rad, to.lat_rad, to.lon_rad).azimuth1_rad
            };
            let miss_m = |to: &geodesy::Geodetic| {
                geodesic_inverse(target.lat_rad, target.lon_rad, to.lat_rad, to.lon_rad).distance_m
            };
            let wrap = |a: f64| (a + PI).rem_euclid(TAU) - PI;
            let want = bearing(&target);
            // Secant iteration on the launch azimuth for the impact bearing; the solver already
            // hits the range, so the bearing is all that is left to correct.
            let (mut az_prev, mut err_prev) = (want, f64::NAN);
            let mut az = want;
            let mut solved = solve(az)?;
            for _ in 1..AIM_ITERATIONS {
                if miss_m(&solved.trajectory.impact) < AIM_TOLERANCE_M {
                    break;
                }
                let err = wrap(want - bearing(&solved.trajectory.impact));
                let slope = if err_prev.is_finite() && (az - az_prev).abs() > 1e-12 {
                    ((err_prev - err) / wrap(az - az_prev)).clamp(0.2, 5.0)
                } else {
                    1.0
                };
                (az_prev, err_prev) = (az, err);
                az = (az + err / slope).rem_euclid(TAU);
                solved = solve(az)?;
            }
            solved
        }
    };
    Ok(Flown { plan: plan.clone(), program: solved.program, trajectory: solved.trajectory })
}

/// Flies every launch, on as many threads as the machine has; `progress` is told each one done.
pub fn fly_all(
    scenario: &Scenario,
    cfg: &FlightConfig,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Flown>, LaunchError> {
    // Every launch of a run flies in that run's air.
    let cfg = &FlightConfig { air: scenario.atmosphere.draw(scenario.seed), ..*cfg };
    let n = scenario.launches.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Flown, LaunchError>>>> = Mutex::new((0..n).map(|_| None).collect());
    let threads = std::thread::available_parallelism().map_or(1, |p| p.get()).min(n.max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let r = fly_one(&scenario.launches[i], cfg);
                if let Ok(mut guard) = results.lock() {
                    guard[i] = Some(r);
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    // Every index is taken by exactly one worker, and a worker's panic propagates out of the
    // scope above, so a missing result cannot happen; it is still reported, not unwrapped.
    (0..n)
        .map(|i| {
            results.get(i).cloned().flatten().unwrap_or_else(|| {
                Err(LaunchError {
                    id: scenario.launches[i].id.clone(),
                    source: SolveError::Infeasible("its worker stopped without a result".into()),
                })
            })
        })
        .collect()
}

/// The scenario's end: its duration, or 30 s after the last impact.
pub fn end_time(scenario: &Scenario, flown: &[Flown]) -> UtcNanos {
    match scenario.duration_s {
        Some(d) => scenario.start.add_secs_f64(d),
        None => {
            let last = flown.iter().map(Flown::impact_time).max().unwrap_or(scenario.start);
            last.add_secs_f64(TAIL_S)
        }
    }
}

/// One sensor report.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub time: UtcNanos,
    /// Index into the scenario's radars, then space IR sensors.
    pub sensor: usize,
    pub observation: Observation,
    /// Index of the launch this report came from; `None` for a false alarm.
    pub truth: Option<usize>,
}

/// Every sensor's reports over the scenario, in time order (ties: sensor order, then launch
/// order, then false alarms), reproducible from the seed.
pub fn measure_all(scenario: &Scenario, flown: &[Flown], end: UtcNanos) -> Vec<Measurement> {
    let mut out = Vec::new();
    let span_s = end.secs_since(scenario.start);
    let mut clutter = Vec::new();
    for (si, radar) in scenario.radars.iter().enumerate() {
        let mut rng = Rng::for_stream(scenario.seed, &radar.id);
        let site = radar.site_ecef();
        let scans = (span_s / radar.update_interval_s).floor() as u64;
        for k in 0..=scans {
            let t = scenario.start.add_secs_f64(k as f64 * radar.update_interval_s);
            for (li, f) in flown.iter().enumerate() {
                let Some(state) = f.state_at(t) else { continue };
                let Some((aer, rr)) = radar.geometry(&site, &state.pos, &state.vel) else { continue };
                // Draw detection first so the noise stream does not depend on Pd outcomes.
                let detected = rng.bernoulli(radar.detection_probability);
                let obs = radar.measure(&aer, rr, &mut rng);
                if detected {
                    out.push(Measurement { time: t, sensor: si, observation: obs, truth: Some(li) });
                }
            }
            clutter.clear();
            radar.clutter(&mut rng, &mut clutter);
            out.extend(clutter.drain(..).map(|obs| Measurement { time: t, sensor: si, observation: obs, truth: None }));
        }
    }
    let offset = scenario.radars.len();
    for (j, ir) in scenario.space_ir.iter().enumerate() {
        let mut rng = Rng::for_stream(scenario.seed, &ir.id);
        let looks = (span_s / ir.revisit_interval_s).floor() as u64;
        for k in 0..=looks {
            let t = scenario.start.add_secs_f64(k as f64 * ir.revisit_interval_s);
            for (li, f) in flown.iter().enumerate() {
                let Some(state) = f.state_at(t) else { continue };
                let detected = rng.bernoulli(ir.detection_probability);
                if let Some(obs) = ir.observe(t, &state.pos, state.alt_m, state.thrusting, &mut rng) {
                    if detected {
                        out.push(Measurement { time: t, sensor: offset + j, observation: obs, truth: Some(li) });
                    }
                }
            }
        }
    }
    // Stable sort keeps each sensor's own order within a time.
    out.sort_by_key(|m| (m.time, m.sensor));
    out
}

/// A truth sample for one launch.
#[derive(Debug, Clone)]
pub struct TruthSample {
    pub time: UtcNanos,
    pub launch: usize,
    pub state: TruthState,
}

/// Truth for every launch every `truth_interval_s` from its launch, plus the moment of impact,
/// in time order.
pub fn truth_all(scenario: &Scenario, flown: &[Flown], end: UtcNanos) -> Vec<TruthSample> {
    let mut out = Vec::new();
    for (li, f) in flown.iter().enumerate() {
        let n = (f.trajectory.impact_s / scenario.truth_interval_s).floor() as u64;
        let times = (0..=n)
            .map(|k| f.plan.time.add_secs_f64(k as f64 * scenario.truth_interval_s))
            .chain(std::iter::once(f.impact_time()));
        let mut last = None;
        for t in times {
            if t > end || Some(t) == last {
                continue;
            }
            last = Some(t);
            if let Some(state) = f.state_at(t) {
                out.push(TruthSample { time: t, launch: li, state });
            }
        }
    }
    out.sort_by_key(|s| (s.time, s.launch));
    out
}
