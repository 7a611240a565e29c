//! The track filter: an extended Kalman filter per motion model, combined by an interacting
//! multiple model (IMM) estimator over the boost and ballistic models.
//!
//! Why an EKF and not a UKF: over one update interval these models are close to linear (the
//! gravity gradient moves a state by 1e-5 of itself per 2 s step, and radar ranges are hundreds
//! of kilometres against metres of error), so the EKF's linearisation error is far below the
//! noise; it also costs less than half the instructions of the unscented update kept beside
//! it (docs/BENCHMARKS.md, "Extended against unscented update"). Where nonlinearity does
//! matter — carrying a state to impact over minutes — the impact predictor uses sigma points
//! instead (`predict.rs`).

use crate::dynamics::{process_noise, propagate_with_transition, Model, MotionNoise};
use crate::measurement::{Linearized, MeasCov, MeasVec, MAX_DIM};
use crate::{Cov, State, DIM};
use nalgebra::{Cholesky, Const, SMatrix};

/// Result of one Kalman update.
#[derive(Debug, Clone, Copy)]
pub struct Update {
    /// Normalised innovation squared: residualᵀ S⁻¹ residual.
    pub nis: f64,
    /// ln of the Gaussian likelihood of the measurement.
    pub log_likelihood: f64,
}

/// Symmetrises and floors the diagonal, so rounding never leaves a covariance indefinite.
pub fn tidy(p: &mut Cov) {
    *p = (*p + p.transpose()) * 0.5;
    for i in 0..DIM {
        if p[(i, i)] < 1e-12 {
            p[(i, i)] = 1e-12;
        }
    }
}

/// EKF time update.
pub fn predict(x: &State, p: &Cov, dt_s: f64, model: Model, noise: &MotionNoise) -> (State, Cov) {
    if dt_s == 0.0 {
        return (*x, *p);
    }
    let (x1, phi) = propagate_with_transition(x, dt_s, model);
    let mut p1 = phi * p * phi.transpose() + process_noise(dt_s, model, noise);
    tidy(&mut p1);
    (x1, p1)
}

/// Innovation covariance S = H P Hᵀ + R.
pub fn innovation_cov(lin: &Linearized, p: &Cov) -> MeasCov {
    lin.h * p * lin.h.transpose() + lin.r
}

/// ln det S from its Cholesky factor, over the measurement's own components (the padding's
/// noise is 1, or 1/(1 − ω) in a covariance-intersection step, and must not count).
fn ln_det(chol: &Cholesky<f64, Const<MAX_DIM>>, dim: usize) -> f64 {
    2.0 * chol.l_dirty().diagonal().iter().take(dim).map(|d| d.ln()).sum::<f64>()
}

/// Squared Mahalanobis distance of the measurement from the prediction, and ln det S.
pub fn mahalanobis(lin: &Linearized, p: &Cov) -> Option<(f64, f64)> {
    let chol = innovation_cov(lin, p).cholesky()?;
    let y = lin.residual();
    let d2 = y.dot(&chol.solve(&y));
    Some((d2, ln_det(&chol, lin.dim)))
}

/// EKF measurement update in Joseph form (stays symmetric positive definite under rounding).
/// `None` if the innovation covariance is not positive definite (a degenerate geometry).
pub fn update(x: &mut State, p: &mut Cov, lin: &Linearized) -> Option<Update> {
    let pht = *p * lin.h.transpose();
    let chol = (lin.h * pht + lin.r).cholesky()?;
    let y = lin.residual();
    let k = chol.solve(&pht.transpose()).transpose();
    *x += k * y;
    let i_kh = Cov::identity() - k * lin.h;
    *p = i_kh * *p * i_kh.transpose() + k * lin.r * k.transpose();
    tidy(p);
    let nis = y.dot(&chol.solve(&y));
    let m = lin.dim as f64;
    Some(Update { nis, log_likelihood: -0.5 * (nis + ln_det(&chol, lin.dim) + m * (2.0 * std::f64::consts::PI).ln()) })
}

