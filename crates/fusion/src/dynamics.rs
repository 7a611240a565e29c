//! Motion models over the rotating Earth, in ECEF: J2 gravity, Coriolis and centrifugal terms,
//! drag with an estimated ballistic coefficient, and a thrust acceleration carried in the state.
//!
//! Two models share the 10-element state `[r, v, a, κ]`:
//! - **ballistic**: `a` is zero (the motor is out); drag is `−ρ(h)·|v|·v·κ/2000`, with κ the
//!   state's drag parameter (1,000/β, β the ballistic coefficient in kg/m²). κ is a slow random
//!   walk, learnt from the deceleration where the air is thick enough to show it (below about
//!   90 km) and left at its prior above. What the model still leaves out — gravity beyond J2,
//!   the quick part of the air's departure from the standard atmosphere — is white
//!   acceleration noise, the drag part of it a fraction of the drag;
//! - **boost**: `a` is a random walk (white jerk), which follows a thrusting, turning and
//!   staging rocket and absorbs its drag; κ is carried unchanged (the re-entering body's β is
//!   not the boosting missile's).

use crate::{Cov, State, DIM, DRAG};
use flight::atmosphere::density_kg_m3;
use flight::gravity::{gravity_mps2, GravityModel};
use geodesy::{Matrix3, Vector3, Wgs84, EARTH_ROTATION_RAD_S};
use nalgebra::SMatrix;

/// Which motion model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    Ballistic,
    Boost,
}

/// Tunable noise of the motion models.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotionNoise {
    /// Ballistic: white acceleration spectral density in vacuum (m²/s³). What the model leaves
    /// out there — gravity beyond J2, lunisolar pull, radiation pressure — is an acceleration
    /// under a_M = 1e-4 m/s² that changes slowly along the path. White noise stands in for a
    /// slowly changing pull only over the span a track's estimate remembers: q ≈ a_M²·τ
    /// (Bar-Shalom, Li and Kirubarajan, *Estimation with Applications to Tracking and
    /// Navigation*, 2001, §6.2, with the revisit T there replaced by the memory τ), 2e-7 for
    /// τ = 20 s. The textbook's one-second revisit (1e-8) looked right only while the boost
    /// model leaked its spread into the ballistic one (`filter::MIX_FROM_WEIGHT`); without
    /// the leak it left a track over-confident wherever radars held it for minutes (the lofted
    /// ICBM's descent, NEES 17–29 in 6; Honshu's midcourse, 8–9). Chosen by the eval over the
    /// four bundled scenarios from 1e-8, 1e-7, 2e-7 and 3e-7 (docs/BENCHMARKS.md, "ninth
    /// session"); 1e-6, ten times a_M as a random walk, made a well-measured track's velocity
    /// variance 2–4 times its squared error (measured while the leak was there too).
    pub ballistic_q_m2_s3: f64,
    /// The ballistic coefficient a new track starts from (kg/m²): the prior mean of κ is
    /// 1,000 divided by it.
    pub nominal_ballistic_coeff_kg_m2: f64,
    /// 1σ of κ's prior (m²/t). With 0.1 about 0.125, β from 4,400 to 40,000 kg/m² is within
    /// 1σ, and a tumbling 3,000 kg/m² body (κ 0.33) is about 2σ out.
    pub drag_param_prior_sd: f64,
    /// κ's random-walk density ((m²/t)²/s): β drifts with Mach number and attitude during
    /// re-entry, and the real air's slow departure from the 1976 standard atmosphere (about
    /// 10% at re-entry heights) shows as a drift of κ too; 2e-5 lets κ move by 0.03 (a quarter
    /// of its prior value) in 40 s.
    pub drag_param_q: f64,
    /// Boost: white jerk spectral density (m²/s⁵) driving the thrust acceleration.
    pub boost_jerk_q_m2_s5: f64,
}

impl Default for MotionNoise {
    fn default() -> Self {
        MotionNoise {
            ballistic_q_m2_s3: 2e-7,
            nominal_ballistic_coeff_kg_m2: 8_000.0,
            drag_param_prior_sd: 0.1,
            drag_param_q: 2e-5,
            boost_jerk_q_m2_s5: 16.0,
        }
    }
}

