//! Where the infrared satellites are: geostationary slots, and Keplerian (two-body) orbits such
//! as Molniya-type HEO, propagated from elements at the scenario start.

use geodesy::{eci_to_ecef, geodetic_to_ecef, Geodetic, Vector3, Wgs84, EARTH_ROTATION_RAD_S};
use vocab::UtcNanos;

/// Geostationary orbit radius: (μ / ω²)^(1/3).
pub fn geo_radius_m() -> f64 {
    (Wgs84::GM_M3_S2 / (EARTH_ROTATION_RAD_S * EARTH_ROTATION_RAD_S)).cbrt()
}

/// A satellite's orbit.
#[derive(Debug, Clone, PartialEq)]
pub enum Orbit {
    /// Fixed over the equator at this longitude.
    Geostationary { lon_rad: f64 },
    /// Classical elements at `epoch`, angles in radians, in the true-of-date ECI frame.
    Keplerian {
        semi_major_m: f64,
        eccentricity: f64,
        inclination_rad: f64,
        raan_rad: f64,
        arg_perigee_rad: f64,
        mean_anomaly_rad: f64,
        epoch: UtcNanos,
    },
}

impl Orbit {
    /// ECEF position at `t`.
    pub fn position_ecef(&self, t: UtcNanos) -> Vector3<f64> {
        match *self {
            Orbit::Geostationary { lon_rad } => {
                let surface = geodetic_to_ecef(&Geodetic { lat_rad: 0.0, lon_rad, alt_m: 0.0 });
                surface.normalize() * geo_radius_m()
            }
            Orbit::Keplerian {
                semi_major_m,
                eccentricity,
                inclination_rad,
                raan_rad,
                arg_perigee_rad,
                mean_anomaly_rad,
                epoch,
            } => {
                let n = (Wgs84::GM_M3_S2 / semi_major_m.powi(3)).sqrt();
                let m = mean_anomaly_rad + n * t.secs_since(epoch);
                let e_anom = solve_kepler(m, eccentricity);
                let (sin_e, cos_e) = e_anom.sin_cos();
                // Position in the perifocal frame, then rotate by ω, i, Ω.
                let x = semi_major_m * (cos_e - eccentricity);
                let y = semi_major_m * (1.0 - eccentricity * eccentricity).sqrt() * sin_e;
                let (so, co) = arg_perigee_rad.sin_cos();
                let (si, ci) = inclination_rad.sin_cos();
                let (sr, cr) = raan_rad.sin_cos();
                let xo = x * co - y * so;
                let yo = x * so + y * co;
                let eci = Vector3::new(xo * cr - yo * ci * sr, xo * sr + yo * ci * cr, yo * si);
                eci_to_ecef(&eci, t)
            }
        }
    }
}

/// Eccentric anomaly from mean anomaly by Newton's method (converges in a handful of steps for
/// e < 0.95 starting from E = M + e sin M).
fn solve_kepler(mean_anomaly: f64, e: f64) -> f64 {
    let m = mean_anomaly.rem_euclid(std::f64::consts::TAU);
    let mut ecc = if e > 0.8 { std::f64::consts::PI } else { m + e * m.sin() };
    for _ in 0..30 {
        let f = ecc - e * ecc.sin() - m;
        let step = f / (1.0 - e * ecc.cos());
        ecc -= step;
        if step.abs() < 1e-14 {
            break;
        }
    }
    ecc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geo_is_where_it_should_be() {
        assert!((geo_radius_m() - 42_164_170.0).abs() < 100.0, "{}", geo_radius_m());
    }

    #[test]
    fn keplerian_orbit_keeps_its_energy_and_period() {
        let epoch = UtcNanos::parse_rfc3339("2026-05-14T00:00:00Z").unwrap();
        // A Molniya orbit: 12 h period (half a sidereal day), e = 0.74, i = 63.4°.
        let a = (Wgs84::GM_M3_S2 * (43_082.0f64 / 2.0 / std::f64::consts::PI).powi(2)).cbrt();
        let orbit = Orbit::Keplerian {
            semi_major_m: a,
            eccentricity: 0.74,
            inclination_rad: 63.4f64.to_radians(),
            raan_rad: 1.0,
            arg_perigee_rad: 270f64.to_radians(),
            mean_anomaly_rad: 0.3,
            epoch,
        };
        let r0 = geodesy::ecef_to_eci(&orbit.position_ecef(epoch), epoch);
        let period = 2.0 * std::f64::consts::PI * (a.powi(3) / Wgs84::GM_M3_S2).sqrt();
        let later = epoch.add_secs_f64(period);
        let r1 = geodesy::ecef_to_eci(&orbit.position_ecef(later), later);
        assert!((r1 - r0).norm() < 1.0, "{}", (r1 - r0).norm());
        let radii: Vec<f64> =
            (0..100).map(|i| orbit.position_ecef(epoch.add_secs_f64(period * i as f64 / 100.0)).norm()).collect();
        let (lo, hi) = radii.iter().fold((f64::MAX, 0.0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        assert!(lo >= a * (1.0 - 0.74) - 1.0 && hi <= a * (1.0 + 0.74) + 1.0);
    }
}
