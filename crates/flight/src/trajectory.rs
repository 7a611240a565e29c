//! Integration of the equations of motion: powered flight under a pitch programme, then
//! ballistic flight to impact, in the rotating Earth-fixed frame.
//!
//! The state is position and velocity in ECEF, so Coriolis (−2ω×v) and centrifugal
//! (−ω×(ω×r)) terms appear explicitly, and thrust direction and drag are naturally relative to
//! the air, which turns with the Earth. The integrator is classical fourth-order Runge–Kutta
//! with fixed steps; every discontinuity (pitch-over start and end, stage burnout, thrust
//! cut-off) falls on a step boundary, because each constant-regime segment is integrated with
//! its own whole number of steps. Impact is found by bisection on the length of the last step.

use crate::atmosphere::{density_kg_m3, AirDeparture, TOP_OF_ATMOSPHERE_M};
use crate::gravity::{gravity_mps2, GravityModel};
use crate::vehicle::{Vehicle, VehicleError};
use geodesy::{ecef_to_geodetic, enu_rotation, geodetic_to_ecef, Geodetic, Vector3, EARTH_ROTATION_RAD_S};

/// Numerical and physical switches of an integration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlightConfig {
    /// Step while thrusting and while inside the sensible atmosphere (below [`DENSE_AIR_M`]).
    pub boost_step_s: f64,
    /// Step in the near-vacuum of midcourse.
    pub coast_step_s: f64,
    pub gravity: GravityModel,
    pub atmosphere: bool,
    /// The day's departure from the standard atmosphere; `None` flies the standard itself.
    pub air: Option<AirDeparture>,
    /// Whether the Earth turns (Coriolis and centrifugal terms); off only for closed-form checks.
    pub rotation: bool,
    /// An object still aloft after this long is in orbit or mis-specified: stop with an error.
    pub max_flight_s: f64,
}

/// Below this altitude drag matters and the fine step is used.
pub const DENSE_AIR_M: f64 = 120_000.0;
/// Above this the atmosphere model is zero anyway; skip computing the altitude for drag.
const DRAG_CEILING_RADIUS_M: f64 = geodesy::Wgs84::A_M + TOP_OF_ATMOSPHERE_M;
/// Impact refinement: bisection steps on the last step's length (2⁻⁴⁸ of a step).
const IMPACT_BISECTIONS: usize = 48;

impl Default for FlightConfig {
    fn default() -> Self {
        FlightConfig {
            boost_step_s: 0.1,
            coast_step_s: 1.0,
            gravity: GravityModel::Zonal4,
            atmosphere: true,
            air: None,
            rotation: true,
            // The longest lofted ICBM tests flew about 75 minutes.
            max_flight_s: 3.0 * 3600.0,
        }
    }
}

/// How the thrust is pointed: straight up, then tipped toward the azimuth by `kick_rad` over
/// `pitch_over_s` (the angle grows linearly), then along the air-relative velocity (a gravity
/// turn) until burnout or `cutoff_s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PitchProgram {
    pub azimuth_rad: f64,
    pub vertical_rise_s: f64,
    pub pitch_over_s: f64,
    pub kick_rad: f64,
    /// Thrust termination before the last stage burns out (energy management for shorter range).
    pub cutoff_s: Option<f64>,
}

/// Flight phase, as operators name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Boost,
    Midcourse,
    Terminal,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Boost => "boost",
            Phase::Midcourse => "midcourse",
            Phase::Terminal => "terminal",
        }
    }
}

/// Terminal phase starts when a descending object falls below this height (the Kármán line).
pub const TERMINAL_BELOW_M: f64 = 100_000.0;

/// One integration step's end state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub pos_ecef_m: Vector3<f64>,
    pub vel_ecef_mps: Vector3<f64>,
    pub alt_m: f64,
    pub thrusting: bool,
}