impl MotionNoise {
    /// The prior mean of κ (m²/t).
    pub fn drag_param_prior(&self) -> f64 {
        1_000.0 / self.nominal_ballistic_coeff_kg_m2
    }

    /// The ballistic coefficient a track has learnt, once its κ's σ has fallen to half the
    /// prior's or less (the air has shown the drag); `None` before, when β is only the prior.
    /// A heavy re-entry vehicle and light debris or a tumbling booster differ in β by a factor
    /// of several, so the estimate tells them apart.
    pub fn learnt_ballistic_coeff(&self, x: &State, p: &Cov) -> Option<BallisticCoeff> {
        let sd = p[(DRAG, DRAG)].sqrt();
        let kappa = x[DRAG];
        // False for a NaN: not learnt.
        let learnt = sd <= LEARNT_FRACTION * self.drag_param_prior_sd && kappa_clearly_positive(x, p);
        learnt.then(|| BallisticCoeff { kg_m2: 1_000.0 / kappa, ln_sd: sd / kappa })
    }

    /// Gives a new track's state κ's prior: mean, variance, and no correlation.
    pub fn set_drag_prior(&self, x: &mut State, p: &mut Cov) {
        x[DRAG] = self.drag_param_prior();
        for i in 0..DIM {
            p[(i, DRAG)] = 0.0;
            p[(DRAG, i)] = 0.0;
        }
        p[(DRAG, DRAG)] = self.drag_param_prior_sd * self.drag_param_prior_sd;
    }
}

/// Whether κ is more than 2σ above zero (false for a NaN): only then is β = 1,000/κ a number
/// to fly or report, and ln β's spread about −dκ/κ a fair linearisation.
pub fn kappa_clearly_positive(x: &State, p: &Cov) -> bool {
    x[DRAG] > 2.0 * p[(DRAG, DRAG)].sqrt()
}

/// κ counts as learnt once its σ is at most this fraction of the prior's.
const LEARNT_FRACTION: f64 = 0.5;

/// A learnt ballistic coefficient: β (kg/m²) and the 1σ of ln β (0.1 is about ±10%).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BallisticCoeff {
    pub kg_m2: f64,
    pub ln_sd: f64,
}

fn omega() -> Vector3<f64> {
    Vector3::new(0.0, 0.0, EARTH_ROTATION_RAD_S)
}

/// κ as the drag uses it: a negative estimate (noise, where κ is barely observed) is no drag,
/// not a push.
fn kappa(x: &State) -> f64 {
    x[DRAG].max(0.0)
}

/// Drag acceleration with drag parameter `kappa` (m²/t).
fn drag(r: &Vector3<f64>, v: &Vector3<f64>, kappa: f64) -> Vector3<f64> {
    let rho = density_kg_m3(geodesy::geocentric_height_m(r));
    if rho == 0.0 {
        return Vector3::zeros();
    }
    -(rho * v.norm() * kappa / 2_000.0) * v
}

/// Below this, ρ·|v|²/2000 (the drag of κ = 1 m²/t) is left out of the Jacobian: 1e-8 m/s² is
/// a millimetre over a 2 s step. It holds above about 150 km, where density evaluations would
/// otherwise be most of the Jacobian's cost.
const DRAG_JACOBIAN_FLOOR_MPS2: f64 = 1e-8;

/// Height step for the density's gradient (m).
const DENSITY_GRADIENT_STEP_M: f64 = 50.0;

/// Time derivative of the state.
pub fn derivative(x: &State, model: Model) -> State {
    let r = Vector3::new(x[0], x[1], x[2]);
    let v = Vector3::new(x[3], x[4], x[5]);
    let a = Vector3::new(x[6], x[7], x[8]);
    let w = omega();
    let mut acc = gravity_mps2(&r, GravityModel::J2) - 2.0 * w.cross(&v) - w.cross(&w.cross(&r));
    match model {
        Model::Boost => acc += a,
        Model::Ballistic => acc += drag(&r, &v, kappa(x)),
    }
    let mut d = State::zeros();
    d.fixed_rows_mut::<3>(0).copy_from(&v);
    d.fixed_rows_mut::<3>(3).copy_from(&acc);
    d
}

