//! The engine: measurements in, tracks and products out.
//!
//! Processing order. `ingest` puts a measurement into a reorder buffer; `advance(now)` takes
//! from the buffer everything older than `now − reorder_window_s` in time order and processes
//! it scan by scan (a scan: one sensor's reports at one instant):
//! 1. every live track is predicted to the scan time (IMM mixing and time update);
//! 2. gated costs (squared Mahalanobis distance) feed a global nearest neighbour assignment;
//! 3. assigned tracks are updated; the rest of the reports become position fixes (a radar
//!    report converted to ECEF, or two infrared lines of sight triangulated), and two fixes
//!    consistent with a missile's speed start a tentative track;
//! 4. tracks are confirmed, merged or deleted, and the products of changed tracks (phase,
//!    burnout, launch estimate, impact prediction) are refreshed.
//!
//! A measurement older than what has already been processed is late: it is set aside and
//! counted (`Counters::late_set_aside`), never applied out of order, so it cannot corrupt a
//! track. Partner links deliver in bursts within the reorder window, which absorbs them.

use crate::assoc::assign;
use crate::dynamics::MotionNoise;
use crate::filter::{mahalanobis, Imm, ImmConfig, BOOST};
use crate::init::{pair_score, triangulate, Fix};
use crate::measurement::{model, Measurement, Observation, SpaceIrObs};
use crate::predict::{estimate_launch, predict_impact, ImpactPrediction, LaunchEstimate};
use crate::{Cov, State};
use geodesy::{ecef_to_geodetic, Vector3};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use vocab::{Nation, UtcNanos};

/// The position slack a fix pair may need beyond the speed limit (three sigma of two fixes'
/// errors); a pair needing more is not found by the sweep.
const PAIR_SLACK_MAX_M: f64 = 30_000.0;

/// Most waiting fixes one new fix is compared with: bounds the cost of initiation under
/// dense clutter (hundreds of thousands of false plots) to this many comparisons a fix.
const MAX_PAIR_CANDIDATES: usize = 4_096;
/// A waiting fix as the pairing search reads it.
#[derive(Debug)]
struct WaitingFix {
    t_s: f64,
    pos: Vector3<f64>,
    cov_trace: f64,
    /// Its slot in `Engine::fix_slots`.
    slot: usize,
    /// Paired in the current call (dropped from the index at its end).
    taken: bool,
}

/// A silent track is taken as landed this long after its predicted impact time plus 3σ (the
/// same margin as an alert's withdrawal, `alert::Alerts::expire`).
const LANDED_AFTER_S: f64 = 10.0;
/// Seconds of unused impact-prediction budget that may accrue (at least one prediction).
pub const IMPACT_BURST_S: f64 = 0.1;

/// Two tracks farther apart than this along x are not compared for merging (a merge needs
/// them within a 3σ gate; no track is that uncertain and still worth merging).
const MERGE_PREFILTER_M: f64 = 20_000.0;
/// Tracks last predicted this far apart in time are not compared (a straight-line carry of
/// one to the other's time stays accurate well within this).
const MERGE_MAX_TIME_GAP_S: f64 = 2.0;

/// Boost-phase positions kept per track for the launch estimate: a few minutes of 1 Hz updates
/// from several sensors.
const MAX_BOOST_HISTORY: usize = 2_000;

/// Below this height a climbing object is taken to be under thrust until its track shows
/// otherwise (see [`initial_boost_probability`]).
const BOOST_PRIOR_MAX_ALT_M: f64 = 80_000.0;
/// Climb rate above which a new track counts as climbing: well above what the two-fix
/// velocity of a level or falling object shows from noise.
const BOOST_PRIOR_MIN_CLIMB_MPS: f64 = 100.0;
/// From this boost-model probability up, a track may still be under thrust: its phase is
/// boost, its impact predictions are instantaneous impact points (`during_boost`), and no
/// burnout is declared. Early in a climb the thrust is barely observable — radar cross-range
/// noise of hundreds of metres hides 15 m of thrust per second — and the boost probability
/// wanders between 0.2 and 0.9 for several seconds; called ballistic at the first dip under
/// one half, a boosting missile got impact predictions 900 km short with ellipses that missed
/// and a burnout time a minute early. After a real burnout it falls to nearly 0 within
/// seconds.
const THRUST_POSSIBLE_FROM: f64 = 0.01;
/// Boost-model probability of a new track low and climbing.
const BOOST_PRIOR_CLIMBING: f64 = 0.9;

/// The boost-model probability a new track starts with. A track born low in the atmosphere
/// and climbing is a rocket under thrust (whatever coasts there is falling, or has just burnt
/// out and will show it), so it starts at 0.9. Anything else starts undecided at 0.5. With an
/// even start, a missile first seen at 11 km — where the first fixes' velocity is too rough
/// to show the thrust, and the ballistic model's drag noise (then twice the drag) covered it — was called ballistic
/// for its first seconds: impact predictions from a boosting missile, 900 km short, with
/// ellipses that missed.
fn initial_boost_probability(x: &State) -> f64 {
    let r = Vector3::new(x[0], x[1], x[2]);
    let climb = r.normalize().dot(&Vector3::new(x[3], x[4], x[5]));
    if geodesy::geocentric_height_m(&r) < BOOST_PRIOR_MAX_ALT_M && climb > BOOST_PRIOR_MIN_CLIMB_MPS {
        BOOST_PRIOR_CLIMBING
    } else {
        0.5
    }
}

/// Coarse gating: how many σ of track and report position the sphere test allows, the largest
/// unmodelled acceleration (a burning rocket's thrust, 6 g, plus gravity), and a floor.
const COARSE_SIGMAS: f64 = 6.0;
const COARSE_ACCEL_MPS2: f64 = 80.0;
const COARSE_FLOOR_M: f64 = 500.0;

