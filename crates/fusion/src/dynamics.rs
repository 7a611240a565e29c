//! Motion models over the rotating Earth, in ECEF: J2 gravity, Coriolis and centrifugal terms,
//! drag with a nominal ballistic coefficient, and a thrust acceleration carried in the state.
//!
//! Two models share the 9-element state `[r, v, a]`:
//! - **ballistic**: `a` is zero (the motor is out); unmodelled drag and gravity residuals are
//!   white acceleration noise whose size grows with the air density;
//! - **boost**: `a` is a random walk (white jerk), which follows a thrusting, turning and
//!   staging rocket.

use crate::{Cov, State};
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
    /// out there — gravity beyond J2, lunisolar pull, radiation pressure — is under 1e-4 m/s²;
    /// 1e-6 m²/s³ allows a 1e-3 m/s² random walk per √s.
    pub ballistic_q_m2_s3: f64,
    /// Ballistic: the drag's ballistic coefficient assumed (kg/m²); the truth may differ by a
    /// factor of a few, which `drag_uncertainty` covers.
    pub nominal_ballistic_coeff_kg_m2: f64,
    /// Fraction of the nominal drag acceleration taken as its 1σ uncertainty.
    pub drag_uncertainty: f64,
    /// Boost: white jerk spectral density (m²/s⁵) driving the thrust acceleration.
    pub boost_jerk_q_m2_s5: f64,
}

impl Default for MotionNoise {
    fn default() -> Self {
        MotionNoise {
            ballistic_q_m2_s3: 1e-6,
            nominal_ballistic_coeff_kg_m2: 8_000.0,
            drag_uncertainty: 2.0,
            boost_jerk_q_m2_s5: 16.0,
        }
    }
}

fn omega() -> Vector3<f64> {
    Vector3::new(0.0, 0.0, EARTH_ROTATION_RAD_S)
}

/// Drag acceleration with the nominal ballistic coefficient.
fn drag(r: &Vector3<f64>, v: &Vector3<f64>, beta: f64) -> Vector3<f64> {
    let rho = density_kg_m3(geodesy::geocentric_height_m(r));
    if rho == 0.0 {
        return Vector3::zeros();
    }
    -(rho * v.norm() / (2.0 * beta)) * v
}

/// Time derivative of the state.
pub fn derivative(x: &State, model: Model, noise: &MotionNoise) -> State {
    let r = Vector3::new(x[0], x[1], x[2]);
    let v = Vector3::new(x[3], x[4], x[5]);
    let a = Vector3::new(x[6], x[7], x[8]);
    let w = omega();
    let mut acc = gravity_mps2(&r, GravityModel::J2) - 2.0 * w.cross(&v) - w.cross(&w.cross(&r));
    match model {
        Model::Boost => acc += a,
        Model::Ballistic => acc += drag(&r, &v, noise.nominal_ballistic_coeff_kg_m2),
    }
    let mut d = State::zeros();
    d.fixed_rows_mut::<3>(0).copy_from(&v);
    d.fixed_rows_mut::<3>(3).copy_from(&acc);
    d
}

/// Longest single integration step; longer predictions are split.
const MAX_STEP_S: f64 = 2.0;

/// One classical Runge–Kutta step of `h` seconds.
fn rk4_step(x: &State, h: f64, model: Model, noise: &MotionNoise) -> State {
    let k1 = derivative(x, model, noise);
    let k2 = derivative(&(x + k1 * (h / 2.0)), model, noise);
    let k3 = derivative(&(x + k2 * (h / 2.0)), model, noise);
    let k4 = derivative(&(x + k3 * h), model, noise);
    x + (k1 + 2.0 * k2 + 2.0 * k3 + k4) * (h / 6.0)
}

/// Sub-steps of a span: how many, and how long each.
fn steps(dt_s: f64) -> (usize, f64) {
    let n = (dt_s.abs() / MAX_STEP_S).ceil().max(1.0) as usize;
    (n, dt_s / n as f64)
}

/// Propagates the state `dt_s` seconds (negative allowed) with RK4 sub-steps.
pub fn propagate(x: &State, dt_s: f64, model: Model, noise: &MotionNoise) -> State {
    let (n, h) = steps(dt_s);
    let mut x = *x;
    if model == Model::Ballistic {
        x.fixed_rows_mut::<3>(6).fill(0.0);
    }
    for _ in 0..n {
        x = rk4_step(&x, h, model, noise);
    }
    x
}

/// Jacobian of the derivative (point-mass gravity gradient; J2's gradient is 1e-3 of it).
pub fn jacobian(x: &State, model: Model) -> SMatrix<f64, 9, 9> {
    let r = Vector3::new(x[0], x[1], x[2]);
    let rn = r.norm();
    let rhat = r / rn;
    let gradient = (Wgs84::GM_M3_S2 / rn.powi(3)) * (3.0 * rhat * rhat.transpose() - Matrix3::identity());
    let w = omega().cross_matrix();
    let mut a = SMatrix::<f64, 9, 9>::zeros();
    a.fixed_view_mut::<3, 3>(0, 3).copy_from(&Matrix3::identity());
    a.fixed_view_mut::<3, 3>(3, 0).copy_from(&(gradient - w * w));
    a.fixed_view_mut::<3, 3>(3, 3).copy_from(&(-2.0 * w));
    if model == Model::Boost {
        a.fixed_view_mut::<3, 3>(3, 6).copy_from(&Matrix3::identity());
    }
    a
}