/// Longest single integration step; longer predictions are split.
const MAX_STEP_S: f64 = 2.0;

/// One classical Runge–Kutta step of `h` seconds.
fn rk4_step(x: &State, h: f64, model: Model) -> State {
    let k1 = derivative(x, model);
    let k2 = derivative(&(x + k1 * (h / 2.0)), model);
    let k3 = derivative(&(x + k2 * (h / 2.0)), model);
    let k4 = derivative(&(x + k3 * h), model);
    x + (k1 + 2.0 * k2 + 2.0 * k3 + k4) * (h / 6.0)
}

/// Longest sub-step for a ballistic state in the air: a re-entering body falls through a
/// density scale height (about 7 km) in a few seconds, and the transition must follow the
/// drag's change across the step.
const AIR_STEP_S: f64 = 0.25;
/// Below this height a ballistic state takes [`AIR_STEP_S`] steps.
const AIR_STEP_BELOW_M: f64 = 90_000.0;

/// Sub-steps of a span from `x` under `model`: how many, and how long each.
fn steps(x: &State, dt_s: f64, model: Model) -> (usize, f64) {
    let in_air =
        model == Model::Ballistic && geodesy::geocentric_height_m(&Vector3::new(x[0], x[1], x[2])) < AIR_STEP_BELOW_M;
    let longest = if in_air { AIR_STEP_S } else { MAX_STEP_S };
    let n = (dt_s.abs() / longest).ceil().max(1.0) as usize;
    (n, dt_s / n as f64)
}

/// Propagates the state `dt_s` seconds (negative allowed) with RK4 sub-steps.
pub fn propagate(x: &State, dt_s: f64, model: Model) -> State {
    let (n, h) = steps(x, dt_s, model);
    let mut x = *x;
    if model == Model::Ballistic {
        x.fixed_rows_mut::<3>(6).fill(0.0);
    }
    for _ in 0..n {
        x = rk4_step(&x, h, model);
    }
    x
}

/// Jacobian of the derivative (point-mass gravity gradient, J2's gradient being 1e-3 of it;
/// for the ballistic model, drag's dependence on height, velocity and κ).
pub fn jacobian(x: &State, model: Model) -> SMatrix<f64, DIM, DIM> {
    let r = Vector3::new(x[0], x[1], x[2]);
    let rn = r.norm();
    let rhat = r / rn;
    let gradient = (Wgs84::GM_M3_S2 / rn.powi(3)) * (3.0 * rhat * rhat.transpose() - Matrix3::identity());
    let w = omega().cross_matrix();
    let mut a = SMatrix::<f64, DIM, DIM>::zeros();
    a.fixed_view_mut::<3, 3>(0, 3).copy_from(&Matrix3::identity());
    a.fixed_view_mut::<3, 3>(3, 0).copy_from(&(gradient - w * w));
    a.fixed_view_mut::<3, 3>(3, 3).copy_from(&(-2.0 * w));
    match model {
        Model::Boost => a.fixed_view_mut::<3, 3>(3, 6).copy_from(&Matrix3::identity()),
        Model::Ballistic => add_drag_jacobian(&mut a, &r, x),
    }
    a
}

