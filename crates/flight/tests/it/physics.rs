//! The integrator against physics: conservation of energy, the Keplerian minimum-energy
//! relation, and convergence as the step shrinks.

use flight::*;
use geodesy::{ecef_to_geodetic, geodetic_to_ecef, Geodetic, Vector3, Wgs84, EARTH_ROTATION_RAD_S};
use std::f64::consts::PI;

fn vacuum(gravity: GravityModel, rotation: bool) -> FlightConfig {
    FlightConfig { gravity, atmosphere: false, rotation, ..FlightConfig::default() }
}

/// Specific orbital energy in the inertial frame from an Earth-fixed state.
fn inertial_energy(r: &Vector3<f64>, v_ecef: &Vector3<f64>) -> f64 {
    let v_inertial = v_ecef + Vector3::new(0.0, 0.0, EARTH_ROTATION_RAD_S).cross(r);
    0.5 * v_inertial.norm_squared() - Wgs84::GM_M3_S2 / r.norm()
}

#[test]
fn energy_is_conserved_in_vacuum_ballistic_flight() {
    // A 5 km/s shot at 40° elevation from 100 km up, computed on the turning Earth so the
    // Coriolis and centrifugal terms are exercised too: inertial energy must not drift.
    let site = Geodetic::from_degrees(38.0, 127.0, 100e3);
    let r0 = geodetic_to_ecef(&site);
    let aer = geodesy::Aer { az_rad: 1.2, el_rad: 40f64.to_radians(), range_m: 5_000.0 };
    let v0 = geodesy::enu_rotation(&site).transpose() * aer.to_enu();
    let t = fly_ballistic(r0, v0, None, &vacuum(GravityModel::PointMass, true)).unwrap();
    let e0 = inertial_energy(&r0, &v0);
    let worst = t
        .samples
        .iter()
        .map(|s| ((inertial_energy(&s.pos_ecef_m, &s.vel_ecef_mps) - e0) / e0).abs())
        .fold(0.0, f64::max);
    assert!(t.impact_s > 600.0, "flew only {} s", t.impact_s);
    assert!(worst < 1e-10, "relative energy drift {worst:e}");
}

#[test]
fn minimum_energy_range_and_apogee_match_kepler() {
    // From the equator at zero height (where the ellipsoid radius is exactly a) fly eastward in
    // the equatorial plane, non-rotating point-mass Earth, no air: free flight returns to r = a.
    // Closed form, with ν = v² r / μ: the longest range angle ψ satisfies sin(ψ/2) = ν/(2 − ν),
    // reached at flight-path angle γ = (π − ψ)/4, and the apogee radius is a_orbit(1 + e).
    let r = Wgs84::A_M;
    for speed in [2_000.0, 4_000.0, 6_000.0] {
        let nu = speed * speed * r / Wgs84::GM_M3_S2;
        let psi = 2.0 * (nu / (2.0 - nu)).asin();
        let gamma = (PI - psi) / 4.0;
        let semi_major = r / (2.0 - nu);
        let ecc = (1.0 - nu * (2.0 - nu) * gamma.cos().powi(2)).sqrt();
        let apogee_alt = semi_major * (1.0 + ecc) - r;

        let fly_at = |g: f64| {
            let v0 = Vector3::new(speed * g.sin(), speed * g.cos(), 0.0);
            fly_ballistic(Vector3::new(r, 0.0, 0.0), v0, None, &vacuum(GravityModel::PointMass, false)).unwrap()
        };
        let t = fly_at(gamma);
        let impact = geodetic_to_ecef(&t.impact);
        let range_angle = impact.y.atan2(impact.x);
        let range_error_m = (range_angle - psi).abs() * r;
        assert!(range_error_m < 1.0, "{speed} m/s: range off by {range_error_m} m");
        assert!((t.apogee_alt_m - apogee_alt).abs() < 1.0, "{speed} m/s: apogee {} vs {apogee_alt}", t.apogee_alt_m);
        assert!(ecef_to_geodetic(&impact).alt_m.abs() < 1e-3);
        // And it is a maximum: half a degree either way flies shorter.
        for dg in [-0.5f64, 0.5] {
            let other = fly_at(gamma + dg.to_radians());
            let p = geodetic_to_ecef(&other.impact);
            assert!(p.y.atan2(p.x) < range_angle, "{speed} m/s: γ{dg:+}° flew farther");
        }
    }
}

#[test]
fn halving_the_step_moves_a_1000_km_impact_by_under_a_metre() {
    let v = missile_class("mrbm").unwrap();
    let site = Geodetic::from_degrees(39.0, 125.7, 30.0);
    let base = FlightConfig::default();
    let program =
        solve_program(&v, &site, 1.3, Shape::MinimumEnergy { range_m: Some(1_000e3) }, &base).unwrap().program;
    let impact_with = |scale: f64| {
        let cfg =
            FlightConfig { boost_step_s: base.boost_step_s * scale, coast_step_s: base.coast_step_s * scale, ..base };
        let t = fly(&v, &site, &program, &cfg).unwrap();
        (geodetic_to_ecef(&t.impact), t.range_m())
    };
    let (full, range) = impact_with(1.0);
    let (half, _) = impact_with(0.5);
    let (quarter, _) = impact_with(0.25);
    assert!((range - 1_000e3).abs() < 100.0, "range {range}");
    let d1 = (full - half).norm();
    let d2 = (half - quarter).norm();
    assert!(d1 < 1.0, "halving the step moved the impact {d1} m");
    assert!(d2 <= d1 + 1e-3, "no convergence: {d1} then {d2}");
}