/// Gates: the 99.73% quantile of χ² (the 3σ equivalent) for each measurement dimension.
fn gate(dim: usize) -> f64 {
    match dim {
        1 => 9.0,
        2 => 11.83,
        3 => 14.16,
        4 => 16.25,
        5 => 18.21,
        _ => 20.06,
    }
}

/// How a report updates a track (see docs/BENCHMARKS.md for the measured comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    /// Extended Kalman: the measurement model linearised at the prediction.
    Extended,
    /// Unscented: the measurement model evaluated at sigma points.
    Unscented,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    pub noise: MotionNoise,
    pub update: UpdateKind,
    pub imm: ImmConfig,
    /// How long a measurement waits for later-arriving earlier ones.
    pub reorder_window_s: f64,
    /// Longest gap between the two fixes that start a track.
    pub init_window_s: f64,
    /// Updates that confirm a tentative track...
    pub confirm_hits: u32,
    /// ...spread over at least this long (in a dense cloud, three reports within a second can
    /// come from different objects; a real object keeps feeding its track).
    pub confirm_span_s: f64,
    /// A confirmed track with fewer updates than `young_updates` is dropped after this long
    /// without one: a track that starved right after confirmation was most likely false.
    pub young_timeout_s: f64,
    pub young_updates: u32,
    /// A tentative track with no update for this long is dropped.
    pub tentative_timeout_s: f64,
    /// A confirmed track with no update for this long is lost, whatever its uncertainty.
    pub confirmed_timeout_s: f64,
    /// A confirmed track coasting without updates is lost sooner once its position uncertainty
    /// (1σ, all axes) grows past this: it could no longer be told from another object.
    pub max_coast_position_sd_m: f64,
    /// Refresh interval of each track's impact prediction (it flies 17 trajectories).
    pub impact_interval_s: f64,
    /// Impact predictions per second of data at most, across all tracks: under load (a salvo,
    /// debris) each track's prediction is refreshed less often, oldest first, instead of the
    /// engine falling behind real time. Each prediction flies 17 trajectories to the ground;
    /// docs/BENCHMARKS.md shows what they cost against tracking alone. 0 turns them off.
    /// Unused budget accrues for at most `IMPACT_BURST_S` of data, so one step never flies
    /// more than that much of it at once (a step is what an alert waits for).
    pub impact_predictions_per_s: f64,
    /// The launch estimate is refined over this long after the first one, then kept.
    pub launch_refine_s: f64,
    /// Tracks held at once; initiation beyond this is refused and counted.
    pub max_tracks: usize,
    /// Fixes waiting for a partner; older ones are dropped first.
    pub max_fixes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            noise: MotionNoise::default(),
            // Measured (docs/BENCHMARKS.md): the same accuracy to three digits on every bundled
            // scenario, at less than half the instructions of the unscented update; it is also
            // the one checked against filterpy.
            update: UpdateKind::Extended,
            imm: ImmConfig::default(),
            reorder_window_s: 2.0,
            // Sensors report every 0.1 to 2 s: a partner fix comes within 3 s, and a short
            // window keeps the sweep narrow in a dense cloud.
            init_window_s: 3.0,
            confirm_hits: 4,
            confirm_span_s: 1.5,
            young_timeout_s: 10.0,
            young_updates: 10,
            tentative_timeout_s: 8.0,
            // A lofted ICBM flies above every radar's reach for many minutes near apogee; a
            // ballistic track coasts through that with slowly growing uncertainty.
            confirmed_timeout_s: 3_600.0,
            max_coast_position_sd_m: 50_000.0,
            impact_interval_s: 1.0,
            impact_predictions_per_s: 50.0,
            launch_refine_s: 20.0,
            // Salvos and debris: hundreds of objects; 5,000 leaves room for clutter tracks.
            max_tracks: 5_000,
            // Three seconds of fixes from a thousand objects under five radars at 10 Hz.
            max_fixes: 200_000,
        }
    }
}

/// Track identity, unique within one engine's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackId(pub u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackStatus {
    Tentative,
    Confirmed,
}

/// What happened to the inputs, for operators and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub measurements: u64,
    pub late_set_aside: u64,
    pub updates: u64,
    pub fixes: u64,
    pub tracks_initiated: u64,
    pub tracks_confirmed: u64,
    pub tracks_deleted: u64,
    pub tracks_merged: u64,
    pub initiation_refused_full: u64,
    pub impact_predictions: u64,
    pub impact_predictions_deferred: u64,
    pub degenerate_updates: u64,
    /// New fixes whose search for a partner stopped at `MAX_PAIR_CANDIDATES`.
    pub pair_candidates_capped: u64,
}

#[derive(Debug, Clone)]
struct Track {
    id: TrackId,
    status: TrackStatus,
    imm: Imm,
    t_s: f64,
    first_s: f64,
    last_update_s: f64,
    hits: u32,
    nations: BTreeSet<Nation>,
    was_boost: bool,
    burnout_s: Option<f64>,
    launch: Option<(f64, LaunchEstimate)>,
    launch_first_s: Option<f64>,
    /// Positions while boosting, for the launch estimate (bounded by `MAX_BOOST_HISTORY`).
    boost_history: Vec<(f64, Vector3<f64>)>,
    impact: Option<(f64, ImpactPrediction)>,
    changed: bool,
}

