//! The sensors report what their models say: unbiased noise of the stated size, the stated
//! detection probability and clutter density, and infrared only of burning motors.

use crate::{bundled, run};
use sim::sensors::{los_angles, nadir_frame, Observation};
use std::f64::consts::{PI, TAU};

/// Mean and variance of normalised residuals.
#[derive(Default)]
struct Moments {
    n: f64,
    sum: f64,
    sum_sq: f64,
}

impl Moments {
    fn add(&mut self, z: f64) {
        self.n += 1.0;
        self.sum += z;
        self.sum_sq += z * z;
    }

    /// Mean within 5 standard errors of zero and variance within 5 standard errors of one.
    fn check(&self, what: &str) {
        assert!(self.n > 200.0, "{what}: only {} samples", self.n);
        let mean = self.sum / self.n;
        let var = self.sum_sq / self.n - mean * mean;
        let se_mean = 1.0 / self.n.sqrt();
        let se_var = (2.0 / self.n).sqrt();
        assert!(mean.abs() < 5.0 * se_mean, "{what}: mean {mean} over {} samples", self.n);
        assert!((var - 1.0).abs() < 5.0 * se_var, "{what}: variance {var} over {} samples", self.n);
    }
}

#[test]
fn radar_and_infrared_noise_is_unbiased_and_of_the_stated_size() {
    let r = run(bundled("lofted-icbm"));
    let radars = r.scenario.radars.len();
    let (mut range, mut az, mut el, mut rr, mut los) =
        (Moments::default(), Moments::default(), Moments::default(), Moments::default(), Moments::default());
    for m in &r.measurements {
        let Some(li) = m.truth else { continue };
        let state = r.flown[li].state_at(m.time).expect("truth exists when measured");
        match &m.observation {
            Observation::Radar { aer, range_rate_mps } => {
                let radar = &r.scenario.radars[m.sensor];
                let (true_aer, true_rr) =
                    radar.geometry(&radar.site_ecef(), &state.pos, &state.vel).expect("was visible");
                range.add((aer.range_m - true_aer.range_m) / radar.sigma_range_m);
                az.add(((aer.az_rad - true_aer.az_rad + PI).rem_euclid(TAU) - PI) / radar.sigma_az_rad);
                el.add((aer.el_rad - true_aer.el_rad) / radar.sigma_el_rad);
                if let (Some(v), Some(s)) = (range_rate_mps, radar.sigma_range_rate_mps) {
                    rr.add((v - true_rr) / s);
                }
            }
            Observation::SpaceIr { alpha_rad, beta_rad, sat_pos_ecef_m } => {
                let ir = &r.scenario.space_ir[m.sensor - radars];
                assert!(state.thrusting, "{} saw a motor that was not burning at {}", ir.id, m.time);
                assert!(state.alt_m >= ir.min_target_alt_m, "{} saw through the clouds", ir.id);
                let (a, b) = los_angles(&nadir_frame(sat_pos_ecef_m), &(state.pos - sat_pos_ecef_m).normalize());
                los.add((alpha_rad - a) / ir.sigma_los_rad);
                los.add((beta_rad - b) / ir.sigma_los_rad);
            }
        }
    }
    range.check("range");
    az.check("azimuth");
    el.check("elevation");
    rr.check("range rate");
    los.check("infrared line of sight");
}

#[test]
fn detection_probability_and_clutter_density_hold() {
    let r = run(bundled("lofted-icbm"));
    let span_s = r.end.secs_since(r.scenario.start);
    for (si, radar) in r.scenario.radars.iter().enumerate() {
        let site = radar.site_ecef();
        let scans = (span_s / radar.update_interval_s).floor() as u64 + 1;
        // Opportunities: scans at which the target was in view.
        let visible = (0..scans)
            .filter(|k| {
                let t = r.scenario.start.add_secs_f64(*k as f64 * radar.update_interval_s);
                r.flown[0].state_at(t).is_some_and(|s| radar.geometry(&site, &s.pos, &s.vel).is_some())
            })
            .count() as f64;
        let ours = r.measurements.iter().filter(|m| m.sensor == si);
        let detections = ours.clone().filter(|m| m.truth.is_some()).count() as f64;
        let clutter = ours.filter(|m| m.truth.is_none()).count() as f64;
        let p = radar.detection_probability;
        let sd = (visible * p * (1.0 - p)).sqrt().max(1.0);
        assert!(visible > 100.0, "{}: target in view only {visible} times", radar.id);
        assert!((detections - visible * p).abs() < 5.0 * sd, "{}: {detections} of {visible}, Pd {p}", radar.id);
        let expected = radar.false_alarms_per_scan * scans as f64;
        assert!(
            (clutter - expected).abs() < 5.0 * expected.sqrt().max(1.0),
            "{}: {clutter} false alarms, expected {expected}",
            radar.id
        );
    }
}
