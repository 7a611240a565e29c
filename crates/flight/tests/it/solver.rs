//! The pitch-programme solver hits what it is asked for, and says clearly when it cannot.

use flight::*;
use geodesy::Geodetic;

fn site() -> Geodetic {
    Geodetic::from_degrees(39.0, 125.7, 30.0)
}

#[test]
fn shapes_hit_their_range_and_order_their_apogees() {
    let v = missile_class("mrbm").unwrap();
    let cfg = FlightConfig::default();
    let az = 85f64.to_radians();
    let range_m = 900e3;
    let fly = |shape| solve_program(&v, &site(), az, shape, &cfg).unwrap().trajectory;
    let lofted = fly(Shape::Lofted { range_m: Some(range_m), apogee_m: None });
    let min_energy = fly(Shape::MinimumEnergy { range_m: Some(range_m) });
    let depressed = fly(Shape::Depressed { range_m });
    for (name, t) in [("lofted", &lofted), ("minimum energy", &min_energy), ("depressed", &depressed)] {
        assert!((t.range_m() - range_m).abs() < 50.0, "{name}: range {} m", t.range_m());
    }
    assert!(lofted.apogee_alt_m > min_energy.apogee_alt_m + 50e3);
    assert!(depressed.apogee_alt_m < min_energy.apogee_alt_m - 50e3);
    assert!(lofted.impact_s > min_energy.impact_s && min_energy.impact_s > depressed.impact_s);
    // Minimum energy for 900 km with an MRBM that reaches 1,300 km cuts the thrust early.
    assert!(min_energy.burnout_s < v.total_burn_s());
}

#[test]
fn lofted_to_an_apogee() {
    let v = missile_class("irbm").unwrap();
    let t = solve_program(
        &v,
        &site(),
        1.5,
        Shape::Lofted { range_m: None, apogee_m: Some(1_500e3) },
        &FlightConfig::default(),
    )
    .unwrap()
    .trajectory;
    assert!((t.apogee_alt_m - 1_500e3).abs() < 100.0, "{}", t.apogee_alt_m);
}

#[test]
fn impossible_requests_say_why() {
    let v = missile_class("srbm").unwrap();
    let cfg = FlightConfig::default();
    let err = solve_program(&v, &site(), 1.0, Shape::MinimumEnergy { range_m: Some(2_000e3) }, &cfg).unwrap_err();
    assert!(err.to_string().contains("beyond this missile's reach"), "{err}");
    let err =
        solve_program(&v, &site(), 1.0, Shape::Lofted { range_m: None, apogee_m: Some(5_000e3) }, &cfg).unwrap_err();
    assert!(err.to_string().contains("lofted apogee must lie between"), "{err}");
    let err = solve_program(&v, &site(), 1.0, Shape::Lofted { range_m: None, apogee_m: None }, &cfg).unwrap_err();
    assert!(err.to_string().contains("needs a range or an apogee"), "{err}");
}
