//! Local tangent frames (ENU, NED) and azimuth/elevation/range from a site.

use crate::geodetic::{geodetic_to_ecef, Geodetic};
use nalgebra::{Matrix3, Vector3};
use std::f64::consts::TAU;

/// Rotation from ECEF to the local east-north-up frame at `origin` (rows: east, north, up).
pub fn enu_rotation(origin: &Geodetic) -> Matrix3<f64> {
    let (sin_lat, cos_lat) = origin.lat_rad.sin_cos();
    let (sin_lon, cos_lon) = origin.lon_rad.sin_cos();
    Matrix3::new(
        -sin_lon,
        cos_lon,
        0.0,
        -sin_lat * cos_lon,
        -sin_lat * sin_lon,
        cos_lat,
        cos_lat * cos_lon,
        cos_lat * sin_lon,
        sin_lat,
    )
}

/// ECEF point to east-north-up metres relative to `origin`.
pub fn ecef_to_enu(target_ecef_m: &Vector3<f64>, origin: &Geodetic) -> Vector3<f64> {
    enu_rotation(origin) * (target_ecef_m - geodetic_to_ecef(origin))
}

/// East-north-up metres relative to `origin` to an ECEF point.
pub fn enu_to_ecef(enu_m: &Vector3<f64>, origin: &Geodetic) -> Vector3<f64> {
    enu_rotation(origin).transpose() * enu_m + geodetic_to_ecef(origin)
}

/// ECEF point to north-east-down metres relative to `origin`.
pub fn ecef_to_ned(target_ecef_m: &Vector3<f64>, origin: &Geodetic) -> Vector3<f64> {
    let enu = ecef_to_enu(target_ecef_m, origin);
    Vector3::new(enu.y, enu.x, -enu.z)
}

/// North-east-down metres relative to `origin` to an ECEF point.
pub fn ned_to_ecef(ned_m: &Vector3<f64>, origin: &Geodetic) -> Vector3<f64> {
    enu_to_ecef(&Vector3::new(ned_m.y, ned_m.x, -ned_m.z), origin)
}

/// Azimuth (clockwise from true north, `[0, 2π)`), elevation above the local geodetic horizon
/// and slant range, as a radar at the origin measures them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aer {
    pub az_rad: f64,
    pub el_rad: f64,
    pub range_m: f64,
}

impl Aer {
    /// The east-north-up vector this azimuth, elevation and range point to.
    pub fn to_enu(&self) -> Vector3<f64> {
        let (sin_el, cos_el) = self.el_rad.sin_cos();
        let (sin_az, cos_az) = self.az_rad.sin_cos();
        self.range_m * Vector3::new(cos_el * sin_az, cos_el * cos_az, sin_el)
    }

    /// Azimuth, elevation and range of an east-north-up vector.
    pub fn from_enu(enu_m: &Vector3<f64>) -> Aer {
        let horizontal = enu_m.x.hypot(enu_m.y);
        Aer { az_rad: enu_m.x.atan2(enu_m.y).rem_euclid(TAU), el_rad: enu_m.z.atan2(horizontal), range_m: enu_m.norm() }
    }
}

/// Azimuth, elevation and slant range from `origin` to an ECEF point.
pub fn ecef_to_aer(target_ecef_m: &Vector3<f64>, origin: &Geodetic) -> Aer {
    Aer::from_enu(&ecef_to_enu(target_ecef_m, origin))
}

/// The ECEF point at azimuth, elevation and slant range from `origin`.
pub fn aer_to_ecef(aer: &Aer, origin: &Geodetic) -> Vector3<f64> {
    enu_to_ecef(&aer.to_enu(), origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straight_up_and_due_east() {
        let site = Geodetic::from_degrees(35.0, 135.0, 100.0);
        let up = aer_to_ecef(&Aer { az_rad: 0.0, el_rad: std::f64::consts::FRAC_PI_2, range_m: 1000.0 }, &site);
        let aer = ecef_to_aer(&up, &site);
        assert!((aer.el_rad - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
        assert!((aer.range_m - 1000.0).abs() < 1e-9);
        let east = Aer { az_rad: std::f64::consts::FRAC_PI_2, el_rad: 0.0, range_m: 5000.0 };
        let enu = ecef_to_enu(&aer_to_ecef(&east, &site), &site);
        assert!((enu - Vector3::new(5000.0, 0.0, 0.0)).norm() < 1e-8);
        let ned = ecef_to_ned(&aer_to_ecef(&east, &site), &site);
        assert!((ned - Vector3::new(0.0, 5000.0, 0.0)).norm() < 1e-8);
        assert!((ned_to_ecef(&ned, &site) - aer_to_ecef(&east, &site)).norm() < 1e-8);
    }
}
