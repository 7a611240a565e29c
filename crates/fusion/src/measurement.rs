//! What the engine takes in, and the measurement models that predict it from a track state.
//!
//! Constructors validate: a measurement that exists is physically possible (finite numbers,
//! angles in range, positive noise), so the filter never sees a poisoned input.

use crate::{State, DIM};
use geodesy::{enu_rotation, geodetic_to_ecef, Geodetic, Matrix3, Vector3};
use nalgebra::{SMatrix, SVector};
use std::f64::consts::{FRAC_PI_2, PI, TAU};
use vocab::{Nation, UtcNanos};

/// A radar report: range, azimuth, elevation and optionally range rate from a known site.
#[derive(Debug, Clone, PartialEq)]
pub struct RadarObs {
    pub site: Geodetic,
    pub range_m: f64,
    pub az_rad: f64,
    pub el_rad: f64,
    pub range_rate_mps: Option<f64>,
    pub sigma_range_m: f64,
    pub sigma_az_rad: f64,
    pub sigma_el_rad: f64,
    pub sigma_range_rate_mps: Option<f64>,
    site_ecef: Vector3<f64>,
    enu: Matrix3<f64>,
}

/// A space-infrared line of sight, as angles in the satellite's nadir frame (docs/sim-output.md).
#[derive(Debug, Clone, PartialEq)]
pub struct SpaceIrObs {
    pub sat_pos_ecef_m: Vector3<f64>,
    pub alpha_rad: f64,
    pub beta_rad: f64,
    pub sigma_rad: f64,
    frame: Matrix3<f64>,
}

/// A partner's track: position and velocity in ECEF with covariance, fused track-to-track.
#[derive(Debug, Clone, PartialEq)]
pub struct PartnerTrack {
    /// The partner's own track label, stable over its updates.
    pub partner_track: String,
    pub pos_vel: nalgebra::SVector<f64, 6>,
    pub cov: nalgebra::SMatrix<f64, 6, 6>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Radar(RadarObs),
    SpaceIr(SpaceIrObs),
    Partner(PartnerTrack),
}

/// One input to the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub time: UtcNanos,
    /// The reporting sensor (or partner node); measurements of one sensor at one time are a scan.
    pub sensor: String,
    pub nation: Nation,
    pub obs: Observation,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MeasurementError {
    #[error("failed to accept measurement: {field} = {value} is {why}")]
    OutOfRange { field: &'static str, value: f64, why: &'static str },
}

fn check(field: &'static str, value: f64, ok: bool, why: &'static str) -> Result<f64, MeasurementError> {
    if value.is_finite() && ok {
        Ok(value)
    } else {
        Err(MeasurementError::OutOfRange { field, value, why })
    }
}

/// Farthest a report may place a target: beyond GEO nothing trilink tracks flies.
const MAX_RANGE_M: f64 = 50_000e3;

impl RadarObs {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        site: Geodetic,
        range_m: f64,
        az_rad: f64,
        el_rad: f64,
        range_rate_mps: Option<f64>,
        (sigma_range_m, sigma_az_rad, sigma_el_rad): (f64, f64, f64),
        sigma_range_rate_mps: Option<f64>,
    ) -> Result<RadarObs, MeasurementError> {
        check("site.lat_rad", site.lat_rad, site.lat_rad.abs() <= FRAC_PI_2, "not a latitude")?;
        check("site.lon_rad", site.lon_rad, site.lon_rad.abs() <= PI + 1e-9, "not a longitude")?;
        check("site.alt_m", site.alt_m, site.alt_m.abs() < 100e3, "not a radar site height")?;
        check("range_m", range_m, range_m > 0.0 && range_m < MAX_RANGE_M, "outside (0, 50,000 km)")?;
        check("az_rad", az_rad, (0.0..=TAU).contains(&az_rad), "outside [0, 2π]")?;
        check("el_rad", el_rad, el_rad.abs() <= FRAC_PI_2, "outside [−π/2, π/2]")?;
        check("sigma_range_m", sigma_range_m, sigma_range_m > 0.0, "not positive")?;
        check("sigma_az_rad", sigma_az_rad, sigma_az_rad > 0.0 && sigma_az_rad < 1.0, "not in (0, 1)")?;
        check("sigma_el_rad", sigma_el_rad, sigma_el_rad > 0.0 && sigma_el_rad < 1.0, "not in (0, 1)")?;
        let (range_rate_mps, sigma_range_rate_mps) = match (range_rate_mps, sigma_range_rate_mps) {
            (Some(rr), Some(s)) => {
                check("range_rate_mps", rr, rr.abs() < 20_000.0, "faster than anything ballistic")?;
                check("sigma_range_rate_mps", s, s > 0.0, "not positive")?;
                (Some(rr), Some(s))
            }
            _ => (None, None),
        };
        Ok(RadarObs {
            site,
            range_m,
            az_rad,
            el_rad,
            range_rate_mps,
            sigma_range_m,
            sigma_az_rad,
            sigma_el_rad,
            sigma_range_rate_mps,
            site_ecef: geodetic_to_ecef(&site),
            enu: enu_rotation(&site),
        })
    }

    pub fn site_ecef(&self) -> Vector3<f64> {
        self.site_ecef
    }

    /// The report as an ECEF position and its covariance (first-order conversion).
    pub fn position(&self) -> (Vector3<f64>, Matrix3<f64>) {
        let (se, ce) = self.el_rad.sin_cos();
        let (sa, ca) = self.az_rad.sin_cos();
        let r = self.range_m;
        let enu = Vector3::new(r * ce * sa, r * ce * ca, r * se);
        // d(enu)/d(range, az, el)
        let j = Matrix3::new(ce * sa, r * ce * ca, -r * se * sa, ce * ca, -r * ce * sa, -r * se * ca, se, 0.0, r * ce);
        let s = Matrix3::from_diagonal(&Vector3::new(
            self.sigma_range_m.powi(2),
            self.sigma_az_rad.powi(2),
            self.sigma_el_rad.powi(2),
        ));
        let rot = self.enu.transpose();
        (self.site_ecef + rot * enu, rot * j * s * j.transpose() * rot.transpose())
    }
}