/// Adds drag's partial derivatives to the ballistic Jacobian: with d = −ρ(h)·|v|·v·κ/2000,
/// ∂d/∂v = −(ρκ/2000)(|v|·I + v·vᵀ/|v|), ∂d/∂κ = −ρ|v|·v/2000 and ∂d/∂r = (d/ρ)·ρ′(h)·r̂ᵀ (the
/// geocentric height's gradient taken as the radial direction).
fn add_drag_jacobian(a: &mut SMatrix<f64, DIM, DIM>, r: &Vector3<f64>, x: &State) {
    let h = geodesy::geocentric_height_m(r);
    let rho = density_kg_m3(h);
    let v = Vector3::new(x[3], x[4], x[5]);
    let speed = v.norm();
    if rho * speed * speed / 2_000.0 < DRAG_JACOBIAN_FLOOR_MPS2 {
        return;
    }
    let k = kappa(x);
    let per_kappa = -(rho * speed / 2_000.0) * v;
    a.fixed_view_mut::<3, 1>(3, DRAG).copy_from(&per_kappa);
    let dv = -(rho * k / 2_000.0) * (Matrix3::identity() * speed + v * v.transpose() / speed);
    let block = a.fixed_view::<3, 3>(3, 3) + dv;
    a.fixed_view_mut::<3, 3>(3, 3).copy_from(&block);
    let drho_dh = (density_kg_m3(h + DENSITY_GRADIENT_STEP_M) - density_kg_m3(h - DENSITY_GRADIENT_STEP_M))
        / (2.0 * DENSITY_GRADIENT_STEP_M);
    let dr = (per_kappa * (k * drho_dh / rho)) * (r / r.norm()).transpose();
    let block = a.fixed_view::<3, 3>(3, 0) + dr;
    a.fixed_view_mut::<3, 3>(3, 0).copy_from(&block);
}

/// State transition matrix over `dt_s`: the third-order series of exp(A·dt), accurate while
/// ‖A‖·dt is small (gravity gradient × dt² ≈ 1e-5 for a 2 s step); longer spans are chained.
pub fn transition(x: &State, dt_s: f64, model: Model) -> SMatrix<f64, DIM, DIM> {
    propagate_with_transition(x, dt_s, model).1
}

/// [`propagate`] and [`transition`] in one pass: the transition is chained along the very
/// sub-step states the propagation visits, so each is computed once. Both results equal the
/// two functions' bit for bit.
pub fn propagate_with_transition(x: &State, dt_s: f64, model: Model) -> (State, SMatrix<f64, DIM, DIM>) {
    let (n, h) = steps(x, dt_s, model);
    let mut phi = SMatrix::<f64, DIM, DIM>::identity();
    let mut xi = *x;
    if model == Model::Ballistic {
        xi.fixed_rows_mut::<3>(6).fill(0.0);
    }
    for k in 0..n {
        let next = rk4_step(&xi, h, model);
        // Linearised at the sub-step's midpoint, which makes the chained product second-order
        // accurate: at the start, a body falling through the air would see the density of
        // the step's top for all of it.
        let ah = jacobian(&((xi + next) * 0.5), model) * h;
        let ah2 = ah * ah;
        let step = SMatrix::<f64, DIM, DIM>::identity() + ah + ah2 / 2.0 + ah2 * ah / 6.0;
        phi = if k == 0 { step } else { step * phi };
        xi = next;
    }
    if model == Model::Ballistic {
        // The motor is out: the thrust state is reset, not carried.
        phi.fixed_rows_mut::<3>(6).fill(0.0);
    }
    (xi, phi)
}

