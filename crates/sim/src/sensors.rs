//! Sensor models: ground and sea radars, and space-based infrared. Each turns a true target
//! state into what the sensor would report, or nothing when the target is out of its view.

use crate::orbit::Orbit;
use crate::rng::Rng;
use geodesy::{ecef_to_aer, geodetic_to_ecef, Aer, Geodetic, Vector3, Wgs84};
use std::f64::consts::{PI, TAU};
use vocab::{Nation, UtcNanos};

/// A radar at a fixed site. Angles in radians; the field of regard is an azimuth sector
/// `boresight ± half_width` (half_width = π for all round) between two elevations, out to a
/// maximum range, and never below the Earth's limb.
#[derive(Debug, Clone)]
pub struct Radar {
    pub id: String,
    pub nation: Nation,
    pub site: Geodetic,
    pub boresight_az_rad: f64,
    pub half_width_rad: f64,
    pub min_el_rad: f64,
    pub max_el_rad: f64,
    pub max_range_m: f64,
    pub update_interval_s: f64,
    pub detection_probability: f64,
    pub sigma_range_m: f64,
    pub sigma_az_rad: f64,
    pub sigma_el_rad: f64,
    /// `None`: this radar does not measure range rate.
    pub sigma_range_rate_mps: Option<f64>,
    /// Mean number of clutter detections per scan, spread uniformly over the field of regard.
    pub false_alarms_per_scan: f64,
}

/// A space-based infrared sensor: reports the line of sight to a burning rocket motor.
#[derive(Debug, Clone)]
pub struct SpaceIr {
    pub id: String,
    pub nation: Nation,
    pub orbit: Orbit,
    pub revisit_interval_s: f64,
    pub detection_probability: f64,
    pub sigma_los_rad: f64,
    /// Plumes below this height are hidden by cloud and haze.
    pub min_target_alt_m: f64,
}

/// What a sensor reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Radar {
        aer: Aer,
        range_rate_mps: Option<f64>,
    },
    /// Line-of-sight angles in the satellite's nadir frame (see [`nadir_frame`]) and the
    /// satellite's ECEF position when it looked.
    SpaceIr {
        alpha_rad: f64,
        beta_rad: f64,
        sat_pos_ecef_m: Vector3<f64>,
    },
}

/// Whether the straight segment from `a` to `b` (ECEF) passes below the WGS-84 surface.
///
/// Scaled so the ellipsoid becomes the unit sphere, the squared radius along the segment is a
/// parabola; the segment is blocked when its lowest point lies strictly between the ends and
/// below both the surface and the start (so a site a few metres below the ellipsoid is not
/// blinded by its own ground).
pub fn earth_blocks(a: &Vector3<f64>, b: &Vector3<f64>) -> bool {
    let scale = Vector3::new(1.0 / Wgs84::A_M, 1.0 / Wgs84::A_M, 1.0 / Wgs84::B_M);
    let p = a.component_mul(&scale);
    let d = (b - a).component_mul(&scale);
    let dd = d.norm_squared();
    if dd == 0.0 {
        return false;
    }
    let s = -p.dot(&d) / dd;
    if s <= 0.0 || s >= 1.0 {
        return false;
    }
    let lowest = (p + d * s).norm_squared() - 1.0;
    let start = p.norm_squared() - 1.0;
    lowest < start.min(0.0) - 1e-12
}

pub use geodesy::{los_angles, nadir_frame};

impl Radar {
    pub fn site_ecef(&self) -> Vector3<f64> {
        geodetic_to_ecef(&self.site)
    }

    fn in_sector(&self, az_rad: f64) -> bool {
        let off = (az_rad - self.boresight_az_rad + PI).rem_euclid(TAU) - PI;
        off.abs() <= self.half_width_rad
    }

    /// The true geometry of a target at `pos`/`vel` (ECEF) if the radar can see it.
    pub fn geometry(&self, site_ecef: &Vector3<f64>, pos: &Vector3<f64>, vel: &Vector3<f64>) -> Option<(Aer, f64)> {
        let aer = ecef_to_aer(pos, &self.site);
        if aer.range_m > self.max_range_m || aer.el_rad < self.min_el_rad || aer.el_rad > self.max_el_rad {
            return None;
        }
        if !self.in_sector(aer.az_rad) || earth_blocks(site_ecef, pos) {
            return None;
        }
        let range_rate = (pos - site_ecef).dot(vel) / aer.range_m;
        Some((aer, range_rate))
    }

    /// A noisy report of a target seen with geometry `aer` and `range_rate`.
    pub fn measure(&self, aer: &Aer, range_rate_mps: f64, rng: &mut Rng) -> Observation {
        let noisy = Aer {
            az_rad: (aer.az_rad + self.sigma_az_rad * rng.normal()).rem_euclid(TAU),
            el_rad: aer.el_rad + self.sigma_el_rad * rng.normal(),
            range_m: aer.range_m + self.sigma_range_m * rng.normal(),
        };
        let rr = self.sigma_range_rate_mps.map(|s| range_rate_mps + s * rng.normal());
        Observation::Radar { aer: noisy, range_rate_mps: rr }
    }