impl PartnerTrack {
    /// A partner's track, checked: finite, a position between the Earth's centre and beyond
    /// GEO, a speed below 20 km/s, and a symmetric positive-definite covariance.
    pub fn new(
        partner_track: String,
        pos_vel: nalgebra::SVector<f64, 6>,
        cov: nalgebra::SMatrix<f64, 6, 6>,
    ) -> Result<PartnerTrack, MeasurementError> {
        let r = pos_vel.fixed_rows::<3>(0).norm();
        check("pos_ecef_m", r, r > 6_000e3 && r < MAX_RANGE_M, "not a position near the Earth (norm)")?;
        let v = pos_vel.fixed_rows::<3>(3).norm();
        check("vel_ecef_mps", v, v < 20_000.0, "faster than anything ballistic (norm)")?;
        let asym = (cov - cov.transpose()).abs().max();
        check("covariance", asym, asym <= 1e-9 * cov.abs().max().max(1.0), "not symmetric (largest asymmetry)")?;
        let finite = cov.iter().all(|x| x.is_finite());
        let pd = finite && cov.cholesky().is_some();
        check("covariance", cov[(0, 0)], pd, "not positive definite (first diagonal element shown)")?;
        Ok(PartnerTrack { partner_track, pos_vel, cov })
    }
}

pub use geodesy::nadir_frame;

impl SpaceIrObs {
    pub fn new(
        sat_pos_ecef_m: Vector3<f64>,
        alpha_rad: f64,
        beta_rad: f64,
        sigma_rad: f64,
    ) -> Result<SpaceIrObs, MeasurementError> {
        let radius = sat_pos_ecef_m.norm();
        check(
            "sat_pos_ecef_m",
            radius,
            radius > geodesy::Wgs84::A_M + 100e3 && radius < 500_000e3,
            "not a satellite's distance",
        )?;
        check("los_alpha_rad", alpha_rad, alpha_rad.abs() < FRAC_PI_2, "outside (−π/2, π/2)")?;
        check("los_beta_rad", beta_rad, beta_rad.abs() < FRAC_PI_2, "outside (−π/2, π/2)")?;
        check("sigma_los_rad", sigma_rad, sigma_rad > 0.0 && sigma_rad < 0.1, "not in (0, 0.1)")?;
        Ok(SpaceIrObs { sat_pos_ecef_m, alpha_rad, beta_rad, sigma_rad, frame: nadir_frame(&sat_pos_ecef_m) })
    }

    /// The unit line of sight in ECEF.
    pub fn direction(&self) -> Vector3<f64> {
        geodesy::los_direction(&self.frame, self.alpha_rad, self.beta_rad)
    }
}

/// Most components any measurement model has: a partner track's position and velocity.
pub const MAX_DIM: usize = 6;
/// A measurement-sized vector (the first [`Linearized::dim`] components in use).
pub type MeasVec = SVector<f64, MAX_DIM>;
/// A measurement Jacobian with respect to the state.
pub type MeasJac = SMatrix<f64, MAX_DIM, DIM>;
/// A measurement-sized covariance.
pub type MeasCov = SMatrix<f64, MAX_DIM, MAX_DIM>;

