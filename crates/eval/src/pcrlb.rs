//! The posterior Cramér–Rao lower bound: the smallest mean-square error any unbiased estimator
//! can reach with these sensors on this trajectory (Tichavský, Muravchik, Nehorai 1998).
//!
//! The Fisher information J is carried along the true trajectory with the same motion models
//! and noise the filter assumes, the model chosen by the true phase (boost while the motor
//! burns, ballistic after): J⁺ = (Q + F J⁻¹ Fᵀ)⁻¹ + Σ Hᵀ R⁻¹ H over the reports that actually
//! came from this missile (so misses, gaps and coverage are those of the run). It is the
//! bound conditioned on the detection sequence and the model sequence — the physical limit
//! the issue asks for, not a tracker's performance.

use fusion::dynamics::{process_noise, transition, Model, MotionNoise};
use fusion::{Cov, Measurement, State, DRAG};
use sim::Flown;

/// Prior at the first report: what a two-fix initiation knows at best, loosely (10 km, 1 km/s,
/// 50 m/s²); the bound forgets it within a few updates. κ's prior is the filter's own: above
/// the air nothing can learn it.
const PRIOR_SD: [f64; 3] = [10_000.0, 1_000.0, 50.0];

/// One point of the bound.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub t_since_launch_s: f64,
    pub pos_sd_m: f64,
    pub vel_sd_mps: f64,
}

/// The bound at each instant this missile was reported, given its reports in time order.
pub fn bound(flown: &Flown, reports: &[&Measurement], noise: &MotionNoise) -> Vec<Bound> {
    let mut out = Vec::new();
    let mut info: Option<Cov> = None;
    let mut last: Option<(vocab::UtcNanos, State, Model)> = None;
    let mut i = 0;
    while i < reports.len() {
        let t = reports[i].time;
        let Some(truth) = flown.state_at(t) else {
            i += 1;
            continue;
        };
        let mut x = State::zeros();
        x.fixed_rows_mut::<3>(0).copy_from(&truth.pos);
        x.fixed_rows_mut::<3>(3).copy_from(&truth.vel);
        x[DRAG] = 1_000.0 / flown.plan.vehicle.reentry_ballistic_coeff_kg_m2;
        let model = if truth.thrusting { Model::Boost } else { Model::Ballistic };
        let mut j = match (info, last) {
            (Some(j_prev), Some((t_prev, x_prev, model_prev))) => {
                let dt = t.secs_since(t_prev);
                let Some(inv) = j_prev.cholesky().map(|c| c.inverse()) else { break };
                // The transition over the interval, linearised on the true state at its start.
                let f = transition(&x_prev, dt, model_prev);
                let predicted = f * inv * f.transpose() + process_noise(dt, model_prev, noise);
                let Some(pred_inv) = predicted.cholesky().map(|c| c.inverse()) else { break };
                pred_inv
            }
            _ => {
                let mut j0 = Cov::zeros();
                for k in 0..9 {
                    j0[(k, k)] = 1.0 / PRIOR_SD[k / 3].powi(2);
                }
                j0[(DRAG, DRAG)] = 1.0 / noise.drag_param_prior_sd.powi(2);
                j0
            }
        };
        // Every report of this instant adds its information.
        while i < reports.len() && reports[i].time == t {
            let lin = fusion::measurement::model(&reports[i].obs, &x);
            // The model's padding (zero Jacobian rows) adds nothing.
            if let Some(r_inv) = lin.r.try_inverse() {
                let add = lin.h.transpose() * r_inv * lin.h;
                j += add;
            }
            i += 1;
        }
        if let Some(cov) = j.cholesky().map(|c| c.inverse()) {
            let pos = (cov[(0, 0)] + cov[(1, 1)] + cov[(2, 2)]).sqrt();
            let vel = (cov[(3, 3)] + cov[(4, 4)] + cov[(5, 5)]).sqrt();
            out.push(Bound { t_since_launch_s: t.secs_since(flown.plan.time), pos_sd_m: pos, vel_sd_mps: vel });
        }
        info = Some(j);
        last = Some((t, x, model));
    }
    out
}