/// Unscented measurement update: the measurement model is evaluated at 2n + 1 sigma points
/// (scaled unscented transform, α = 1, β = 2, κ = 0: points at ±3σ) instead of being
/// linearised. Angle components are averaged and differenced on the circle.
pub fn unscented_update(x: &mut State, p: &mut Cov, model_at: &dyn Fn(&State) -> Linearized) -> Option<Update> {
    const N: usize = DIM;
    let lambda = 0.0; // α²(n + κ) − n with α = 1, κ = 0
    let w_mean_0 = lambda / (N as f64 + lambda);
    let w_cov_0 = w_mean_0 + 2.0; // + (1 − α² + β)
    let w_i = 1.0 / (2.0 * (N as f64 + lambda));
    let l = (*p * (N as f64 + lambda)).cholesky()?.l();
    let centre = model_at(x);
    let wrap = |d: &mut MeasVec| {
        for &i in centre.angle_rows {
            d[i] = (d[i] + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI;
        }
    };
    let mut points: Vec<(State, MeasVec, f64, f64)> = Vec::with_capacity(2 * N + 1);
    points.push((*x, MeasVec::zeros(), w_mean_0, w_cov_0));
    for k in 0..N {
        for sign in [1.0, -1.0] {
            let chi = *x + l.column(k) * sign;
            let mut dz = model_at(&chi).predicted - centre.predicted;
            wrap(&mut dz);
            points.push((chi, dz, w_i, w_i));
        }
    }
    let mean_dz: MeasVec = points.iter().fold(MeasVec::zeros(), |a, (_, dz, wm, _)| a + dz * *wm);
    let mut pzz = centre.r;
    let mut pxz = SMatrix::<f64, N, MAX_DIM>::zeros();
    for (chi, dz, _, wc) in &points {
        let d = dz - mean_dz;
        pzz += d * d.transpose() * *wc;
        pxz += (chi - *x) * d.transpose() * *wc;
    }
    let chol = pzz.cholesky()?;
    let mut y = centre.z - centre.predicted - mean_dz;
    wrap(&mut y);
    let k = chol.solve(&pxz.transpose()).transpose();
    *x += k * y;
    *p -= k * pzz * k.transpose();
    tidy(p);
    let nis = y.dot(&chol.solve(&y));
    let m = centre.dim as f64;
    Some(Update {
        nis,
        log_likelihood: -0.5 * (nis + ln_det(&chol, centre.dim) + m * (2.0 * std::f64::consts::PI).ln()),
    })
}

/// Covariance intersection as a Kalman update: with the prior covariance inflated to P/ω and
/// the partner's to R/(1 − ω), the update gives exactly the covariance-intersection estimate
/// of the observed part, which is consistent whatever the two errors' cross-correlation (the
/// double counting of a common prior or shared reports cannot make it over-confident). ω is
/// chosen by golden-section search to minimise the trace of the updated position-velocity
/// covariance.
///
/// A partner reports position and velocity only. The rest of the state (thrust, κ) takes the
/// change through its regression on position and velocity, as a Gaussian conditional would:
/// inflating it by 1/ω with the rest would compound at every partner report, and κ, which
/// nothing observes above the air, would reach re-entry with a variance grown without bound.
pub fn ci_update(x: &mut State, p: &mut Cov, lin: &Linearized) -> Option<Update> {
    let attempt = |w: f64| -> Option<(State, Cov, Update)> {
        let (mut xw, mut pw) = (*x, *p / w);
        let inflated = Linearized { r: lin.r / (1.0 - w), ..lin.clone() };
        let u = update(&mut xw, &mut pw, &inflated)?;
        Some((xw, pw, u))
    };
    let cost = |w: f64| attempt(w).map_or(f64::INFINITY, |(_, pw, _)| (0..6).map(|i| pw[(i, i)]).sum());
    let (xw, pw, u) = attempt(crate::fuse::golden_section_min(cost, 0.01, 0.99, CI_GOLDEN_STEPS))?;
    const U: usize = DIM - 6;
    let p_oo = p.fixed_view::<6, 6>(0, 0).into_owned();
    let p_uo = p.fixed_view::<U, 6>(6, 0).into_owned();
    let g = p_oo.cholesky()?.solve(&p_uo.transpose()).transpose();
    let pw_oo = pw.fixed_view::<6, 6>(0, 0).into_owned();
    let dx_o = xw.fixed_rows::<6>(0) - x.fixed_rows::<6>(0);
    let x_u = x.fixed_rows::<U>(6) + g * dx_o;
    let p_uu = p.fixed_view::<U, U>(6, 6) + g * (pw_oo - p_oo) * g.transpose();
    let p_uo = g * pw_oo;
    x.fixed_rows_mut::<6>(0).copy_from(&xw.fixed_rows::<6>(0));
    x.fixed_rows_mut::<U>(6).copy_from(&x_u);
    p.fixed_view_mut::<6, 6>(0, 0).copy_from(&pw_oo);
    p.fixed_view_mut::<U, 6>(6, 0).copy_from(&p_uo);
    p.fixed_view_mut::<6, U>(0, 6).copy_from(&p_uo.transpose());
    p.fixed_view_mut::<U, U>(6, 6).copy_from(&p_uu);
    tidy(p);
    Some(u)
}

/// Golden-section steps for ω: 0.618²⁵ of the bracket, ~1e-5.
const CI_GOLDEN_STEPS: usize = 25;

/// Mean dwell in each model before switching: a boost lasts minutes; once ballistic, a missile
/// does not thrust again (a small rate keeps the boost model alive for staging gaps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImmConfig {
    pub boost_mean_dwell_s: f64,
    pub ballistic_mean_dwell_s: f64,
}