/// State transition matrix over `dt_s`: the third-order series of exp(A·dt), accurate while
/// ‖A‖·dt is small (gravity gradient × dt² ≈ 1e-5 for a 2 s step); longer spans are chained.
pub fn transition(x: &State, dt_s: f64, model: Model, noise: &MotionNoise) -> SMatrix<f64, 9, 9> {
    propagate_with_transition(x, dt_s, model, noise).1
}

/// [`propagate`] and [`transition`] in one pass: the transition is chained along the very
/// sub-step states the propagation visits, so each is computed once. Both results equal the
/// two functions' bit for bit.
pub fn propagate_with_transition(
    x: &State,
    dt_s: f64,
    model: Model,
    noise: &MotionNoise,
) -> (State, SMatrix<f64, 9, 9>) {
    let (n, h) = steps(dt_s);
    let mut phi = SMatrix::<f64, 9, 9>::identity();
    let mut xi = *x;
    if model == Model::Ballistic {
        xi.fixed_rows_mut::<3>(6).fill(0.0);
    }
    for k in 0..n {
        // The Jacobian depends on position alone, so the reset thrust does not change it.
        let ah = jacobian(&xi, model) * h;
        let ah2 = ah * ah;
        let step = SMatrix::<f64, 9, 9>::identity() + ah + ah2 / 2.0 + ah2 * ah / 6.0;
        phi = if k == 0 { step } else { step * phi };
        xi = rk4_step(&xi, h, model, noise);
    }
    if model == Model::Ballistic {
        // The motor is out: the thrust state is reset, not carried.
        phi.fixed_rows_mut::<3>(6).fill(0.0);
    }
    (xi, phi)
}

/// Process noise accumulated over `dt_s`.
pub fn process_noise(x: &State, dt_s: f64, model: Model, noise: &MotionNoise) -> Cov {
    let dt = dt_s.abs();
    let mut q = Cov::zeros();
    let eye = Matrix3::<f64>::identity();
    match model {
        Model::Ballistic => {
            let r = Vector3::new(x[0], x[1], x[2]);
            let v = Vector3::new(x[3], x[4], x[5]);
            let drag_sigma = noise.drag_uncertainty * drag(&r, &v, noise.nominal_ballistic_coeff_kg_m2).norm();
            // Drag error is correlated over seconds; as white noise its density is σ²·τ with τ ≈ 1 s.
            let qa = noise.ballistic_q_m2_s3 + drag_sigma * drag_sigma;
            q.fixed_view_mut::<3, 3>(0, 0).copy_from(&(eye * (qa * dt.powi(3) / 3.0)));
            q.fixed_view_mut::<3, 3>(0, 3).copy_from(&(eye * (qa * dt.powi(2) / 2.0)));
            q.fixed_view_mut::<3, 3>(3, 0).copy_from(&(eye * (qa * dt.powi(2) / 2.0)));
            q.fixed_view_mut::<3, 3>(3, 3).copy_from(&(eye * (qa * dt)));
            // Keep the (zeroed) thrust block positive definite and tiny.
            q.fixed_view_mut::<3, 3>(6, 6).copy_from(&(eye * 1e-6));
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

    #[test]
    fn transition_matches_finite_differences_of_propagation() {
        let noise = MotionNoise { drag_uncertainty: 0.0, ..MotionNoise::default() };
        let r = geodesy::geodetic_to_ecef(&geodesy::Geodetic::from_degrees(39.0, 130.0, 300e3));
        let mut x = State::zeros();
        x.fixed_rows_mut::<3>(0).copy_from(&r);
        x.fixed_rows_mut::<3>(3).copy_from(&Vector3::new(1500.0, -2000.0, 800.0));
        x.fixed_rows_mut::<3>(6).copy_from(&Vector3::new(10.0, 5.0, 20.0));
        for model in [Model::Boost, Model::Ballistic] {
            let dt = 4.0;
            let phi = transition(&x, dt, model, &noise);
            for j in 0..9 {
                let step = if j < 3 {
                    10.0
                } else if j < 6 {
                    1.0
                } else {
                    0.1
                };
                let mut dx = State::zeros();
                dx[j] = step;
                let numeric =
                    (propagate(&(x + dx), dt, model, &noise) - propagate(&(x - dx), dt, model, &noise)) / (2.0 * step);
                let column_scale = (0..6).map(|i| phi[(i, j)].abs()).fold(0.0, f64::max);
                for i in 0..6 {
                    let scale = column_scale.max(1e-3);
                    assert!(
                        (numeric[i] - phi[(i, j)]).abs() / scale < 2e-3,
                        "{model:?} Φ[{i},{j}] {} vs {}",
                        phi[(i, j)],
                        numeric[i]
                    );
                }
            }
        }
    }
}
