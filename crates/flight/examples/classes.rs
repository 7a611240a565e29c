//! Prints each bundled missile class's performance: ideal Δv, maximum range, and the apogee and
//! flight time of that minimum-energy shot. `cargo run --release -p flight --example classes`

use flight::*;
use geodesy::Geodetic;

fn main() {
    let site = Geodetic::from_degrees(39.0, 125.7, 30.0);
    let cfg = FlightConfig::default();
    for name in MISSILE_CLASSES {
        let v = missile_class(name).expect("bundled");
        let t0 = std::time::Instant::now();
        match solve_program(&v, &site, 1.4, Shape::MinimumEnergy { range_m: None }, &cfg) {
            Ok(s) => println!(
                "{name}: dv {:.0} m/s, max range {:.0} km, apogee {:.0} km, time {:.0} s, kick {:.2} deg ({:.1?})",
                v.ideal_delta_v_mps(),
                s.trajectory.range_m() / 1e3,
                s.trajectory.apogee_alt_m / 1e3,
                s.trajectory.impact_s,
                s.program.kick_rad.to_degrees(),
                t0.elapsed()
            ),
            Err(e) => println!("{name}: {e}"),
        }
    }
}