/// A measurement model evaluated at a state: predicted value, Jacobian and noise, with the
/// residual function that wraps angles.
///
/// Fixed-size, so a model evaluation and the update after it never touch the heap (the engine
/// does a few hundred thousand a second). Only the first `dim` components are the measurement;
/// the rest are padding with zero value, zero Jacobian and unit noise, uncorrelated with the
/// rest, which leaves every product of an update unchanged: the padded block of the innovation
/// covariance is the identity, its residual is zero and its gain column is zero.
#[derive(Debug, Clone)]
pub struct Linearized {
    pub dim: usize,
    pub z: MeasVec,
    pub predicted: MeasVec,
    pub h: MeasJac,
    pub r: MeasCov,
    /// Indices of components that are angles (residuals wrapped to (−π, π]).
    pub angle_rows: &'static [usize],
}

impl Linearized {
    /// A model of `dim` components, all zero, with unit noise everywhere.
    fn empty(dim: usize, angle_rows: &'static [usize]) -> Linearized {
        Linearized {
            dim,
            z: MeasVec::zeros(),
            predicted: MeasVec::zeros(),
            h: MeasJac::zeros(),
            r: MeasCov::identity(),
            angle_rows,
        }
    }

    pub fn residual(&self) -> MeasVec {
        let mut y = self.z - self.predicted;
        for &i in self.angle_rows {
            y[i] = (y[i] + PI).rem_euclid(TAU) - PI;
        }
        y
    }
}

/// Radar model at state `x`: (range, az, el[, range rate]).
pub fn radar_model(obs: &RadarObs, x: &State) -> Linearized {
    let r = Vector3::new(x[0], x[1], x[2]);
    let v = Vector3::new(x[3], x[4], x[5]);
    let d = r - obs.site_ecef;
    let enu = obs.enu * d;
    let (e, n, u) = (enu.x, enu.y, enu.z);
    let rho2 = e * e + n * n;
    let rho = rho2.sqrt().max(1e-6);
    let range = d.norm();
    let dhat = d / range;
    // Gradients in ENU, then rotated back to ECEF.
    let d_az_enu = Vector3::new(n / rho2.max(1e-12), -e / rho2.max(1e-12), 0.0);
    let d_el_enu = Vector3::new(-e * u / (range * range * rho), -n * u / (range * range * rho), rho / (range * range));
    let rot_t = obs.enu.transpose();
    let d_az = rot_t * d_az_enu;
    let d_el = rot_t * d_el_enu;
    let rows = if obs.range_rate_mps.is_some() { 4 } else { 3 };
    let mut lin = Linearized::empty(rows, &[1]);
    let Linearized { z, predicted, h, r: rm, .. } = &mut lin;
    predicted[0] = range;
    predicted[1] = e.atan2(n).rem_euclid(TAU);
    predicted[2] = u.atan2(rho);
    z[0] = obs.range_m;
    z[1] = obs.az_rad;
    z[2] = obs.el_rad;
    rm[(0, 0)] = obs.sigma_range_m.powi(2);
    rm[(1, 1)] = obs.sigma_az_rad.powi(2);
    rm[(2, 2)] = obs.sigma_el_rad.powi(2);
    for k in 0..3 {
        h[(0, k)] = dhat[k];
        h[(1, k)] = d_az[k];
        h[(2, k)] = d_el[k];
    }
    if let (Some(rr), Some(s)) = (obs.range_rate_mps, obs.sigma_range_rate_mps) {
        let rate = dhat.dot(&v);
        predicted[3] = rate;
        z[3] = rr;
        rm[(3, 3)] = s * s;
        let d_r = (v - dhat * rate) / range;
        for k in 0..3 {
            h[(3, k)] = d_r[k];
            h[(3, 3 + k)] = dhat[k];
        }
    }
    lin
}

/// Space-IR model at state `x`: (α, β) in the satellite's nadir frame.
pub fn space_ir_model(obs: &SpaceIrObs, x: &State) -> Linearized {
    let r = Vector3::new(x[0], x[1], x[2]);
    let b = obs.frame * (r - obs.sat_pos_ecef_m);
    let (bx, by, bz) = (b.x, b.y, b.z);
    let da_db = Vector3::new(bz, 0.0, -bx) / (bx * bx + bz * bz);
    let db_db = Vector3::new(0.0, bz, -by) / (by * by + bz * bz);
    let da = obs.frame.transpose() * da_db;
    let dbeta = obs.frame.transpose() * db_db;
    let mut lin = Linearized::empty(2, &[0, 1]);
    for k in 0..3 {
        lin.h[(0, k)] = da[k];
        lin.h[(1, k)] = dbeta[k];
    }
    let var = obs.sigma_rad * obs.sigma_rad;
    lin.z[0] = obs.alpha_rad;
    lin.z[1] = obs.beta_rad;
    lin.predicted[0] = bx.atan2(bz);
    lin.predicted[1] = by.atan2(bz);
    lin.r[(0, 0)] = var;
    lin.r[(1, 1)] = var;
    lin
}

