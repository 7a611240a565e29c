//! Gravity of the WGS-84 Earth: point mass, optionally with the J2 oblateness term.

use geodesy::{Vector3, Wgs84};

/// Which gravity field the equations of motion use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GravityModel {
    /// μ/r² toward the centre: for checks against Keplerian closed forms.
    PointMass,
    /// Point mass plus the J2 zonal harmonic: the dominant perturbation (≈ 1e-3 of gravity),
    /// which shifts a 1,000 km ballistic impact by kilometres.
    J2,
}

/// Gravitational acceleration at `r` (ECEF or any frame sharing the Earth's polar axis as z).
pub fn gravity_mps2(r: &Vector3<f64>, model: GravityModel) -> Vector3<f64> {
    let r2 = r.norm_squared();
    let rn = r2.sqrt();
    let mu_r3 = Wgs84::GM_M3_S2 / (r2 * rn);
    match model {
        GravityModel::PointMass => -mu_r3 * r,
        GravityModel::J2 => {
            let k = 1.5 * Wgs84::J2 * Wgs84::A_M * Wgs84::A_M / r2;
            let z2_r2 = r.z * r.z / r2;
            let xy = 1.0 + k * (1.0 - 5.0 * z2_r2);
            let zz = 1.0 + k * (3.0 - 5.0 * z2_r2);
            Vector3::new(-mu_r3 * r.x * xy, -mu_r3 * r.y * xy, -mu_r3 * r.z * zz)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surface_gravity_is_textbook() {
        // Gravitation alone (no centrifugal term): ≈ 9.814 m/s² at the equator, 9.832 at the pole.
        let equator = gravity_mps2(&Vector3::new(Wgs84::A_M, 0.0, 0.0), GravityModel::J2).norm();
        let pole = gravity_mps2(&Vector3::new(0.0, 0.0, Wgs84::B_M), GravityModel::J2).norm();
        assert!((equator - 9.814).abs() < 2e-3, "{equator}");
        assert!((pole - 9.832).abs() < 2e-3, "{pole}");
    }

    #[test]
    fn j2_field_is_the_gradient_of_its_potential() {
        // U = μ/r [1 − J2 (a/r)² (3 sin²φ − 1)/2]; compare with a central difference.
        let potential = |r: &Vector3<f64>| {
            let rn = r.norm();
            let s2 = (r.z / rn).powi(2);
            Wgs84::GM_M3_S2 / rn * (1.0 - Wgs84::J2 * (Wgs84::A_M / rn).powi(2) * (3.0 * s2 - 1.0) / 2.0)
        };
        let r = Vector3::new(3.1e6, -4.2e6, 4.4e6);
        let g = gravity_mps2(&r, GravityModel::J2);
        for axis in 0..3 {
            let mut d = Vector3::zeros();
            d[axis] = 1.0;
            let numeric = (potential(&(r + d)) - potential(&(r - d))) / 2.0;
            assert!((numeric - g[axis]).abs() < 1e-7, "axis {axis}: {numeric} vs {}", g[axis]);
        }
    }
}