/// A snapshot of a track for consumers.
#[derive(Debug, Clone)]
pub struct TrackView {
    pub id: TrackId,
    pub status: TrackStatus,
    pub time: UtcNanos,
    pub state: State,
    pub cov: Cov,
    pub boost_probability: f64,
    pub phase: flight::Phase,
    pub nations: Vec<Nation>,
    pub updates: u32,
    pub first_time: UtcNanos,
    /// Time of the last report that updated the track (`time` is later while it coasts).
    pub last_update: UtcNanos,
    pub burnout_time: Option<UtcNanos>,
    /// Launch estimate and the time of the state it was made from.
    pub launch: Option<(UtcNanos, LaunchEstimate)>,
    /// Impact prediction and the time of the state it was made from.
    pub impact: Option<(UtcNanos, ImpactPrediction)>,
    /// The ballistic coefficient the track has learnt from its deceleration, once it has:
    /// see [`crate::dynamics::MotionNoise::learnt_ballistic_coeff`].
    pub ballistic_coeff: Option<crate::dynamics::BallisticCoeff>,
}

#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    epoch: Option<UtcNanos>,
    /// The reorder buffer, sorted by (time, sensor, arrival). A tree, not a sorted deque: the
    /// five radars of a dense scene interleave their reports, and inserting into the middle
    /// of a deque of thousands moved most of it each time.
    buffer: BTreeMap<(UtcNanos, String, u64), Measurement>,
    arrivals: u64,
    processed_until: Option<UtcNanos>,
    tracks: Vec<Track>,
    /// Fixes too recent to pair with a new one (`MIN_PAIR_INTERVAL_S`), in time order. In
    /// the first second of a dense scene every report is such a fix, and searching among
    /// them spent the candidate cap on fixes that could not pair.
    young: VecDeque<Fix>,
    /// Fixes old enough to pair, sorted by x: what the pairing search reads, kept sorted from
    /// scan to scan (each scan merges the newly mature in and drops the expired and the
    /// paired, one linear pass, where sorting the whole index again was a sixth of the engine).
    waiting: Vec<WaitingFix>,
    /// The previous scan's index buffer, reused by the next rebuild.
    waiting_spare: Vec<WaitingFix>,
    /// The waiting fixes themselves, by slot (`None`: free, on `free_slots`).
    fix_slots: Vec<Option<Fix>>,
    free_slots: Vec<usize>,
    /// Unassigned infrared lines of sight of the latest instants, awaiting another satellite's.
    ir_pending: Vec<(f64, String, Nation, SpaceIrObs)>,
    next_id: u64,
    counters: Counters,
    /// Token bucket for impact predictions: tokens and the data time they were counted at.
    prediction_tokens: f64,
    tokens_at_s: f64,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            cfg,
            epoch: None,
            buffer: BTreeMap::new(),
            arrivals: 0,
            processed_until: None,
            tracks: Vec::new(),
            young: VecDeque::new(),
            waiting: Vec::new(),
            waiting_spare: Vec::new(),
            fix_slots: Vec::new(),
            free_slots: Vec::new(),
            ir_pending: Vec::new(),
            next_id: 1,
            counters: Counters::default(),
            prediction_tokens: 0.0,
            tokens_at_s: f64::NEG_INFINITY,
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Accepts a measurement; it is processed by a later `advance`.
    pub fn ingest(&mut self, m: Measurement) {
        self.counters.measurements += 1;
        if self.processed_until.is_some_and(|p| m.time < p) {
            self.counters.late_set_aside += 1;
            return;
        }
        self.arrivals += 1;
        self.buffer.insert((m.time, m.sensor.clone(), self.arrivals), m);
    }

    /// Processes everything older than `now − reorder_window`. Returns the ids of tracks that
    /// changed.
    pub fn advance(&mut self, now: UtcNanos) -> Vec<TrackId> {
        let horizon = now.add_secs_f64(-self.cfg.reorder_window_s);
        self.process_until(horizon)
    }

    /// Lets time pass with no report to fuse: every track is judged at `now` as it would be
    /// at a scan, so one that has come down or stayed silent too long is deleted. Without it
    /// a node whose sensors have all lost the missile (below their horizons, out of their
    /// sectors) would keep its coasting track, and the track's alert, for as long as no other
    /// report arrived. Does nothing before the first report or at a `now` not past the
    /// reports already fused.
    pub fn idle(&mut self, now: UtcNanos) {
        let Some(epoch) = self.epoch else { return };
        let now_s = now.secs_since(epoch);
        if self.processed_until.is_some_and(|p| now > p) {
            self.maintain(now_s);
        }
    }

    /// Processes everything buffered.
    pub fn flush(&mut self) -> Vec<TrackId> {
        match self.buffer.last_key_value().map(|(k, _)| k.0) {
            Some(last) => self.process_until(last),
            None => Vec::new(),
        }
    }

    fn secs(&mut self, t: UtcNanos) -> f64 {
        let epoch = *self.epoch.get_or_insert(t);
        t.secs_since(epoch)
    }

    fn process_until(&mut self, horizon: UtcNanos) -> Vec<TrackId> {
        let mut ready = Vec::new();
        while let Some(e) = self.buffer.first_entry() {
            if e.key().0 > horizon {
                break;
            }
            let ((t, _, arrival), m) = e.remove_entry();
            ready.push((t, arrival, m));
        }
        let mut i = 0;
        while i < ready.len() {
            let (t, _, ref first) = ready[i];
            let mut j = i + 1;
            while j < ready.len() && ready[j].0 == t && ready[j].2.sensor == first.sensor {
                j += 1;
            }
            let scan: Vec<&Measurement> = ready[i..j].iter().map(|(_, _, m)| m).collect();
            self.process_scan(t, &scan);
            i = j;
        }
        if !ready.is_empty() {
            self.processed_until = Some(horizon.max(self.processed_until.unwrap_or(horizon)));
        }
        let mut changed = Vec::new();
        for tr in &mut self.tracks {
            if tr.changed {
                tr.changed = false;
                changed.push(tr.id);
            }
        }
        changed
    }

    fn process_scan(&mut self, t: UtcNanos, scan: &[&Measurement]) {
        let t_s = self.secs(t);
        let (noise, imm_cfg) = (self.cfg.noise, self.cfg.imm);
        // Coarse gating first, so the cost does not grow as tracks × reports: each track's
        // position is extrapolated cheaply and compared, through a sweep over the reports
        // sorted by x, with each radar report's position; only the pairs that pass are gated
        // properly, and only their tracks are predicted to the scan time.
        let candidates = self.coarse_candidates(t_s, scan);
        let mut gated = Vec::new();
        for (ti, measurements) in candidates {
            let tr = &mut self.tracks[ti];
            if t_s > tr.t_s {
                tr.imm.predict(t_s - tr.t_s, &noise, &imm_cfg);
                tr.t_s = t_s;
            }
            // A report gates with a track if it fits either model's prediction: right after
            // burnout only the ballistic model predicts where the missile is, and a tight
            // range-rate report would fall outside a gate drawn around the mixture.
            for mi in measurements {
                let m = scan[mi];
                let mut best = f64::INFINITY;
                let mut dim = 0;
                for j in 0..2 {
                    let (xj, pj) = tr.imm.model(j);
                    let lin = model(&m.obs, xj);
                    dim = lin.dim;
                    if let Some((d2, _)) = mahalanobis(&lin, pj) {
                        best = best.min(d2);
                    }
                }
                if best < gate(dim) {
                    gated.push((ti, mi, best));
                }
            }
        }
        let miss_cost = gate(6);
        let pairs = assign(self.tracks.len(), scan.len(), &gated, miss_cost);
        let mut used = vec![false; scan.len()];
        for (ti, mi) in pairs {
            let m = scan[mi];
            let tr = &mut self.tracks[ti];
            let updated = match &m.obs {
                // A partner's track shares errors with ours in unknown ways: fuse it by
                // covariance intersection, never as an independent measurement.
                Observation::Partner(_) => tr.imm.update_ci(|x| model(&m.obs, x)),
                _ if self.cfg.update == UpdateKind::Unscented => tr.imm.update_unscented(|x| model(&m.obs, x)),
                _ => tr.imm.update(|x| model(&m.obs, x)),
            };
            if updated.is_some() {
                used[mi] = true;
                tr.hits += 1;
                tr.last_update_s = t_s;
                tr.nations.insert(m.nation);
                tr.changed = true;
                self.counters.updates += 1;
            } else {
                self.counters.degenerate_updates += 1;
            }
        }
        let mut new_fixes = Vec::new();
        for (mi, m) in scan.iter().enumerate() {
            if !used[mi] {
                if let Some(fix) = self.start_from(t_s, m) {
                    new_fixes.push(fix);
                }
            }
        }
        self.pair_fixes(t_s, new_fixes);
        self.maintain(t_s);
    }

    /// For each track that could have produced a report of this scan, the indices of those
    /// reports: a generous sphere test around a cheap extrapolation (radar and partner
    /// reports), or the line-of-sight angle to it (space IR).
    fn coarse_candidates(&self, t_s: f64, scan: &[&Measurement]) -> Vec<(usize, Vec<usize>)> {
        // Reports with a position: (x, index, position, radius).
        let mut placed: Vec<(f64, usize, Vector3<f64>, f64)> = Vec::new();
        let mut angular: Vec<usize> = Vec::new();
        for (mi, m) in scan.iter().enumerate() {
            match &m.obs {
                Observation::Radar(o) => {
                    let (p, c) = o.position();
                    placed.push((p.x, mi, p, COARSE_SIGMAS * c.trace().sqrt()));
                }
                Observation::Partner(o) => {
                    let p = Vector3::new(o.pos_vel[0], o.pos_vel[1], o.pos_vel[2]);
                    let r = COARSE_SIGMAS * (o.cov[(0, 0)] + o.cov[(1, 1)] + o.cov[(2, 2)]).sqrt();
                    placed.push((p.x, mi, p, r));
                }
                Observation::SpaceIr(_) => angular.push(mi),
            }
        }
        placed.sort_by(|a, b| a.0.total_cmp(&b.0));
        let max_meas_radius = placed.iter().fold(0.0f64, |m, p| m.max(p.3));
        let mut out = Vec::new();
        for (ti, tr) in self.tracks.iter().enumerate() {
            let (x, p) = tr.imm.combined_ref();
            let dt = (t_s - tr.t_s).max(0.0);
            let pos = Vector3::new(x[0], x[1], x[2]);
            let vel = Vector3::new(x[3], x[4], x[5]);
            let acc = Vector3::new(x[6], x[7], x[8]);
            // Gravity and thrust both fit inside the acceleration allowance of the radius.
            let predicted = pos + vel * dt + acc * (0.5 * dt * dt);
            let pos_sd = (p[(0, 0)] + p[(1, 1)] + p[(2, 2)]).sqrt();
            let vel_sd = (p[(3, 3)] + p[(4, 4)] + p[(5, 5)]).sqrt();
            let radius = COARSE_SIGMAS * (pos_sd + vel_sd * dt) + 0.5 * COARSE_ACCEL_MPS2 * dt * dt + COARSE_FLOOR_M;
            let mut hits = Vec::new();
            let lo = placed.partition_point(|q| q.0 < predicted.x - radius - max_meas_radius);
            for q in &placed[lo..] {
                if q.0 > predicted.x + radius + max_meas_radius {
                    break;
                }
                if (q.2 - predicted).norm() <= radius + q.3 {
                    hits.push(q.1);
                }
            }
            for &mi in &angular {
                if let Observation::SpaceIr(o) = &scan[mi].obs {
                    let range = (predicted - o.sat_pos_ecef_m).norm();
                    let los = o.direction();
                    let miss = (predicted - o.sat_pos_ecef_m - los * los.dot(&(predicted - o.sat_pos_ecef_m))).norm();
                    if miss <= radius + COARSE_SIGMAS * o.sigma_rad * range {
                        hits.push(mi);
                    }
                }
            }
            if !hits.is_empty() {
                out.push((ti, hits));
            }
        }
        out
    }

    /// An unassigned report as a position fix (a partner's track starts a track at once).
    fn start_from(&mut self, t_s: f64, m: &Measurement) -> Option<Fix> {
        let fix = match &m.obs {
            Observation::Radar(o) => {
                let (pos, cov) = o.position();
                Some(Fix { t_s, pos, cov, sensor: m.sensor.clone(), nation: m.nation })
            }
            Observation::SpaceIr(o) => {
                let mut made = None;
                // Pair with another satellite's line of sight from the same instant.
                for (pt, sensor, nation, other) in &self.ir_pending {
                    if (pt - t_s).abs() > 1e-3 || *sensor == m.sensor {
                        continue;
                    }
                    if let Some((pos, cov, miss)) = triangulate(
                        &o.sat_pos_ecef_m,
                        &o.direction(),
                        o.sigma_rad,
                        &other.sat_pos_ecef_m,
                        &other.direction(),
                        other.sigma_rad,
                    ) {
                        let alt = ecef_to_geodetic(&pos).alt_m;
                        if miss < 4.0 * cov.trace().sqrt() && (0.0..2_000e3).contains(&alt) {
                            made =
                                Some(Fix { t_s, pos, cov, sensor: format!("{sensor}+{}", m.sensor), nation: *nation });
                            break;
                        }
                    }
                }
                self.ir_pending.retain(|(pt, ..)| t_s - pt < 1e-3);
                self.ir_pending.push((t_s, m.sensor.clone(), m.nation, o.clone()));
                made
            }
            Observation::Partner(o) => {
                // A partner's confirmed track starts a track of ours directly.
                let mut x = State::zeros();
                x.fixed_rows_mut::<6>(0).copy_from(&o.pos_vel);
                let mut p = Cov::zeros();
                p.fixed_view_mut::<6, 6>(0, 0).copy_from(&o.cov);
                for i in 6..9 {
                    p[(i, i)] = 30.0f64.powi(2);
                }
                self.cfg.noise.set_drag_prior(&mut x, &mut p);
                if let Some(id) = self.new_track(t_s, x, p, m.nation) {
                    if let Some(tr) = self.tracks.iter_mut().find(|tr| tr.id == id) {
                        tr.status = TrackStatus::Confirmed;
                        tr.hits = self.cfg.confirm_hits;
                    }
                    self.counters.tracks_confirmed += 1;
                }
                None
            }
        };
        fix
    }

    /// Pairs this scan's fixes with the waiting ones: two fixes consistent with a missile's
    /// speed start a tentative track; the rest wait. Candidates come from a sweep over the
    /// waiting fixes sorted by x, so a dense cloud's burst of fixes does not cost pool × fixes.
    fn pair_fixes(&mut self, t_s: f64, new: Vec<Fix>) {
        if new.is_empty() {
            return;
        }
        self.counters.fixes += new.len() as u64;
        let window = self.cfg.init_window_s;
        let mut mature = Vec::new();
        while let Some(f) = self.young.pop_front_if(|f| t_s - f.t_s >= crate::init::MIN_PAIR_INTERVAL_S) {
            mature.push(f);
        }
        self.rebuild_waiting(t_s, window, mature);
        let expired = |e: &WaitingFix| t_s - e.t_s > window;
        let reach = crate::init::MAX_SPEED_MPS * window + PAIR_SLACK_MAX_M;
        let mut births = Vec::new();
        let mut unpaired = Vec::new();
        for fix in new {
            // Outward from the fix's own x, nearest first, so that the cap (below) drops the
            // farthest candidates: a real object's partner fix is a fraction of a second of
            // flight away, among the first examined. Sweeping from one end of the window, as
            // before, spent the cap on the far side of a dense cloud and paired nothing.
            let index = &self.waiting;
            let mid = index.partition_point(|e| e.pos.x < fix.pos.x);
            let (mut left, mut right) = (mid, mid);
            let mut best: Option<(usize, f64)> = None;
            let mut examined = 0;
            loop {
                let dl = if left > 0 { fix.pos.x - index[left - 1].pos.x } else { f64::INFINITY };
                let dr = if right < index.len() { index[right].pos.x - fix.pos.x } else { f64::INFINITY };
                let at = if dl <= dr && dl <= reach {
                    left -= 1;
                    left
                } else if dr <= reach {
                    right += 1;
                    right - 1
                } else {
                    break;
                };
                let e = &index[at];
                if expired(e) {
                    // Out of the window since the last scan: no longer waiting.
                    continue;
                }
                if examined >= MAX_PAIR_CANDIDATES {
                    // Clutter this dense would cost pool × fixes.
                    self.counters.pair_candidates_capped += 1;
                    break;
                }
                examined += 1;
                if e.taken {
                    continue;
                }
                if let Some(score) = pair_score(e.t_s, &e.pos, e.cov_trace, &fix, window) {
                    if best.is_none_or(|(_, s)| score < s) {
                        best = Some((at, score));
                    }
                }
            }
            match best {
                Some((at, _)) => {
                    let e = &mut self.waiting[at];
                    e.taken = true;
                    if let Some(first) = self.fix_slots[e.slot].clone() {
                        births.push((first, fix));
                    }
                }
                None => unpaired.push(fix),
            }
        }
        self.young.extend(unpaired);
        while self.young.len() > self.cfg.max_fixes {
            self.young.pop_front();
        }
        for (first, fix) in births {
            let dt = fix.t_s - first.t_s;
            let mut x = State::zeros();
            x.fixed_rows_mut::<3>(0).copy_from(&fix.pos);
            x.fixed_rows_mut::<3>(3).copy_from(&((fix.pos - first.pos) / dt));
            let mut p = Cov::zeros();
            p.fixed_view_mut::<3, 3>(0, 0).copy_from(&fix.cov);
            // Velocity from differencing, plus what an unknown acceleration (≤ 60 m/s²) does
            // over the half-interval.
            let accel_blur = (60.0 * dt / 2.0).powi(2);
            let pv = (first.cov + fix.cov) / (dt * dt) + geodesy::Matrix3::identity() * accel_blur;
            p.fixed_view_mut::<3, 3>(3, 3).copy_from(&pv);
            p.fixed_view_mut::<3, 3>(0, 3).copy_from(&(fix.cov / dt));
            p.fixed_view_mut::<3, 3>(3, 0).copy_from(&(fix.cov / dt));
            for i in 6..9 {
                p[(i, i)] = 30.0f64.powi(2);
            }
            self.cfg.noise.set_drag_prior(&mut x, &mut p);
            if let Some(id) = self.new_track(t_s, x, p, fix.nation) {
                if let Some(tr) = self.tracks.iter_mut().find(|tr| tr.id == id) {
                    tr.nations.insert(first.nation);
                    tr.hits = 2;
                }
            }
        }
    }

    /// The waiting index for a scan at `t_s`: without the fixes paired before or out of the
    /// window, with `mature` merged in by x; then, past `max_fixes` with the young, without the
    /// oldest.
    fn rebuild_waiting(&mut self, t_s: f64, window: f64, mut mature: Vec<Fix>) {
        mature.retain(|f| t_s - f.t_s <= window);
        mature.sort_by(|a, b| a.pos.x.total_cmp(&b.pos.x));
        // The index is rebuilt into the spare buffer and the old one kept as the next spare,
        // so a scan allocates nothing here.
        let mut old = std::mem::take(&mut self.waiting);
        let mut merged = std::mem::take(&mut self.waiting_spare);
        merged.clear();
        merged.reserve(old.len() + mature.len());
        let mut incoming = mature.into_iter().peekable();
        for e in old.drain(..) {
            if e.taken || t_s - e.t_s > window {
                self.fix_slots[e.slot] = None;
                self.free_slots.push(e.slot);
                continue;
            }
            while let Some(fix) = incoming.next_if(|f| f.pos.x < e.pos.x) {
                merged.push(self.waiting_fix(fix));
            }
            merged.push(e);
        }
        for fix in incoming {
            merged.push(self.waiting_fix(fix));
        }
        if merged.len() + self.young.len() > self.cfg.max_fixes && !merged.is_empty() {
            // The oldest go first (rare: a scene denser than the cap's three seconds of a
            // thousand objects under five radars).
            let excess = (merged.len() + self.young.len() - self.cfg.max_fixes).min(merged.len());
            let mut times: Vec<f64> = merged.iter().map(|e| e.t_s).collect();
            let (_, cut, _) = times.select_nth_unstable_by(excess - 1, f64::total_cmp);
            let cut = *cut;
            let mut dropped = 0;
            merged.retain(|e| {
                let drop = dropped < excess && e.t_s <= cut;
                if drop {
                    dropped += 1;
                }
                !drop
            });
            let live: std::collections::HashSet<usize> = merged.iter().map(|e| e.slot).collect();
            for (slot, f) in self.fix_slots.iter_mut().enumerate() {
                if f.is_some() && !live.contains(&slot) {
                    *f = None;
                    self.free_slots.push(slot);
                }
            }
        }
        self.waiting = merged;
        self.waiting_spare = old;
    }

    /// Stores a fix in a free slot and returns its entry for the index.
    fn waiting_fix(&mut self, fix: Fix) -> WaitingFix {
        let (t_s, pos, cov_trace) = (fix.t_s, fix.pos, fix.cov.trace());
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.fix_slots[slot] = Some(fix);
                slot
            }
            None => {
                self.fix_slots.push(Some(fix));
                self.fix_slots.len() - 1
            }
        };
        WaitingFix { t_s, pos, cov_trace, slot, taken: false }
    }

    fn new_track(&mut self, t_s: f64, x: State, p: Cov, nation: Nation) -> Option<TrackId> {
        if self.tracks.len() >= self.cfg.max_tracks {
            self.counters.initiation_refused_full += 1;
            return None;
        }
        let id = TrackId(self.next_id);
        self.next_id += 1;
        self.counters.tracks_initiated += 1;
        let mut nations = BTreeSet::new();
        nations.insert(nation);
        self.tracks.push(Track {
            id,
            status: TrackStatus::Tentative,
            imm: Imm::new(x, p, initial_boost_probability(&x)),
            t_s,
            first_s: t_s,
            last_update_s: t_s,
            hits: 1,
            nations,
            was_boost: false,
            burnout_s: None,
            launch: None,
            launch_first_s: None,
            boost_history: Vec::new(),
            impact: None,
            changed: true,
        });
        Some(id)
    }

    /// Confirmation, deletion, merging and products.
    fn maintain(&mut self, now_s: f64) {
        let cfg = self.cfg;
        let before = self.tracks.len();
        self.tracks.retain(|tr| {
            let silent = now_s - tr.last_update_s;
            let (x, _) = tr.imm.combined_ref();
            // Tracks are predicted only when a report could be theirs, so carry the state to
            // now (a straight line is enough to tell that it has come down).
            let ahead = now_s - tr.t_s;
            let at = Vector3::new(x[0], x[1], x[2]) + Vector3::new(x[3], x[4], x[5]) * ahead;
            // Outside the sphere round the equator the point is above the ellipsoid: the
            // geodetic conversion (the costly part of this loop) only for those below it.
            let aloft = at.norm() >= geodesy::Wgs84::A_M || ecef_to_geodetic(&at).alt_m > -5_000.0;
            // Over a long silence the straight line leaves the Earth's curve; the track's own
            // impact prediction says when it has come down (the alerts' rule: 3σ and 10 s late).
            let landed = tr.impact.as_ref().is_some_and(|(t, i)| {
                !i.during_boost && now_s > t + i.time_to_impact_s + 3.0 * i.time_to_impact_sd_s + LANDED_AFTER_S
            });
            let aloft = aloft && !landed;
            let alive = match tr.status {
                TrackStatus::Tentative => silent <= cfg.tentative_timeout_s,
                TrackStatus::Confirmed if tr.hits < cfg.young_updates => silent <= cfg.young_timeout_s,
                TrackStatus::Confirmed => {
                    let (_, p) = tr.imm.combined_ref();
                    // The state was last predicted at t_s; its uncertainty has grown since, at
                    // least by the velocity uncertainty carried over the interval.
                    let vel_sd = (p[(3, 3)] + p[(4, 4)] + p[(5, 5)]).sqrt();
                    let sd = (p[(0, 0)] + p[(1, 1)] + p[(2, 2)]).sqrt() + vel_sd * (now_s - tr.t_s);
                    silent <= cfg.confirmed_timeout_s && (silent < 1.0 || sd <= cfg.max_coast_position_sd_m)
                }
            };
            alive && aloft
        });
        self.counters.tracks_deleted += (before - self.tracks.len()) as u64;
        self.merge_duplicates(now_s);
        let mut due_tracks = Vec::new();
        for tr in &mut self.tracks {
            if tr.status == TrackStatus::Tentative
                && tr.hits >= cfg.confirm_hits
                && tr.last_update_s - tr.first_s >= cfg.confirm_span_s
            {
                tr.status = TrackStatus::Confirmed;
                tr.changed = true;
                self.counters.tracks_confirmed += 1;
            }
            if tr.status != TrackStatus::Confirmed || tr.last_update_s != now_s {
                continue;
            }
            let mu_boost = tr.imm.boost_probability();
            let boosting = mu_boost > 0.5;
            let thrust_possible = mu_boost >= THRUST_POSSIBLE_FROM;
            if boosting {
                tr.was_boost = true;
                // Thrust again after a declared burnout was a staging: the burnout is the last.
                tr.burnout_s = None;
                if tr.boost_history.len() < MAX_BOOST_HISTORY {
                    let (x, _) = tr.imm.model(BOOST);
                    tr.boost_history.push((now_s, Vector3::new(x[0], x[1], x[2])));
                }
                let refining = tr.launch_first_s.is_none_or(|first| now_s - first <= cfg.launch_refine_s);
                if refining {
                    if let Some(l) = estimate_launch(&tr.boost_history) {
                        tr.launch_first_s.get_or_insert(now_s);
                        tr.launch = Some((now_s, l));
                    }
                }
            } else if !thrust_possible && tr.was_boost && tr.burnout_s.is_none() {
                tr.burnout_s = Some(now_s);
                tr.imm.reset_drag(&cfg.noise);
            }
            let due = tr.impact.as_ref().is_none_or(|(t, _)| now_s - t >= cfg.impact_interval_s);
            if due {
                due_tracks.push((tr.impact.as_ref().map_or(f64::NEG_INFINITY, |(t, _)| *t), tr.id, thrust_possible));
            }
        }
        // Refill the prediction budget by the data time elapsed, then serve the stalest first.
        let rate = cfg.impact_predictions_per_s;
        let burst = (rate * IMPACT_BURST_S).max(1.0);
        if self.tokens_at_s.is_finite() {
            self.prediction_tokens = (self.prediction_tokens + rate * (now_s - self.tokens_at_s).max(0.0)).min(burst);
        } else {
            self.prediction_tokens = burst;
        }
        self.tokens_at_s = now_s;
        due_tracks.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, id, thrust_possible) in due_tracks {
            if rate <= 0.0 || self.prediction_tokens < 1.0 {
                self.counters.impact_predictions_deferred += 1;
                continue;
            }
            let Some(tr) = self.tracks.iter_mut().find(|t| t.id == id) else { continue };
            self.prediction_tokens -= 1.0;
            self.counters.impact_predictions += 1;
            let (x, p) = tr.imm.combined();
            if let Some(pred) = predict_impact(&x, &p, thrust_possible, &cfg.noise) {
                tr.impact = Some((now_s, pred));
            }
        }
    }

    /// Two tracks on one object (e.g. started from two sensors at once) are merged: the younger
    /// goes when their positions are within a 3σ gate of each other.
    fn merge_duplicates(&mut self, now_s: f64) {
        // Only tracks updated in this scan can have just become duplicates; candidates are
        // found by a sweep over positions sorted by x (within MERGE_PREFILTER_M), not all pairs,
        // and compared cheaply by distance against their position uncertainty first.
        let mut by_x: Vec<(f64, usize)> =
            self.tracks.iter().enumerate().map(|(i, t)| (t.imm.combined_ref().0[0], i)).collect();
        // Ties in x keep the tracks' order (as a stable sort would), without its cost.
        by_x.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // The pairs (k < k2 in x order) within MERGE_PREFILTER_M in x of which at least one
        // track was updated now, in the order a sweep over all pairs meets them (so which of a
        // chain of duplicates survives is as before), but reaching a not-updated track's
        // partners through the sorted list of updated ones: a scan updates a tenth of the
        // tracks or fewer, and the sweep used to test every neighbour of every track.
        let mut updated_at: Vec<usize> = Vec::new();
        for (k, &(_, i)) in by_x.iter().enumerate() {
            if self.tracks[i].last_update_s == now_s {
                updated_at.push(k);
            }
        }
        let mut doomed = BTreeSet::new();
        let mut later = 0;
        for k in 0..by_x.len() {
            while later < updated_at.len() && updated_at[later] <= k {
                later += 1;
            }
            let (x, i) = by_x[k];
            let near = |&k2: &usize| by_x[k2].0 - x <= MERGE_PREFILTER_M;
            // Every later neighbour of an updated track; only the updated ones of another.
            let updated_now = self.tracks[i].last_update_s == now_s;
            let all_later = updated_now.then(|| k + 1..by_x.len()).into_iter().flatten();
            let updated_later = (!updated_now).then(|| updated_at[later..].iter().copied()).into_iter().flatten();
            for k2 in all_later.chain(updated_later).take_while(near) {
                let j = by_x[k2].1;
                let (a, b) = (&self.tracks[i], &self.tracks[j]);
                if (a.t_s - b.t_s).abs() > MERGE_MAX_TIME_GAP_S {
                    continue;
                }
                if doomed.contains(&a.id) || doomed.contains(&b.id) {
                    continue;
                }
                let ((xa, pa), (xb, pb)) = (a.imm.combined_ref(), b.imm.combined_ref());
                let gap_m = (Vector3::new(xa[0], xa[1], xa[2]) - Vector3::new(xb[0], xb[1], xb[2])).norm();
                let spread = (pa[(0, 0)] + pa[(1, 1)] + pa[(2, 2)] + pb[(0, 0)] + pb[(1, 1)] + pb[(2, 2)]).sqrt();
                let carry = (xb[3].abs() + xb[4].abs() + xb[5].abs()) * (a.t_s - b.t_s).abs();
                if gap_m > 5.0 * spread + carry {
                    continue;
                }
                let (xa, pa, xb, pb) = (*xa, *pa, *xb, *pb);
                // Compare at the later of the two times, the earlier carried along its velocity.
                let mut d = (xa - xb).fixed_rows::<6>(0).into_owned();
                let gap = a.t_s - b.t_s;
                for k in 0..3 {
                    d[k] -= xb[3 + k] * gap;
                }
                let s = (pa + pb).fixed_view::<6, 6>(0, 0).into_owned();
                if let Some(chol) = s.cholesky() {
                    if d.dot(&chol.solve(&d)) < gate(6) {
                        let (keep, drop) = if a.first_s <= b.first_s { (i, j) } else { (j, i) };
                        doomed.insert(self.tracks[drop].id);
                        let nations = self.tracks[drop].nations.clone();
                        self.tracks[keep].nations.extend(nations);
                    }
                }
            }
        }
        if !doomed.is_empty() {
            self.counters.tracks_merged += doomed.len() as u64;
            self.tracks.retain(|t| !doomed.contains(&t.id));
        }
    }

    /// Snapshots of every track.
    pub fn tracks(&self) -> Vec<TrackView> {
        self.tracks.iter().map(|tr| self.view(tr)).collect()
    }

    /// The ids of every live track (cheap: no state is combined).
    pub fn track_ids(&self) -> Vec<TrackId> {
        self.tracks.iter().map(|tr| tr.id).collect()
    }

    /// Views of the tracks `wanted` selects, without building the others'.
    pub fn tracks_where(&self, wanted: impl Fn(TrackId) -> bool) -> Vec<TrackView> {
        self.tracks.iter().filter(|tr| wanted(tr.id)).map(|tr| self.view(tr)).collect()
    }

    fn view(&self, tr: &Track) -> TrackView {
        let epoch = self.epoch.unwrap_or_default();
        let at = |s: f64| epoch.add_secs_f64(s);
        let (x, p) = tr.imm.combined();
        let alt = ecef_to_geodetic(&Vector3::new(x[0], x[1], x[2])).alt_m;
        let boost = tr.imm.boost_probability();
        let descending = Vector3::new(x[0], x[1], x[2]).dot(&Vector3::new(x[3], x[4], x[5])) < 0.0;
        let phase = if boost >= THRUST_POSSIBLE_FROM {
            flight::Phase::Boost
        } else if descending && alt < flight::TERMINAL_BELOW_M {
            flight::Phase::Terminal
        } else {
            flight::Phase::Midcourse
        };
        TrackView {
            id: tr.id,
            status: tr.status,
            time: at(tr.t_s),
            state: x,
            cov: p,
            boost_probability: boost,
            phase,
            nations: tr.nations.iter().copied().collect(),
            updates: tr.hits,
            first_time: at(tr.first_s),
            last_update: at(tr.last_update_s),
            burnout_time: tr.burnout_s.map(at),
            launch: tr.launch.as_ref().map(|(t, l)| (at(*t), l.clone())),
            impact: tr.impact.as_ref().map(|(t, i)| (at(*t), i.clone())),
            ballistic_coeff: self.cfg.noise.learnt_ballistic_coeff(&x, &p),
        }
    }
}
