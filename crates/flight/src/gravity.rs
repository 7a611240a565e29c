//! Gravity of the WGS-84 Earth: point mass, optionally with the J2 oblateness term, or with the
//! zonal harmonics J2 to J4.

use geodesy::{Vector3, Wgs84};

/// Which gravity field the equations of motion use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GravityModel {
    /// μ/r² toward the centre: for checks against Keplerian closed forms.
    PointMass,
    /// Point mass plus the J2 zonal harmonic: the dominant perturbation (≈ 1e-3 of gravity),
    /// which shifts a 1,000 km ballistic impact by kilometres.
    J2,
    /// Point mass plus the zonal harmonics J2, J3 and J4. J3 and J4 each pull up to about
    /// 1e-4 m/s² near the surface: tens of metres over a missile's flight, which a tracker
    /// with radar errors of metres sees. The simulator flies this; the tracker's motion model
    /// is J2 and covers the rest as noise, as it must cover the rest of the real field.
    Zonal4,
}

/// The third and fourth zonal harmonics of the Earth's field (EGM-96, unnormalised, as given
/// by Vallado, *Fundamentals of Astrodynamics and Applications*, 4th ed., table D-1).
pub const J3: f64 = -2.532_153_06e-6;
pub const J4: f64 = -1.610_987_61e-6;

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
        GravityModel::Zonal4 => gravity_mps2(r, GravityModel::J2) + j3_j4(r, rn),
    }
}

/// The J3 and J4 terms of the field: the gradient of −(μ/r)·Jₙ·(a/r)ⁿ·Pₙ(z/r) for n = 3, 4.
fn j3_j4(r: &Vector3<f64>, rn: f64) -> Vector3<f64> {
    let mu = Wgs84::GM_M3_S2;
    let a = Wgs84::A_M;
    let s = r.z / rn;
    let (s2, s3, s4) = (s * s, s * s * s, s * s * s * s);
    let r5 = rn.powi(5);
    let k3 = -2.5 * J3 * mu * a.powi(3) / r5;
    let horizontal3 = k3 * (3.0 * s - 7.0 * s3) / rn;
    let vertical3 = k3 * (6.0 * s2 - 7.0 * s4 - 0.6);
    let k4 = 1.875 * J4 * mu * a.powi(4) / (r5 * rn);
    let horizontal4 = k4 * (1.0 - 14.0 * s2 + 21.0 * s4) / rn;
    let vertical4 = k4 * s * (5.0 - 70.0 / 3.0 * s2 + 21.0 * s4);
    let h = horizontal3 + horizontal4;
    Vector3::new(h * r.x, h * r.y, vertical3 + vertical4)
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
    fn zonal_field_is_the_gradient_of_its_potential() {
        // U = μ/r [1 − Σ Jₙ (a/r)ⁿ Pₙ(sin φ)] for n = 2, 3, 4.
        let potential = |r: &Vector3<f64>| {
            let rn = r.norm();
            let s = r.z / rn;
            let p2 = (3.0 * s * s - 1.0) / 2.0;
            let p3 = (5.0 * s.powi(3) - 3.0 * s) / 2.0;
            let p4 = (35.0 * s.powi(4) - 30.0 * s * s + 3.0) / 8.0;
            let q = Wgs84::A_M / rn;
            Wgs84::GM_M3_S2 / rn * (1.0 - Wgs84::J2 * q * q * p2 - J3 * q.powi(3) * p3 - J4 * q.powi(4) * p4)
        };
        for r in
            [Vector3::new(3.1e6, -4.2e6, 4.4e6), Vector3::new(-2.0e6, 1.0e6, -6.1e6), Vector3::new(6.5e6, 0.0, 0.0)]
        {
            let g = gravity_mps2(&r, GravityModel::Zonal4);
            let extra = (g - gravity_mps2(&r, GravityModel::J2)).norm();
            assert!(extra > 1e-5 && extra < 3e-4, "J3 + J4 pull {extra} m/s²");
            for axis in 0..3 {
                let mut d = Vector3::zeros();
                d[axis] = 1.0;
                let numeric = (potential(&(r + d)) - potential(&(r - d))) / 2.0;
                assert!((numeric - g[axis]).abs() < 1e-7, "axis {axis}: {numeric} vs {}", g[axis]);
            }
        }
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