/// Process noise accumulated over `dt_s`.
pub fn process_noise(dt_s: f64, model: Model, noise: &MotionNoise) -> Cov {
    let dt = dt_s.abs();
    let mut q = Cov::zeros();
    let eye = Matrix3::<f64>::identity();
    match model {
        Model::Ballistic => {
            // The air's departure from the standard, layers included, is carried by κ's drift
            // (`drag_param_q`); white noise on the drag as well made every descent through the
            // air cautious (docs/BENCHMARKS.md, "eighth session").
            let qa = noise.ballistic_q_m2_s3;
            q.fixed_view_mut::<3, 3>(0, 0).copy_from(&(eye * (qa * dt.powi(3) / 3.0)));
            q.fixed_view_mut::<3, 3>(0, 3).copy_from(&(eye * (qa * dt.powi(2) / 2.0)));
            q.fixed_view_mut::<3, 3>(3, 0).copy_from(&(eye * (qa * dt.powi(2) / 2.0)));
            q.fixed_view_mut::<3, 3>(3, 3).copy_from(&(eye * (qa * dt)));
            // Keep the (zeroed) thrust block positive definite and tiny.
            q.fixed_view_mut::<3, 3>(6, 6).copy_from(&(eye * 1e-6));
            q[(DRAG, DRAG)] = noise.drag_param_q * dt;
        }
        Model::Boost => {
            let qj = noise.boost_jerk_q_m2_s5;
            let (d2, d3, d4, d5) = (dt.powi(2), dt.powi(3), dt.powi(4), dt.powi(5));
            let blocks = [[d5 / 20.0, d4 / 8.0, d3 / 6.0], [d4 / 8.0, d3 / 3.0, d2 / 2.0], [d3 / 6.0, d2 / 2.0, dt]];
            for (i, row) in blocks.iter().enumerate() {
                for (j, c) in row.iter().enumerate() {
                    q.fixed_view_mut::<3, 3>(3 * i, 3 * j).copy_from(&(eye * (qj * c)));
                }
            }
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Φ's columns against central differences of the propagation, for both models, at a
    /// state `alt_m` high moving at `vel`.
    fn check_transition(alt_m: f64, vel: Vector3<f64>, dt: f64) {
        let r = geodesy::geodetic_to_ecef(&geodesy::Geodetic::from_degrees(39.0, 130.0, alt_m));
        let mut x = State::zeros();
        x.fixed_rows_mut::<3>(0).copy_from(&r);
        x.fixed_rows_mut::<3>(3).copy_from(&vel);
        x.fixed_rows_mut::<3>(6).copy_from(&Vector3::new(10.0, 5.0, 20.0));
        x[DRAG] = 0.3;
        for model in [Model::Boost, Model::Ballistic] {
            let phi = transition(&x, dt, model);
            for j in 0..DIM {
                let step = match j {
                    0..=2 => 10.0,
                    3..=5 => 1.0,
                    6..=8 => 0.1,
                    _ => 0.01,
                };
                let mut dx = State::zeros();
                dx[j] = step;
                let numeric = (propagate(&(x + dx), dt, model) - propagate(&(x - dx), dt, model)) / (2.0 * step);
                let column_scale = (0..6).map(|i| phi[(i, j)].abs()).fold(0.0, f64::max);
                for i in 0..6 {
                    let scale = column_scale.max(1e-3);
                    assert!(
                        (numeric[i] - phi[(i, j)]).abs() / scale < 2e-3,
                        "{alt_m} m {model:?} Φ[{i},{j}] {} vs {}",
                        phi[(i, j)],
                        numeric[i]
                    );
                }
            }
        }
    }

    #[test]
    fn transition_matches_finite_differences_of_propagation() {
        check_transition(300e3, Vector3::new(1500.0, -2000.0, 800.0), 4.0);
    }

    #[test]
    fn transition_carries_drag_in_the_air() {
        // Re-entering at 30 km: drag of κ 0.3 is about 40 m/s², and Φ must carry its
        // dependence on height, velocity and κ.
        let r = geodesy::geodetic_to_ecef(&geodesy::Geodetic::from_degrees(39.0, 130.0, 30e3));
        let down = -r.normalize();
        let east = Vector3::new(-r.y, r.x, 0.0).normalize();
        check_transition(30e3, down * 1500.0 + east * 1500.0, 1.0);
        let phi = transition(&State::from_fn(|i, _| if i < 3 { r[i] } else { 0.0 }), 1.0, Model::Ballistic);
        assert_eq!(phi[(DRAG, DRAG)], 1.0, "κ is carried");
    }

    #[test]
    fn kappa_is_learnt_from_deceleration_only_in_the_air() {
        for (alt_m, observable) in [(40e3, true), (400e3, false)] {
            let r = geodesy::geodetic_to_ecef(&geodesy::Geodetic::from_degrees(39.0, 130.0, alt_m));
            let mut x = State::zeros();
            x.fixed_rows_mut::<3>(0).copy_from(&r);
            x.fixed_rows_mut::<3>(3).copy_from(&(-r.normalize() * 2500.0));
            let phi = transition(&x, 1.0, Model::Ballistic);
            let coupling = phi.fixed_view::<3, 1>(3, DRAG).norm();
            assert_eq!(coupling > 1e-3, observable, "{alt_m} m: ∂v/∂κ {coupling}");
        }
    }
}