/// Partner-track model at `x`: position and velocity, identity observation.
pub fn partner_model(obs: &PartnerTrack, x: &State) -> Linearized {
    let mut lin = Linearized::empty(6, &[]);
    for k in 0..6 {
        lin.h[(k, k)] = 1.0;
        lin.predicted[k] = x[k];
    }
    lin.z = obs.pos_vel;
    lin.r = obs.cov;
    lin
}

/// The model for any observation.
pub fn model(obs: &Observation, x: &State) -> Linearized {
    match obs {
        Observation::Radar(o) => radar_model(o, x),
        Observation::SpaceIr(o) => space_ir_model(o, x),
        Observation::Partner(o) => partner_model(o, x),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of the model, to check the analytic Jacobians.
    fn numeric_jacobian(obs: &Observation, x: &State) -> MeasJac {
        let base = model(obs, x);
        let mut h = MeasJac::zeros();
        for j in 0..DIM {
            let step = if j < 3 { 1.0 } else { 0.01 };
            let mut dx = State::zeros();
            dx[j] = step;
            let plus = model(obs, &(x + dx)).predicted;
            let minus = model(obs, &(x - dx)).predicted;
            for i in 0..base.dim {
                let mut d = plus[i] - minus[i];
                if base.angle_rows.contains(&i) {
                    d = (d + PI).rem_euclid(TAU) - PI;
                }
                h[(i, j)] = d / (2.0 * step);
            }
        }
        h
    }

    fn state() -> State {
        let r = geodetic_to_ecef(&Geodetic::from_degrees(39.5, 131.0, 250e3));
        let mut x = State::zeros();
        x.fixed_rows_mut::<3>(0).copy_from(&r);
        x.fixed_rows_mut::<3>(3).copy_from(&Vector3::new(-1200.0, 2500.0, 900.0));
        x
    }

    #[test]
    fn analytic_jacobians_match_numeric() {
        let site = Geodetic::from_degrees(37.0, 127.5, 200.0);
        let radar = RadarObs::new(site, 5e5, 1.0, 0.3, Some(100.0), (10.0, 1e-3, 1e-3), Some(1.0)).unwrap();
        let sat = Vector3::new(-2.5e7, 3.3e7, 0.0);
        let ir = SpaceIrObs::new(sat, 0.01, 0.02, 3e-5).unwrap();
        let partner =
            PartnerTrack { partner_track: "p".into(), pos_vel: Default::default(), cov: nalgebra::SMatrix::identity() };
        for obs in [Observation::Radar(radar), Observation::SpaceIr(ir), Observation::Partner(partner)] {
            let x = state();
            let analytic = model(&obs, &x).h;
            let numeric = numeric_jacobian(&obs, &x);
            let err = (analytic - numeric).abs().max();
            let scale = numeric.abs().max();
            assert!(err < 1e-5 * scale.max(1e-9) + 1e-12, "{obs:?}: {err} vs scale {scale}\n{analytic}\n{numeric}");
        }
    }

    #[test]
    fn radar_position_round_trips_through_the_model() {
        let site = Geodetic::from_degrees(37.0, 127.5, 200.0);
        let x = state();
        let probe = RadarObs::new(site, 1.0, 0.0, 0.0, None, (1.0, 1e-3, 1e-3), None).unwrap();
        let m = radar_model(&probe, &x);
        let obs = RadarObs::new(site, m.predicted[0], m.predicted[1], m.predicted[2], None, (10.0, 1e-3, 1e-3), None)
            .unwrap();
        let (p, _) = obs.position();
        assert!((p - Vector3::new(x[0], x[1], x[2])).norm() < 1e-6);
    }

    #[test]
    fn nonsense_is_refused() {
        let site = Geodetic::from_degrees(37.0, 127.5, 200.0);
        assert!(RadarObs::new(site, 1e5, 1.0, 3.0, None, (10.0, 1e-3, 1e-3), None).is_err());
        assert!(RadarObs::new(site, -5.0, 1.0, 0.3, None, (10.0, 1e-3, 1e-3), None).is_err());
        assert!(RadarObs::new(site, f64::NAN, 1.0, 0.3, None, (10.0, 1e-3, 1e-3), None).is_err());
        assert!(RadarObs::new(site, 1e5, 1.0, 0.3, None, (0.0, 1e-3, 1e-3), None).is_err());
        assert!(SpaceIrObs::new(Vector3::new(1.0, 0.0, 0.0), 0.0, 0.0, 1e-5).is_err());
    }
}
