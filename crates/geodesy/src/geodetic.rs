//! The WGS-84 ellipsoid and conversions between geodetic coordinates and ECEF.

use nalgebra::Vector3;

/// WGS-84 defining and derived constants (NIMA TR8350.2).
#[derive(Debug, Clone, Copy)]
pub struct Wgs84;

impl Wgs84 {
    /// Semi-major axis.
    pub const A_M: f64 = 6_378_137.0;
    /// Flattening.
    pub const F: f64 = 1.0 / 298.257_223_563;
    /// Semi-minor axis, a(1 − f).
    pub const B_M: f64 = Self::A_M * (1.0 - Self::F);
    /// First eccentricity squared, f(2 − f).
    pub const E2: f64 = Self::F * (2.0 - Self::F);
    /// Second eccentricity squared, e² / (1 − e²).
    pub const EP2: f64 = Self::E2 / (1.0 - Self::E2);
    /// Earth's gravitational parameter GM (including the atmosphere).
    pub const GM_M3_S2: f64 = 3.986_004_418e14;
    /// Second zonal harmonic J2 (EGM96 C̄20 = −4.841 653 717 × 10⁻⁴, denormalised by √5).
    pub const J2: f64 = 1.082_626_683_553_15e-3;
}

/// A point given by geodetic latitude, longitude and height above the WGS-84 ellipsoid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geodetic {
    pub lat_rad: f64,
    pub lon_rad: f64,
    pub alt_m: f64,
}

impl Geodetic {
    pub fn from_degrees(lat_deg: f64, lon_deg: f64, alt_m: f64) -> Geodetic {
        Geodetic { lat_rad: lat_deg.to_radians(), lon_rad: lon_deg.to_radians(), alt_m }
    }

    pub fn lat_deg(&self) -> f64 {
        self.lat_rad.to_degrees()
    }

    pub fn lon_deg(&self) -> f64 {
        self.lon_rad.to_degrees()
    }
}

/// Geodetic to ECEF; exact.
pub fn geodetic_to_ecef(p: &Geodetic) -> Vector3<f64> {
    let (sin_lat, cos_lat) = p.lat_rad.sin_cos();
    let (sin_lon, cos_lon) = p.lon_rad.sin_cos();
    let n = Wgs84::A_M / (1.0 - Wgs84::E2 * sin_lat * sin_lat).sqrt();
    Vector3::new(
        (n + p.alt_m) * cos_lat * cos_lon,
        (n + p.alt_m) * cos_lat * sin_lon,
        (n * (1.0 - Wgs84::E2) + p.alt_m) * sin_lat,
    )
}

