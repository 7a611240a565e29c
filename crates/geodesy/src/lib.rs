//! WGS-84 geodesy for trilink: geodetic ⇄ ECEF ⇄ local ENU/NED, azimuth/elevation/range from a
//! site, great-circle and ellipsoidal geodesic distance, and ECI ⇄ ECEF by Earth rotation.
//!
//! Conventions: angles in radians, lengths in metres, azimuth clockwise from true north in
//! `[0, 2π)`, elevation above the local geodetic horizon. ECEF is WGS-84 (ITRF-like); ECI here
//! is the true-of-date frame that differs from ECEF only by the Greenwich sidereal angle —
//! precession, nutation and polar motion are left out (they move a point by tens of metres
//! over decades, far below what trilink's sensors resolve over a flight, and the inertial frame
//! is used only to integrate equations of motion over minutes).
//!
//! The crate has no IO, no clock and no serialization.

mod eci;
mod frames;
mod geodetic;
mod los;
mod sphere;

pub use eci::{ecef_to_eci, eci_to_ecef, gmst_rad, EARTH_ROTATION_RAD_S};
pub use frames::{aer_to_ecef, ecef_to_aer, ecef_to_enu, ecef_to_ned, enu_rotation, enu_to_ecef, ned_to_ecef, Aer};
pub use geodetic::{ecef_to_geodetic, geocentric_height_m, geodetic_to_ecef, Geodetic, Wgs84};
pub use los::{los_angles, los_direction, nadir_frame};
pub use sphere::{geodesic_inverse, great_circle_angle_rad, great_circle_distance_m, Geodesic, MEAN_RADIUS_M};

pub use nalgebra::{Matrix3, Vector3};