/// A whole flight from launch (t = 0) to impact.
#[derive(Debug, Clone)]
pub struct Trajectory {
    pub samples: Vec<Sample>,
    /// End of each stage's burn (or the cut-off), seconds after launch.
    pub stage_burnouts_s: Vec<f64>,
    /// End of powered flight.
    pub burnout_s: f64,
    pub apogee_s: f64,
    pub apogee_alt_m: f64,
    pub impact_s: f64,
    pub impact: Geodetic,
    pub launch: Geodetic,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FlightError {
    #[error(transparent)]
    Vehicle(#[from] VehicleError),
    #[error("failed to fly: invalid pitch programme: {0}")]
    Program(String),
    #[error("failed to fly: the missile hit the ground {t_s:.1} s after launch, still under thrust")]
    CrashedDuringBoost { t_s: f64 },
    #[error("failed to fly: no impact within {max_flight_s:.0} s (orbital or escaping)")]
    NoImpact { max_flight_s: f64 },
    #[error("failed to fly: non-finite state at {t_s:.3} s")]
    NonFinite { t_s: f64 },
}

/// What accelerates the object during one segment.
#[derive(Clone, Copy)]
struct Forces {
    /// Thrust in newtons; zero when coasting.
    thrust_n: f64,
    /// Mass at the segment's start and its rate of change.
    mass0_kg: f64,
    mass_flow_kg_s: f64,
    t0_s: f64,
    steering: Steering,
    drag: DragLaw,
}

/// How drag decelerates the object: `a = −ρ |v| v · k`.
#[derive(Clone, Copy)]
enum DragLaw {
    /// Cd·A (m²): acceleration scales with 1/m.
    CdArea(f64),
    /// β = m/(Cd·A) (kg/m²): acceleration is ρ v² / (2β).
    Ballistic(f64),
    None,
}

#[derive(Clone, Copy)]
enum Steering {
    Up,
    PitchOver { start_s: f64, duration_s: f64, kick_rad: f64, horizontal: Vector3<f64> },
    AlongVelocity,
}

struct Dynamics {
    cfg: FlightConfig,
}

impl Dynamics {
    fn accel(&self, t: f64, r: &Vector3<f64>, v: &Vector3<f64>, f: &Forces) -> Vector3<f64> {
        let mut a = gravity_mps2(r, self.cfg.gravity);
        if self.cfg.rotation {
            let w = Vector3::new(0.0, 0.0, EARTH_ROTATION_RAD_S);
            a -= 2.0 * w.cross(v) + w.cross(&w.cross(r));
        }
        let mass = f.mass0_kg - f.mass_flow_kg_s * (t - f.t0_s);
        if f.thrust_n > 0.0 {
            a += (f.thrust_n / mass) * thrust_direction(t, r, v, &f.steering);
        }
        if self.cfg.atmosphere && r.norm_squared() < DRAG_CEILING_RADIUS_M * DRAG_CEILING_RADIUS_M {
            let scale = match f.drag {
                DragLaw::CdArea(cd_area) => cd_area / (2.0 * mass),
                DragLaw::Ballistic(beta) => 1.0 / (2.0 * beta),
                DragLaw::None => 0.0,
            };
            if scale > 0.0 {
                let h = geodesy::geocentric_height_m(r);
                let rho = density_kg_m3(h) * self.cfg.air.map_or(1.0, |air| air.factor(h));
                a -= (rho * v.norm() * scale) * v;
            }
        }
        a
    }

    /// The zero-height crossing within a step of length `h` from `(t, r, v)`, by bisection of
    /// the step length: the length, position and velocity there.
    fn ground_crossing(
        &self,
        t: f64,
        r: &Vector3<f64>,
        v: &Vector3<f64>,
        h: f64,
        f: &Forces,
        bisections: usize,
    ) -> (f64, Vector3<f64>, Vector3<f64>) {
        let (mut lo, mut hi) = (0.0, h);
        for _ in 0..bisections {
            let mid = 0.5 * (lo + hi);
            let (rm, _) = self.rk4(t, r, v, mid, f);
            if ecef_to_geodetic(&rm).alt_m > 0.0 {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (ri, vi) = self.rk4(t, r, v, hi, f);
        (hi, ri, vi)
    }

    fn rk4(&self, t: f64, r: &Vector3<f64>, v: &Vector3<f64>, h: f64, f: &Forces) -> (Vector3<f64>, Vector3<f64>) {
        let a1 = self.accel(t, r, v, f);
        let (r2, v2) = (r + v * (h / 2.0), v + a1 * (h / 2.0));
        let a2 = self.accel(t + h / 2.0, &r2, &v2, f);
        let (r3, v3) = (r + v2 * (h / 2.0), v + a2 * (h / 2.0));
        let a3 = self.accel(t + h / 2.0, &r3, &v3, f);
        let (r4, v4) = (r + v3 * h, v + a3 * h);
        let a4 = self.accel(t + h, &r4, &v4, f);
        (r + (v + 2.0 * v2 + 2.0 * v3 + v4) * (h / 6.0), v + (a1 + 2.0 * a2 + 2.0 * a3 + a4) * (h / 6.0))
    }
}

fn local_up(r: &Vector3<f64>) -> Vector3<f64> {
    let g = ecef_to_geodetic(r);
    let (sin_lat, cos_lat) = g.lat_rad.sin_cos();
    let (sin_lon, cos_lon) = g.lon_rad.sin_cos();
    Vector3::new(cos_lat * cos_lon, cos_lat * sin_lon, sin_lat)
}

fn thrust_direction(t: f64, r: &Vector3<f64>, v: &Vector3<f64>, steering: &Steering) -> Vector3<f64> {
    match *steering {
        Steering::Up => local_up(r),
        Steering::PitchOver { start_s, duration_s, kick_rad, horizontal } => {
            let angle = kick_rad * ((t - start_s) / duration_s).clamp(0.0, 1.0);
            (angle.cos() * local_up(r) + angle.sin() * horizontal).normalize()
        }
        Steering::AlongVelocity => {
            let speed = v.norm();
            if speed > 1.0 {
                v / speed
            } else {
                local_up(r)
            }
        }
    }
}

fn check_program(vehicle: &Vehicle, p: &PitchProgram) -> Result<(), FlightError> {
    let bad = |m: String| Err(FlightError::Program(m));
    if !p.azimuth_rad.is_finite() {
        return bad(format!("azimuth {} is not finite", p.azimuth_rad));
    }
    if !(p.vertical_rise_s >= 0.0 && p.vertical_rise_s < 60.0) {
        return bad(format!("vertical rise {} s must be in [0, 60)", p.vertical_rise_s));
    }
    if !(p.pitch_over_s > 0.0 && p.pitch_over_s < 120.0) {
        return bad(format!("pitch-over {} s must be in (0, 120)", p.pitch_over_s));
    }
    if !(p.kick_rad >= 0.0 && p.kick_rad < std::f64::consts::FRAC_PI_2) {
        return bad(format!("kick {} rad must be in [0, π/2)", p.kick_rad));
    }
    if p.vertical_rise_s + p.pitch_over_s >= vehicle.total_burn_s() {
        return bad("pitch-over must end before burnout".to_string());
    }
    if let Some(c) = p.cutoff_s {
        if !(c > p.vertical_rise_s + p.pitch_over_s && c <= vehicle.total_burn_s()) {
            return bad(format!("cut-off {c} s must fall after the pitch-over and before burnout"));
        }
    }
    Ok(())
}

/// Records samples and watches for the ground and for bad numbers.
struct Recorder {
    samples: Vec<Sample>,
}

impl Recorder {
    fn push(&mut self, t_s: f64, r: Vector3<f64>, v: Vector3<f64>, thrusting: bool) -> Result<f64, FlightError> {
        if !(r.iter().all(|x| x.is_finite()) && v.iter().all(|x| x.is_finite())) {
            return Err(FlightError::NonFinite { t_s });
        }
        let alt_m = ecef_to_geodetic(&r).alt_m;
        self.samples.push(Sample { t_s, pos_ecef_m: r, vel_ecef_mps: v, alt_m, thrusting });
        Ok(alt_m)
    }
}

/// Flies `vehicle` from `site` (at rest on the turning Earth) under `program` to impact.
pub fn fly(
    vehicle: &Vehicle,
    site: &Geodetic,
    program: &PitchProgram,
    cfg: &FlightConfig,
) -> Result<Trajectory, FlightError> {
    vehicle.validate()?;
    check_program(vehicle, program)?;
    let dynamics = Dynamics { cfg: *cfg };
    let rot = enu_rotation(site);
    let (east, north) = (rot.row(0).transpose(), rot.row(1).transpose());
    let horizontal = program.azimuth_rad.sin() * east + program.azimuth_rad.cos() * north;

    // Stage timetable and the end of powered flight.
    let mut stage_ends = Vec::with_capacity(vehicle.stages.len());
    let mut acc = 0.0;
    for s in &vehicle.stages {
        acc += s.burn_time_s;
        stage_ends.push(acc);
    }
    let burn_end = program.cutoff_s.unwrap_or(acc);
    let pitch_start = program.vertical_rise_s;
    let pitch_end = pitch_start + program.pitch_over_s;
    let mut bounds: Vec<f64> = [pitch_start, pitch_end].into_iter().chain(stage_ends.iter().copied()).collect();
    bounds.retain(|b| *b > 0.0 && *b < burn_end);
    bounds.push(burn_end);
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();

    let mut r = geodetic_to_ecef(site);
    let mut v = Vector3::zeros();
    let mut t = 0.0;
    let mut rec = Recorder { samples: Vec::with_capacity(4096) };
    rec.push(t, r, v, true)?;
    let mut stage_burnouts = Vec::new();
    let mut mass = vehicle.launch_mass_kg();
    let mut stage_index = 0;
    let mut stage_start = 0.0;

    for &end in &bounds {
        let stage = &vehicle.stages[stage_index];
        let steering = if t < pitch_start {
            Steering::Up
        } else if t < pitch_end {
            Steering::PitchOver {
                start_s: pitch_start,
                duration_s: program.pitch_over_s,
                kick_rad: program.kick_rad,
                horizontal,
            }
        } else {
            Steering::AlongVelocity
        };
        let forces = Forces {
            thrust_n: stage.thrust_n(),
            mass0_kg: mass - stage.mass_flow_kg_s() * (t - stage_start),
            mass_flow_kg_s: stage.mass_flow_kg_s(),
            t0_s: t,
            steering,
            drag: DragLaw::CdArea(vehicle.boost_cd_area_m2),
        };
        let n = ((end - t) / cfg.boost_step_s).ceil().max(1.0) as usize;
        let h = (end - t) / n as f64;
        let seg_start = t;
        for i in 1..=n {
            (r, v) = dynamics.rk4(t, &r, &v, h, &forces);
            t = seg_start + h * i as f64;
            let alt = rec.push(t, r, v, true)?;
            if alt < site.alt_m - 1.0 && t > 1.0 {
                return Err(FlightError::CrashedDuringBoost { t_s: t });
            }
        }
        if stage_ends.get(stage_index).is_some_and(|e| (*e - end).abs() < 1e-9) && end < burn_end {
            // Stage burnout: drop its structure, light the next.
            mass -= stage.propellant_kg + stage.dry_kg;
            stage_burnouts.push(end);
            stage_index += 1;
            stage_start = end;
        }
    }
    stage_burnouts.push(burn_end);
    if let Some(last) = rec.samples.last_mut() {
        // The sample at burnout belongs to the ballistic arc that starts there.
        last.thrusting = false;
    }
    let ballistic = coast(&dynamics, t, r, v, DragLaw::Ballistic(vehicle.reentry_ballistic_coeff_kg_m2), rec)?;
    Ok(finish(ballistic, stage_burnouts, burn_end, *site))
}

/// Flies a ballistic object from an ECEF state (t = 0) to impact, with drag from its ballistic
/// coefficient (`None`: no drag). The product's `launch` is the starting point.
pub fn fly_ballistic(
    pos_ecef_m: Vector3<f64>,
    vel_ecef_mps: Vector3<f64>,
    ballistic_coeff_kg_m2: Option<f64>,
    cfg: &FlightConfig,
) -> Result<Trajectory, FlightError> {
    let dynamics = Dynamics { cfg: *cfg };
    let mut rec = Recorder { samples: Vec::with_capacity(4096) };
    rec.push(0.0, pos_ecef_m, vel_ecef_mps, false)?;
    let drag = ballistic_coeff_kg_m2.map_or(DragLaw::None, DragLaw::Ballistic);
    let samples = coast(&dynamics, 0.0, pos_ecef_m, vel_ecef_mps, drag, rec)?;
    Ok(finish(samples, Vec::new(), 0.0, ecef_to_geodetic(&pos_ecef_m)))
}

/// Where and when a ballistic object lands, without recording its path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BallisticImpact {
    pub impact: Geodetic,
    pub impact_s: f64,
    /// Highest height reached from the start on (the start's height if it only descends).
    pub apogee_alt_m: f64,
}

/// Bisection steps for the impact instant in [`ballistic_impact`]: 2⁻³⁰ of a step.
const FAST_IMPACT_BISECTIONS: usize = 30;

/// [`fly_ballistic`] reduced to its landing: the same physics and steps, no samples kept, for
/// predictors that fly many trajectories per second.
pub fn ballistic_impact(
    pos_ecef_m: Vector3<f64>,
    vel_ecef_mps: Vector3<f64>,
    ballistic_coeff_kg_m2: Option<f64>,
    cfg: &FlightConfig,
) -> Result<BallisticImpact, FlightError> {
    let dynamics = Dynamics { cfg: *cfg };
    let drag = ballistic_coeff_kg_m2.map_or(DragLaw::None, DragLaw::Ballistic);
    let forces = Forces { thrust_n: 0.0, mass0_kg: 1.0, mass_flow_kg_s: 0.0, t0_s: 0.0, steering: Steering::Up, drag };
    let (mut t, mut r, mut v) = (0.0, pos_ecef_m, vel_ecef_mps);
    let mut alt = ecef_to_geodetic(&r).alt_m;
    let mut apogee = alt;
    loop {
        if t > cfg.max_flight_s {
            return Err(FlightError::NoImpact { max_flight_s: cfg.max_flight_s });
        }
        let h = if alt < DENSE_AIR_M { cfg.boost_step_s } else { cfg.coast_step_s };
        let (r1, v1) = dynamics.rk4(t, &r, &v, h, &forces);
        if !(r1.iter().all(|x| x.is_finite()) && v1.iter().all(|x| x.is_finite())) {
            return Err(FlightError::NonFinite { t_s: t + h });
        }
        let alt1 = ecef_to_geodetic(&r1).alt_m;
        if alt1 <= 0.0 {
            let (hi, ri, _) = dynamics.ground_crossing(t, &r, &v, h, &forces, FAST_IMPACT_BISECTIONS);
            return Ok(BallisticImpact { impact: ecef_to_geodetic(&ri), impact_s: t + hi, apogee_alt_m: apogee });
        }
        apogee = apogee.max(alt1);
        (t, r, v, alt) = (t + h, r1, v1, alt1);
    }
}

fn coast(
    dynamics: &Dynamics,
    mut t: f64,
    mut r: Vector3<f64>,
    mut v: Vector3<f64>,
    drag: DragLaw,
    mut rec: Recorder,
) -> Result<Vec<Sample>, FlightError> {
    let cfg = &dynamics.cfg;
    let forces = Forces { thrust_n: 0.0, mass0_kg: 1.0, mass_flow_kg_s: 0.0, t0_s: t, steering: Steering::Up, drag };
    let mut alt = rec.samples.last().map_or(0.0, |s| s.alt_m);
    loop {
        if t > cfg.max_flight_s {
            return Err(FlightError::NoImpact { max_flight_s: cfg.max_flight_s });
        }
        let h = if alt < DENSE_AIR_M { cfg.boost_step_s } else { cfg.coast_step_s };
        let (r1, v1) = dynamics.rk4(t, &r, &v, h, &forces);
        let alt1 = ecef_to_geodetic(&r1).alt_m;
        if alt1 <= 0.0 {
            let (hi, ri, vi) = dynamics.ground_crossing(t, &r, &v, h, &forces, IMPACT_BISECTIONS);
            rec.push(t + hi, ri, vi, false)?;
            return Ok(rec.samples);
        }
        t += h;
        r = r1;
        v = v1;
        alt = rec.push(t, r, v, false)?;
    }
}

fn finish(samples: Vec<Sample>, stage_burnouts_s: Vec<f64>, burnout_s: f64, launch: Geodetic) -> Trajectory {
    // Apogee: the highest sample, refined by the parabola through it and its neighbours.
    let i = samples.iter().enumerate().max_by(|a, b| a.1.alt_m.total_cmp(&b.1.alt_m)).map_or(0, |(i, _)| i);
    let (mut apogee_s, mut apogee_alt_m) = (samples[i].t_s, samples[i].alt_m);
    if i > 0 && i + 1 < samples.len() {
        let (a, b, c) = (&samples[i - 1], &samples[i], &samples[i + 1]);
        let (t0, t1, t2) = (a.t_s, b.t_s, c.t_s);
        let (y0, y1, y2) = (a.alt_m, b.alt_m, c.alt_m);
        let d01 = (y1 - y0) / (t1 - t0);
        let d12 = (y2 - y1) / (t2 - t1);
        let curvature = (d12 - d01) / (t2 - t0);
        if curvature < 0.0 {
            // y = y1 + d (t − t1) + curvature (t − t1)(t − t1 + …); vertex of the Newton form.
            let slope_at_t1 = d01 + curvature * (t1 - t0);
            let dt = -slope_at_t1 / (2.0 * curvature);
            if dt.abs() < (t2 - t0) {
                apogee_s = t1 + dt;
                apogee_alt_m = y1 + slope_at_t1 * dt + curvature * dt * dt;
            }
        }
    }
    let last = samples.last().copied().unwrap_or(Sample {
        t_s: 0.0,
        pos_ecef_m: Vector3::zeros(),
        vel_ecef_mps: Vector3::zeros(),
        alt_m: 0.0,
        thrusting: false,
    });
    Trajectory {
        impact_s: last.t_s,
        impact: ecef_to_geodetic(&last.pos_ecef_m),
        samples,
        stage_burnouts_s,
        burnout_s,
        apogee_s,
        apogee_alt_m,
        launch,
    }
}

impl Trajectory {
    /// Ground range from launch to impact along the WGS-84 geodesic.
    pub fn range_m(&self) -> f64 {
        geodesy::geodesic_inverse(self.launch.lat_rad, self.launch.lon_rad, self.impact.lat_rad, self.impact.lon_rad)
            .distance_m
    }

    /// Flight phase at `t_s` seconds after launch.
    pub fn phase_at(&self, t_s: f64, alt_m: f64) -> Phase {
        if t_s < self.burnout_s {
            Phase::Boost
        } else if t_s > self.apogee_s && alt_m < TERMINAL_BELOW_M {
            Phase::Terminal
        } else {
            Phase::Midcourse
        }
    }

    /// Position and velocity at `t_s` (between launch and impact) by cubic Hermite
    /// interpolation between the integration steps, which matches the integrator's own
    /// accuracy at its step sizes.
    pub fn state_at(&self, t_s: f64) -> Option<(Vector3<f64>, Vector3<f64>)> {
        let first = self.samples.first()?;
        let last = self.samples.last()?;
        if !(t_s >= first.t_s && t_s <= last.t_s) {
            return None;
        }
        let j = self.samples.partition_point(|s| s.t_s <= t_s).clamp(1, self.samples.len() - 1);
        let (a, b) = (&self.samples[j - 1], &self.samples[j]);
        let h = b.t_s - a.t_s;
        if h <= 0.0 {
            return Some((a.pos_ecef_m, a.vel_ecef_mps));
        }
        let s = (t_s - a.t_s) / h;
        let (s2, s3) = (s * s, s * s * s);
        let (h00, h10, h01, h11) = (2.0 * s3 - 3.0 * s2 + 1.0, s3 - 2.0 * s2 + s, -2.0 * s3 + 3.0 * s2, s3 - s2);
        let pos = a.pos_ecef_m * h00 + a.vel_ecef_mps * (h10 * h) + b.pos_ecef_m * h01 + b.vel_ecef_mps * (h11 * h);
        let (d00, d10, d01, d11) =
            (6.0 * s2 - 6.0 * s, 3.0 * s2 - 4.0 * s + 1.0, -6.0 * s2 + 6.0 * s, 3.0 * s2 - 2.0 * s);
        let vel = (a.pos_ecef_m * d00 + b.pos_ecef_m * d01) / h + a.vel_ecef_mps * d10 + b.vel_ecef_mps * d11;
        Some((pos, vel))
    }

    /// Whether the missile is under thrust at `t_s`.
    pub fn thrusting_at(&self, t_s: f64) -> bool {
        t_s >= 0.0 && t_s < self.burnout_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approximate_altitude_is_within_metres_where_air_matters() {
        for lat in [-90.0, -60.0, -45.0, -10.0, 0.0, 30.0, 45.0, 70.0, 89.0] {
            for alt in [-400.0, 0.0, 10e3, 50e3, 100e3, 200e3] {
                let r = geodetic_to_ecef(&Geodetic::from_degrees(lat, 20.0, alt));
                let err = (geodesy::geocentric_height_m(&r) - alt).abs();
                assert!(err < 1.5, "lat {lat} alt {alt}: off by {err} m");
            }
        }
    }
}