impl Default for ImmConfig {
    fn default() -> Self {
        // Once ballistic a missile does not thrust again (post-boost vehicles are not
        // modelled): the reverse switch is all but shut, so a long prediction does not revive
        // the boost model.
        ImmConfig { boost_mean_dwell_s: 60.0, ballistic_mean_dwell_s: 1e7 }
    }
}

/// Index of each model in the IMM arrays.
pub const BOOST: usize = 0;
pub const BALLISTIC: usize = 1;
/// A model probability never falls below this, only so that it cannot underflow to zero. What
/// brings a model back is the chain's own switch at each prediction (`dt / mean dwell`: about
/// 1e-7 a second from ballistic to boost). A floor of 1e-6, ten times that, held the boost
/// model's weight up through every coast that precise radars had refuted it in, and its
/// velocity spread — which the restart rule, judged on position, leaves free to grow — added
/// 8% to the reported velocity variance in `a_coasting_track_reports_the_ballistic_models_covariance`
/// and 10–15% in the salvo's medium-range descent.
const MIN_MODEL_PROBABILITY: f64 = 1e-9;
/// In the IMM's mixing, a model whose weight in another's input is below this is left out of
/// that input. The boost model's weight in the ballistic one's is its probability times its
/// chance of ending within the step; once a coast has refuted it, the chain's own switch back
/// keeps that at about 1e-9 a second. Its state and spread, though, are a thrusting body's —
/// over a coast its velocity spreads by hundreds of m/s — and mixed in at every step, even at
/// such weights, they were a process noise the ballistic model does not have: after the lofted
/// ICBM's 40-minute coast its velocity σ stayed at 0.065 m/s through minutes of precise radar
/// data while the errors were 0.016 m/s (NEES 2.4–3.7 in 6). Leaving out a weight under 1e-4
/// moves no ellipse's coverage by more than 0.01 points; 1e-6 still left 5% on the velocity
/// variance in `after_a_long_coast_the_boost_model_adds_nothing_to_the_ballistic_one`.
const MIX_FROM_WEIGHT: f64 = 1e-4;
/// Below this probability the boost model is restarted from the ballistic one. It must lie
/// above the chain's stationary boost probability during a coast (the dwell ratio).
const BOOST_RESTART_BELOW: f64 = 0.02;
/// An implausible boost model is restarted only once its position spread exceeds the
/// ballistic prediction's by this factor. Restarting it at every step while implausible kept
/// it from ever gathering evidence: thrust shows only over several seconds (24 m/s² moves a
/// target 12 m in a second, under a radar's cross-range noise), so after an ICBM's staging —
/// thrust falling from 65 to 24 m/s², which the IMM takes for burnout — the reset boost model
/// never won back and the ballistic model drifted off the missile.
const RESTART_SPREAD_RATIO: f64 = 4.0;
/// Thrust uncertainty of a restarted boost model: enough to catch a stage lighting.
const RESTART_THRUST_SD_MPS2: f64 = 10.0;