/// ECEF to geodetic.
///
/// Heikkinen's closed form (1982, as given by Zhu 1994) for the first estimate, then two
/// Newton-free fixed-point refinements of latitude with the height taken from the formula
/// `h = p cos φ + z sin φ − a √(1 − e² sin² φ)`, which stays well conditioned at the poles and
/// at any altitude. Accurate to well under a millimetre from the Earth's centre region outward;
/// the only degenerate input is the centre itself (returned as latitude 0, height −a).
pub fn ecef_to_geodetic(r: &Vector3<f64>) -> Geodetic {
    let (x, y, z) = (r.x, r.y, r.z);
    let p = x.hypot(y);
    let lon_rad = y.atan2(x);
    if p == 0.0 && z == 0.0 {
        return Geodetic { lat_rad: 0.0, lon_rad, alt_m: -Wgs84::A_M };
    }
    let (a, b, e2) = (Wgs84::A_M, Wgs84::B_M, Wgs84::E2);
    let mut lat = if p < 1e-9 {
        // On the polar axis the latitude is exactly ±90°.
        std::f64::consts::FRAC_PI_2.copysign(z)
    } else {
        let f = 54.0 * b * b * z * z;
        let g = p * p + (1.0 - e2) * z * z - e2 * (a * a - b * b);
        let c = e2 * e2 * f * p * p / (g * g * g);
        let s = (1.0 + c + (c * c + 2.0 * c).sqrt()).cbrt();
        let k = s + 1.0 / s + 1.0;
        let pp = f / (3.0 * k * k * g * g);
        let q = (1.0 + 2.0 * e2 * e2 * pp).sqrt();
        let r0 = -(pp * e2 * p) / (1.0 + q)
            + (0.5 * a * a * (1.0 + 1.0 / q) - pp * (1.0 - e2) * z * z / (q * (1.0 + q)) - 0.5 * pp * p * p)
                .max(0.0)
                .sqrt();
        let v = ((p - e2 * r0).powi(2) + (1.0 - e2) * z * z).sqrt();
        let z0 = b * b * z / (a * v);
        let lat = (z + Wgs84::EP2 * z0).atan2(p);
        // Refine: φ ← atan2(z + e² N sin φ, p). Converges by a factor ≈ e² per step near the
        // surface; the closed form is already close, so two steps reach rounding level.
        refine_latitude(lat, p, z, 2)
    };
    if !lat.is_finite() {
        lat = z.atan2(p);
    }
    let (sin_lat, cos_lat) = lat.sin_cos();
    let alt_m = p * cos_lat + z * sin_lat - a * (1.0 - e2 * sin_lat * sin_lat).sqrt();
    Geodetic { lat_rad: lat, lon_rad, alt_m }
}

/// Height above the ellipsoid measured along the geocentric radius rather than the ellipsoid
/// normal: within 1.5 m of the geodetic height below 200 km (the difference grows as
/// h·(φ − ψ)²/2), with one square root instead of a full geodetic conversion. Good for air
/// density, which changes by 1% over 60 m of height; not for positions.
pub fn geocentric_height_m(r: &Vector3<f64>) -> f64 {
    let rn = r.norm();
    let sin2 = (r.z / rn).powi(2);
    let (a, b) = (Wgs84::A_M, Wgs84::B_M);
    rn - a * b / (b * b * (1.0 - sin2) + a * a * sin2).sqrt()
}

fn refine_latitude(mut lat: f64, p: f64, z: f64, steps: usize) -> f64 {
    for _ in 0..steps {
        let sin_lat = lat.sin();
        let n = Wgs84::A_M / (1.0 - Wgs84::E2 * sin_lat * sin_lat).sqrt();
        lat = (z + Wgs84::E2 * n * sin_lat).atan2(p);
    }
    lat
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_points() {
        let r = geodetic_to_ecef(&Geodetic::from_degrees(0.0, 0.0, 0.0));
        assert!((r - Vector3::new(Wgs84::A_M, 0.0, 0.0)).norm() < 1e-9);
        let r = geodetic_to_ecef(&Geodetic::from_degrees(90.0, 0.0, 0.0));
        assert!((r.z - Wgs84::B_M).abs() < 1e-9 && r.x.abs() < 1e-6);
        let g = ecef_to_geodetic(&Vector3::new(0.0, 0.0, -Wgs84::B_M - 100.0));
        assert!((g.lat_rad + std::f64::consts::FRAC_PI_2).abs() < 1e-15 && (g.alt_m - 100.0).abs() < 1e-9);
    }

    proptest! {
        #[test]
        fn round_trip_is_sub_millimetre(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, alt in -500.0f64..4.0e7) {
            let g = Geodetic::from_degrees(lat, lon, alt);
            let back = ecef_to_geodetic(&geodetic_to_ecef(&g));
            prop_assert!((back.alt_m - alt).abs() < 1e-4, "alt {} vs {}", back.alt_m, alt);
            prop_assert!((back.lat_rad - g.lat_rad).abs() < 1e-11);
            prop_assert!((geodetic_to_ecef(&back) - geodetic_to_ecef(&g)).norm() < 1e-4);
        }
    }
}
