//! Earth rotation: ECI (true-of-date, precession and nutation left out) ⇄ ECEF by the
//! Greenwich mean sidereal angle.

use nalgebra::{Matrix3, Vector3};
use std::f64::consts::TAU;
use vocab::UtcNanos;

/// WGS-84 nominal mean angular velocity of the Earth.
pub const EARTH_ROTATION_RAD_S: f64 = 7.292_115e-5;

/// Greenwich mean sidereal angle at `t`, IAU 1982 model (Vallado, *Fundamentals of
/// Astrodynamics and Applications*, eq. 3-47), with UT1 taken equal to UTC (|UT1 − UTC| < 0.9 s,
/// i.e. under 66 µrad of rotation).
pub fn gmst_rad(t: UtcNanos) -> f64 {
    let t_cent = t.days_since_j2000() / 36_525.0;
    let gmst_s = 67_310.548_41 + (876_600.0 * 3600.0 + 8_640_184.812_866) * t_cent + 0.093_104 * t_cent * t_cent
        - 6.2e-6 * t_cent * t_cent * t_cent;
    (gmst_s * TAU / 86_400.0).rem_euclid(TAU)
}

fn r3(angle_rad: f64) -> Matrix3<f64> {
    let (s, c) = angle_rad.sin_cos();
    Matrix3::new(c, s, 0.0, -s, c, 0.0, 0.0, 0.0, 1.0)
}

/// ECI position at `t` to ECEF.
pub fn eci_to_ecef(r_eci_m: &Vector3<f64>, t: UtcNanos) -> Vector3<f64> {
    r3(gmst_rad(t)) * r_eci_m
}

/// ECEF position at `t` to ECI.
pub fn ecef_to_eci(r_ecef_m: &Vector3<f64>, t: UtcNanos) -> Vector3<f64> {
    r3(gmst_rad(t)).transpose() * r_ecef_m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmst_at_j2000_matches_the_almanac() {
        // GMST at 2000-01-01T12:00:00 UT1 is 18h 41m 50.548 41s = 280.460 618 375 °.
        let t = UtcNanos::parse_rfc3339("2000-01-01T12:00:00Z").unwrap();
        assert!((gmst_rad(t).to_degrees() - 280.460_618_375).abs() < 1e-9);
    }

    #[test]
    fn one_sidereal_day_is_one_turn() {
        let t = UtcNanos::parse_rfc3339("2026-05-14T05:27:00Z").unwrap();
        let later = t.add_secs_f64(TAU / EARTH_ROTATION_RAD_S);
        let diff = (gmst_rad(later) - gmst_rad(t)).rem_euclid(TAU);
        assert!(diff.min(TAU - diff) < 1e-6, "{diff}");
        let r = Vector3::new(7e6, -2e6, 3e6);
        assert!((ecef_to_eci(&eci_to_ecef(&r, t), t) - r).norm() < 1e-8);
    }
}