/// The IMM estimator's state. The combined estimate is kept with it, refreshed by every
/// method that changes a model: the engine reads it for every track on every scan (coarse
/// gating, deletion, duplicate merging), far more often than a track changes.
#[derive(Debug, Clone)]
pub struct Imm {
    x: [State; 2],
    p: [Cov; 2],
    mu: [f64; 2],
    combined: (State, Cov),
}

impl Imm {
    pub fn new(x: State, p: Cov, boost_probability: f64) -> Imm {
        let mut xb = x;
        xb.fixed_rows_mut::<3>(6).fill(0.0);
        let mut pb = p;
        for i in 6..9 {
            for j in 0..DIM {
                pb[(i, j)] = 0.0;
                pb[(j, i)] = 0.0;
            }
            pb[(i, i)] = 1e-6;
        }
        let mut imm = Imm {
            x: [x, xb],
            p: [p, pb],
            mu: [boost_probability, 1.0 - boost_probability],
            combined: (State::zeros(), Cov::zeros()),
        };
        imm.combine();
        imm
    }

    /// Model `j`'s state and covariance (`BOOST` or `BALLISTIC`).
    pub fn model(&self, j: usize) -> (&State, &Cov) {
        (&self.x[j], &self.p[j])
    }

    /// Mixing and time update over `dt_s`.
    pub fn predict(&mut self, dt_s: f64, noise: &MotionNoise, cfg: &ImmConfig) {
        if dt_s <= 0.0 {
            return;
        }
        let leave = [1.0 - (-dt_s / cfg.boost_mean_dwell_s).exp(), 1.0 - (-dt_s / cfg.ballistic_mean_dwell_s).exp()];
        let t = [[1.0 - leave[0], leave[0]], [leave[1], 1.0 - leave[1]]];
        let c = [t[0][0] * self.mu[0] + t[1][0] * self.mu[1], t[0][1] * self.mu[0] + t[1][1] * self.mu[1]];
        let mut mixed_x = [State::zeros(); 2];
        let mut mixed_p = [Cov::zeros(); 2];
        for j in 0..2 {
            let mut w = [t[0][j] * self.mu[0] / c[j], t[1][j] * self.mu[1] / c[j]];
            if w[0] < MIX_FROM_WEIGHT {
                w = [0.0, 1.0];
            } else if w[1] < MIX_FROM_WEIGHT {
                w = [1.0, 0.0];
            }
            mixed_x[j] = self.x[0] * w[0] + self.x[1] * w[1];
            for (i, wi) in w.iter().enumerate() {
                let d = self.x[i] - mixed_x[j];
                mixed_p[j] += (self.p[i] + d * d.transpose()) * *wi;
            }
        }
        // A boost model that has become implausible is restarted from the ballistic prediction
        // once its own prediction spreads far wider: unobserved, its thrust random walk would
        // grow without bound (over a 40-minute coast, to a 100,000 km position spread), and even
        // a tiny weight of it would swell the mixture's covariance and open the gate to clutter.
        // While it stays close it is propagated and updated as usual, so that evidence of
        // thrust can build up over several updates (see `RESTART_SPREAD_RATIO`).
        let (x, p) = predict(&mixed_x[BALLISTIC], &mixed_p[BALLISTIC], dt_s, Model::Ballistic, noise);
        self.x[BALLISTIC] = x;
        self.p[BALLISTIC] = p;
        let (xb, pb) = predict(&mixed_x[BOOST], &mixed_p[BOOST], dt_s, Model::Boost, noise);
        let trace3 = |p: &Cov| p[(0, 0)] + p[(1, 1)] + p[(2, 2)];
        if c[BOOST] < BOOST_RESTART_BELOW && trace3(&pb) > RESTART_SPREAD_RATIO * trace3(&p) {
            self.x[BOOST] = x;
            self.p[BOOST] = p;
            for i in 6..9 {
                self.p[BOOST][(i, i)] = RESTART_THRUST_SD_MPS2 * RESTART_THRUST_SD_MPS2;
            }
        } else {
            self.x[BOOST] = xb;
            self.p[BOOST] = pb;
        }
        self.mu = c;
        self.combine();
    }