    /// Clutter for one scan: a Poisson number of detections uniform in range, azimuth sector and
    /// elevation band (uniform in measurement space, the usual clutter model for a tracker).
    pub fn clutter(&self, rng: &mut Rng, out: &mut Vec<Observation>) {
        let n = rng.poisson(self.false_alarms_per_scan);
        for _ in 0..n {
            let aer = Aer {
                az_rad: (self.boresight_az_rad + rng.uniform_in(-self.half_width_rad, self.half_width_rad))
                    .rem_euclid(TAU),
                el_rad: rng.uniform_in(self.min_el_rad, self.max_el_rad),
                range_m: rng.uniform_in(0.02 * self.max_range_m, self.max_range_m),
            };
            // Clutter's range rate: uniform over ±CLUTTER_RANGE_RATE_MPS.
            let rr = self.sigma_range_rate_mps.map(|_| rng.uniform_in(-CLUTTER_RANGE_RATE_MPS, CLUTTER_RANGE_RATE_MPS));
            out.push(Observation::Radar { aer, range_rate_mps: rr });
        }
    }
}

/// Range rates of false alarms span what ballistic targets show (a re-entering ICBM is ~7 km/s).
const CLUTTER_RANGE_RATE_MPS: f64 = 7_000.0;

impl SpaceIr {
    /// A noisy line-of-sight report of a target at `pos` if the satellite can see its plume.
    pub fn observe(
        &self,
        t: UtcNanos,
        pos: &Vector3<f64>,
        alt_m: f64,
        thrusting: bool,
        rng: &mut Rng,
    ) -> Option<Observation> {
        if !thrusting || alt_m < self.min_target_alt_m {
            return None;
        }
        let sat = self.orbit.position_ecef(t);
        if earth_blocks(&sat, pos) {
            return None;
        }
        let frame = nadir_frame(&sat);
        let (alpha, beta) = los_angles(&frame, &(pos - sat).normalize());
        Some(Observation::SpaceIr {
            alpha_rad: alpha + self.sigma_los_rad * rng.normal(),
            beta_rad: beta + self.sigma_los_rad * rng.normal(),
            sat_pos_ecef_m: sat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn radar() -> Radar {
        Radar {
            id: "R".into(),
            nation: Nation::parse("KOR").unwrap(),
            site: Geodetic::from_degrees(37.0, 127.0, 50.0),
            boresight_az_rad: 0.0,
            half_width_rad: 60f64.to_radians(),
            min_el_rad: 1f64.to_radians(),
            max_el_rad: 85f64.to_radians(),
            max_range_m: 1_000e3,
            update_interval_s: 1.0,
            detection_probability: 1.0,
            sigma_range_m: 10.0,
            sigma_az_rad: 1e-3,
            sigma_el_rad: 1e-3,
            sigma_range_rate_mps: Some(1.0),
            false_alarms_per_scan: 0.0,
        }
    }

    #[test]
    fn field_of_regard_and_horizon() {
        let r = radar();
        let site = r.site_ecef();
        let v = Vector3::zeros();
        let at = |lat: f64, lon: f64, alt: f64| geodetic_to_ecef(&Geodetic::from_degrees(lat, lon, alt));
        // 300 km north at 100 km height: visible.
        assert!(r.geometry(&site, &at(39.7, 127.0, 100e3), &v).is_some());
        // 300 km north on the ground: below the horizon.
        assert!(r.geometry(&site, &at(39.7, 127.0, 0.0), &v).is_none());
        // South, behind the sector.
        assert!(r.geometry(&site, &at(34.5, 127.0, 100e3), &v).is_none());
        // Beyond maximum range.
        assert!(r.geometry(&site, &at(47.0, 127.0, 300e3), &v).is_none());
    }

    #[test]
    fn earth_blocks_the_far_side_only() {
        let a = geodetic_to_ecef(&Geodetic::from_degrees(0.0, 0.0, 100.0));
        let above = geodetic_to_ecef(&Geodetic::from_degrees(0.0, 0.0, 1e6));
        let antipode = geodetic_to_ecef(&Geodetic::from_degrees(0.0, 180.0, 1e6));
        assert!(!earth_blocks(&a, &above));
        assert!(earth_blocks(&a, &antipode));
        let geo = Vector3::new(crate::orbit::geo_radius_m(), 0.0, 0.0);
        assert!(!earth_blocks(&geo, &geodetic_to_ecef(&Geodetic::from_degrees(40.0, 20.0, 20e3))));
        assert!(earth_blocks(&geo, &geodetic_to_ecef(&Geodetic::from_degrees(40.0, 120.0, 20e3))));
    }

    #[test]
    fn los_angles_invert_through_the_shared_frame() {
        let sat = Vector3::new(crate::orbit::geo_radius_m(), 0.0, 0.0);
        let frame = nadir_frame(&sat);
        let target = geodetic_to_ecef(&Geodetic::from_degrees(35.0, 10.0, 50e3));
        let u = (target - sat).normalize();
        let (a, b) = los_angles(&frame, &u);
        // Rebuild the direction from the angles: (tan α, tan β, 1) normalised, in the frame.
        let back = frame.transpose() * Vector3::new(a.tan(), b.tan(), 1.0).normalize();
        assert!((back - u).norm() < 1e-12);
    }
}
