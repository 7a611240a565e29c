//! Distances over the Earth: great circles on the mean sphere, geodesics on the ellipsoid.

use geographiclib_rs::InverseGeodesic;

/// IUGG mean Earth radius R1 = (2a + b) / 3 for WGS-84.
pub const MEAN_RADIUS_M: f64 = 6_371_008.771_4;

/// Central angle between two points on a sphere. Latitudes and longitudes in radians.
///
/// Vincenty's special case of his formula for the sphere: an `atan2` of the cross and dot
/// products, well conditioned for every pair, where the haversine's `asin` loses half the
/// digits near antipodes and the law of cosines loses them for close points.
pub fn great_circle_angle_rad(lat1_rad: f64, lon1_rad: f64, lat2_rad: f64, lon2_rad: f64) -> f64 {
    let (sin1, cos1) = lat1_rad.sin_cos();
    let (sin2, cos2) = lat2_rad.sin_cos();
    let (sin_dlon, cos_dlon) = (lon2_rad - lon1_rad).sin_cos();
    let cross = (cos2 * sin_dlon).hypot(cos1 * sin2 - sin1 * cos2 * cos_dlon);
    let dot = sin1 * sin2 + cos1 * cos2 * cos_dlon;
    cross.atan2(dot)
}

/// Great-circle distance on the mean sphere.
pub fn great_circle_distance_m(lat1_rad: f64, lon1_rad: f64, lat2_rad: f64, lon2_rad: f64) -> f64 {
    MEAN_RADIUS_M * great_circle_angle_rad(lat1_rad, lon1_rad, lat2_rad, lon2_rad)
}

/// The shortest path between two points on the WGS-84 ellipsoid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geodesic {
    pub distance_m: f64,
    /// Azimuth of the path at the first point, clockwise from north, in `(−π, π]`.
    pub azimuth1_rad: f64,
    /// Forward azimuth of the path at the second point.
    pub azimuth2_rad: f64,
}

/// Solves the inverse geodesic problem with Karney's algorithm (geographiclib), which, unlike
/// Vincenty's, converges for every pair of points including antipodes.
pub fn geodesic_inverse(lat1_rad: f64, lon1_rad: f64, lat2_rad: f64, lon2_rad: f64) -> Geodesic {
    let wgs84 = geographiclib_rs::Geodesic::wgs84();
    let (s12, azi1, azi2, _a12): (f64, f64, f64, f64) =
        wgs84.inverse(lat1_rad.to_degrees(), lon1_rad.to_degrees(), lat2_rad.to_degrees(), lon2_rad.to_degrees());
    Geodesic { distance_m: s12, azimuth1_rad: azi1.to_radians(), azimuth2_rad: azi2.to_radians() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarter_meridian_and_antipodes() {
        // The WGS-84 quarter meridian is 10 001 965.729 m.
        let g = geodesic_inverse(0.0, 0.0, std::f64::consts::FRAC_PI_2, 0.0);
        assert!((g.distance_m - 10_001_965.729).abs() < 1e-3, "{}", g.distance_m);
        let half_turn = great_circle_angle_rad(0.3, 0.1, -0.3, 0.1 + std::f64::consts::PI);
        assert!((half_turn - std::f64::consts::PI).abs() < 1e-12);
        // 20 nrad short of antipodal: the haversine form rounds this to exactly π.
        let pole_to_pole =
            great_circle_angle_rad(-std::f64::consts::FRAC_PI_2 + 2e-8, 0.7, std::f64::consts::FRAC_PI_2, -2.0);
        assert!((pole_to_pole - (std::f64::consts::PI - 2e-8)).abs() < 1e-15, "{pole_to_pole}");
        let close = great_circle_angle_rad(0.5, 0.5, 0.5, 0.5 + 1e-12);
        // (0.5 + 1e-12) − 0.5 is itself only good to ~1e-16 in f64.
        assert!((close - 1e-12 * 0.5f64.cos()).abs() < 1e-16, "{close}");
        let antipodal = geodesic_inverse(0.0, 0.0, 0.5f64.to_radians(), 179.7f64.to_radians());
        assert!(antipodal.distance_m.is_finite() && antipodal.distance_m > 19e6);
    }
}