    /// Measurement update of both models and of the model probabilities. `model_of` builds the
    /// linearised measurement at a state. Returns the combined NIS, or `None` if neither model
    /// could take the measurement.
    pub fn update(&mut self, model_of: impl Fn(&State) -> Linearized) -> Option<f64> {
        self.update_with(&model_of, update)
    }

    /// Measurement update with the unscented transform instead of linearisation.
    pub fn update_unscented(&mut self, model_of: impl Fn(&State) -> Linearized) -> Option<f64> {
        self.update_with(&model_of, |x, p, _| unscented_update(x, p, &model_of))
    }

    /// Track-to-track update by covariance intersection (for partner tracks, whose errors are
    /// correlated with ours in unknown ways): see [`ci_update`].
    pub fn update_ci(&mut self, model_of: impl Fn(&State) -> Linearized) -> Option<f64> {
        self.update_with(&model_of, ci_update)
    }

    fn update_with(
        &mut self,
        model_of: &dyn Fn(&State) -> Linearized,
        step: impl Fn(&mut State, &mut Cov, &Linearized) -> Option<Update>,
    ) -> Option<f64> {
        let mut ll = [f64::NEG_INFINITY; 2];
        let mut nis = [f64::NAN; 2];
        for j in 0..2 {
            let lin = model_of(&self.x[j]);
            if let Some(u) = step(&mut self.x[j], &mut self.p[j], &lin) {
                ll[j] = u.log_likelihood;
                nis[j] = u.nis;
            }
        }
        let best = ll[0].max(ll[1]);
        if !best.is_finite() {
            self.combine();
            return None;
        }
        let w = [self.mu[0] * (ll[0] - best).exp(), self.mu[1] * (ll[1] - best).exp()];
        let total = w[0] + w[1];
        self.mu = [(w[0] / total).max(MIN_MODEL_PROBABILITY), (w[1] / total).max(MIN_MODEL_PROBABILITY)];
        let norm = self.mu[0] + self.mu[1];
        self.mu = [self.mu[0] / norm, self.mu[1] / norm];
        self.combine();
        Some(if self.mu[0] > self.mu[1] { nis[0] } else { nis[1] })
    }

    /// The combined estimate (moment-matched mixture).
    pub fn combined(&self) -> (State, Cov) {
        self.combined
    }

    /// Forgets what both models believe of the drag parameter κ and gives them its prior again.
    /// At burnout: whatever κ learnt under thrust is not the re-entry body's. In the air the
    /// thrust is an acceleration along the velocity that the ballistic model can explain only
    /// by negative drag, so an ascent left κ below zero (−0.05 where 0.125 was true), and the
    /// impact predictor then flew the re-entry vehicle as one with no drag.
    pub fn reset_drag(&mut self, noise: &MotionNoise) {
        for j in 0..2 {
            noise.set_drag_prior(&mut self.x[j], &mut self.p[j]);
        }
        self.combine();
    }

    /// The combined estimate by reference (no copy of the covariance).
    pub fn combined_ref(&self) -> (&State, &Cov) {
        (&self.combined.0, &self.combined.1)
    }

    fn combine(&mut self) {
        let x = self.x[0] * self.mu[0] + self.x[1] * self.mu[1];
        let mut p = Cov::zeros();
        for j in 0..2 {
            let d = self.x[j] - x;
            p += (self.p[j] + d * d.transpose()) * self.mu[j];
        }
        self.combined = (x, p);
    }

    pub fn boost_probability(&self) -> f64 {
        self.mu[BOOST]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurement::{partner_model, PartnerTrack};

    #[test]
    fn unscented_update_equals_kalman_for_a_linear_model() {
        // A partner track observes position and velocity linearly: the unscented update must
        // then reproduce the Kalman update exactly (up to rounding).
        let mut x = State::zeros();
        x[0] = 6.4e6;
        x[4] = 2_000.0;
        let a = nalgebra::SMatrix::<f64, DIM, DIM>::from_fn(|i, j| ((i * 5 + j * 7) % 13) as f64 - 6.0);
        let p = a * a.transpose() + Cov::identity() * 50.0;
        let partner = PartnerTrack {
            partner_track: "lin".into(),
            pos_vel: nalgebra::SVector::<f64, 6>::from_column_slice(&[6.4e6 + 30.0, -20.0, 10.0, 5.0, 2_003.0, -4.0]),
            cov: nalgebra::SMatrix::<f64, 6, 6>::identity() * 40.0,
        };
        let (mut xk, mut pk) = (x, p);
        let uk = update(&mut xk, &mut pk, &partner_model(&partner, &x)).unwrap();
        let (mut xu, mut pu) = (x, p);
        let uu = unscented_update(&mut xu, &mut pu, &|s: &State| partner_model(&partner, s)).unwrap();
        assert!((xk - xu).abs().max() < 1e-6, "{}", (xk - xu).abs().max());
        assert!((pk - pu).abs().max() < 1e-6 * pk.abs().max(), "{}", (pk - pu).abs().max());
        assert!((uk.nis - uu.nis).abs() < 1e-9);
    }

    /// A new track's covariance: 100 m, 10 m/s, 1 m/s² of thrust and κ to 0.1 (1σ).
    fn loose_prior() -> Cov {
        Cov::from_diagonal(&nalgebra::SVector::<f64, DIM>::from_column_slice(&[
            1e4, 1e4, 1e4, 100.0, 100.0, 100.0, 1.0, 1.0, 1.0, 0.01,
        ]))
    }

    /// The true position and velocity seen as a partner track: position to 5 m, velocity with
    /// the variances given per axis (1e8 is no information).
    fn seen_at(truth: &State, vel_var: [f64; 3]) -> PartnerTrack {
        let mut cov = nalgebra::SMatrix::<f64, 6, 6>::identity() * 25.0;
        for (i, v) in vel_var.iter().enumerate() {
            cov[(3 + i, 3 + i)] = *v;
        }
        PartnerTrack { partner_track: "pos".into(), pos_vel: truth.fixed_rows::<6>(0).into_owned(), cov }
    }

    #[test]
    fn a_coasting_track_reports_the_ballistic_models_covariance() {
        // A missile coasting at 200 km, measured every half second for five minutes by a
        // precise radar (position to 5 m, velocity to 0.3 m/s along one axis, as range rate
        // gives). The measurements refute the boost model at every update, and it must not add
        // to what the track reports: the combined covariance is the ballistic model's, to 2%.
        let mut truth = State::zeros();
        truth[0] = 6_578e3;
        truth[4] = 6_500.0;
        truth[5] = 1_500.0;
        truth[crate::DRAG] = 0.125;
        let p0 = loose_prior();
        let mut imm = Imm::new(truth, p0, 0.5);
        let (noise, cfg) = (MotionNoise::default(), ImmConfig::default());
        let mut worst = 0.0f64;
        for k in 0..600 {
            truth = crate::dynamics::propagate(&truth, 0.5, Model::Ballistic);
            imm.predict(0.5, &noise, &cfg);
            let seen = seen_at(&truth, [0.09, 1e8, 1e8]);
            imm.update(|s: &State| partner_model(&seen, s)).unwrap();
            if k >= 120 {
                let (_, pc) = imm.combined();
                let (_, pb) = imm.model(BALLISTIC);
                let vel = |p: &Cov| p[(3, 3)] + p[(4, 4)] + p[(5, 5)];
                worst = worst.max(vel(&pc) / vel(pb) - 1.0);
            }
        }
        assert!(imm.boost_probability() < 1e-4, "{}", imm.boost_probability());
        assert!(worst < 0.02, "the boost model added {:.1}% to the velocity variance", 100.0 * worst);
    }

    #[test]
    fn after_a_long_coast_the_boost_model_adds_nothing_to_the_ballistic_one() {
        // A body 1,000 km up, measured (position to 5 m) every second for two minutes, left
        // unobserved for 40 minutes, then measured for three more: the IMM's ballistic model
        // must end where a lone ballistic filter on the same data ends, to 5%. The boost model,
        // refuted and spread over the coast, used to be mixed into it at every step (5% more with
        // no threshold or one of 1e-6; in the eval's ICBM after its coast, a velocity σ four
        // times the errors).
        let mut truth = State::zeros();
        truth[0] = 7_378e3;
        truth[4] = 6_812.0;
        truth[5] = 400.0;
        let p0 = loose_prior();
        let mut imm = Imm::new(truth, p0, 0.5);
        let (mut xl, mut pl) = (truth, p0);
        let (noise, cfg) = (MotionNoise::default(), ImmConfig::default());
        let mut step = |dt: f64, truth: &mut State, measure: bool| {
            *truth = crate::dynamics::propagate(truth, dt, Model::Ballistic);
            imm.predict(dt, &noise, &cfg);
            (xl, pl) = predict(&xl, &pl, dt, Model::Ballistic, &noise);
            if measure {
                let m = seen_at(truth, [1e8; 3]);
                imm.update(|s: &State| partner_model(&m, s)).unwrap();
                let lin = partner_model(&m, &xl);
                update(&mut xl, &mut pl, &lin).unwrap();
            }
        };
        for _ in 0..120 {
            step(1.0, &mut truth, true);
        }
        step(2_400.0, &mut truth, false);
        for _ in 0..180 {
            step(1.0, &mut truth, true);
        }
        let vel = |p: &Cov| p[(3, 3)] + p[(4, 4)] + p[(5, 5)];
        let (_, pb) = imm.model(BALLISTIC);
        let ratio = vel(pb) / vel(&pl);
        assert!(
            (ratio - 1.0).abs() < 0.05,
            "the IMM's ballistic velocity variance is {ratio:.2} times a lone filter's"
        );
    }

    #[test]
    fn ci_update_never_claims_more_than_either_side_can_know() {
        // Our estimate and a partner's that is the very same information (perfect correlation):
        // a Kalman update would halve the covariance; covariance intersection must not.
        let mut x = State::zeros();
        x[0] = 6.4e6;
        let p = Cov::from_diagonal(&nalgebra::SVector::<f64, DIM>::from_column_slice(&[
            1e4, 1e4, 1e4, 25.0, 25.0, 25.0, 9.0, 9.0, 9.0, 0.01,
        ]));
        let partner = PartnerTrack {
            partner_track: "same".into(),
            pos_vel: x.fixed_rows::<6>(0).into_owned(),
            cov: p.fixed_view::<6, 6>(0, 0).into_owned(),
        };
        let lin = partner_model(&partner, &x);
        let (mut xk, mut pk) = (x, p);
        update(&mut xk, &mut pk, &lin).unwrap();
        assert!((pk[(0, 0)] - 5e3).abs() < 1.0, "Kalman halves it: {}", pk[(0, 0)]);
        let (mut xc, mut pc) = (x, p);
        ci_update(&mut xc, &mut pc, &lin).unwrap();
        for i in 0..6 {
            assert!(pc[(i, i)] >= p[(i, i)] * 0.999, "CI shrank variance {i}: {} < {}", pc[(i, i)], p[(i, i)]);
        }
        // A partner that knows position better pulls the estimate and the covariance its way.
        let better = PartnerTrack {
            partner_track: "sharp".into(),
            pos_vel: nalgebra::SVector::<f64, 6>::from_column_slice(&[6.4e6 + 50.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
            cov: nalgebra::SMatrix::<f64, 6, 6>::from_diagonal(&nalgebra::SVector::<f64, 6>::from_column_slice(&[
                100.0, 100.0, 100.0, 25.0, 25.0, 25.0,
            ])),
        };
        let (mut xb, mut pb) = (x, p);
        ci_update(&mut xb, &mut pb, &partner_model(&better, &x)).unwrap();
        assert!(pb[(0, 0)] < 1e3 && xb[0] > 6.4e6 + 30.0, "{} {}", pb[(0, 0)], xb[0] - 6.4e6);
        // With the thrust block uncorrelated, the update's position-velocity part is the
        // closed-form covariance intersection of the two 6-element estimates — up to the update
        // keeping ω within [0.01, 0.99], here at the edge (the partner knows position 100× better).
        let (xr, pr, _) = crate::fuse::covariance_intersection(
            &x.fixed_rows::<6>(0).into_owned(),
            &p.fixed_view::<6, 6>(0, 0).into_owned(),
            &better.pos_vel,
            &better.cov,
        )
        .unwrap();
        for i in 0..6 {
            assert!((xb[i] - xr[i]).abs() < 0.05, "x[{i}]: {} vs {}", xb[i], xr[i]);
            assert!((pb[(i, i)] - pr[(i, i)]).abs() < 0.02 * pr[(i, i)], "P[{i}]: {} vs {}", pb[(i, i)], pr[(i, i)]);
        }
    }
}
