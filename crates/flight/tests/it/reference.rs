//! Public reference flights reproduced within 5%.
//!
//! Each row gives what was published for a real test flight (range, apogee, flight time, as
//! announced by the launching state and matched by Japan's Ministry of Defense and the ROK
//! Joint Chiefs of Staff, widely reported). The class and the trajectory shape are ours; the
//! figures the row does not use as input must come out of the physics within 5%:
//! - a row shaped by range alone checks the class's energy (apogee) and the physics (time);
//! - a row shaped by range and apogee checks the physics of flight time alone.
//!
//! The over-Japan flight of 2017-08-29 is left out: its published time ("about 14 minutes")
//! is known only to the minute, ±7% of the flight.

use flight::*;
use geodesy::Geodetic;

struct Reference {
    flight: &'static str,
    class: &'static str,
    site: (f64, f64),
    azimuth_deg: f64,
    shape: Shape,
    range_km: f64,
    apogee_km: f64,
    time_s: f64,
}

const TOLERANCE: f64 = 0.05;

fn km(x: f64) -> Option<f64> {
    Some(x * 1e3)
}

#[test]
fn reference_flights_within_five_percent() {
    let rows = [
        Reference {
            flight: "Hwasong-12, 2017-05-14, lofted from Kusong",
            class: "irbm",
            site: (40.0, 125.2),
            azimuth_deg: 110.0,
            shape: Shape::Lofted { range_m: km(787.0), apogee_m: None },
            range_km: 787.0,
            apogee_km: 2_111.5,
            time_s: 30.0 * 60.0,
        },
        Reference {
            flight: "Hwasong-12, 2017-09-15, over Hokkaido from Sunan",
            class: "irbm",
            site: (39.2, 125.7),
            azimuth_deg: 75.0,
            shape: Shape::Lofted { range_m: km(3_700.0), apogee_m: km(770.0) },
            range_km: 3_700.0,
            apogee_km: 770.0,
            time_s: 19.0 * 60.0,
        },
        Reference {
            flight: "Hwasong-14, 2017-07-28, lofted from Mupyong-ni",
            class: "icbm",
            site: (40.6, 126.4),
            azimuth_deg: 100.0,
            shape: Shape::Lofted { range_m: km(998.0), apogee_m: km(3_724.9) },
            range_km: 998.0,
            apogee_km: 3_724.9,
            time_s: 47.0 * 60.0 + 12.0,
        },
        Reference {
            flight: "Hwasong-15, 2017-11-29, lofted from Pyongsong",
            class: "icbm",
            site: (39.25, 125.87),
            azimuth_deg: 95.0,
            shape: Shape::Lofted { range_m: km(950.0), apogee_m: None },
            range_km: 950.0,
            apogee_km: 4_475.0,
            time_s: 53.0 * 60.0,
        },
    ];
    let cfg = FlightConfig::default();
    let mut report = Vec::new();
    let mut failed = false;
    for row in &rows {
        let vehicle = missile_class(row.class).unwrap();
        let site = Geodetic::from_degrees(row.site.0, row.site.1, 50.0);
        let solved = solve_program(&vehicle, &site, row.azimuth_deg.to_radians(), row.shape, &cfg)
            .unwrap_or_else(|e| panic!("{}: {e}", row.flight));
        let t = &solved.trajectory;
        let got = [t.range_m() / 1e3, t.apogee_alt_m / 1e3, t.impact_s];
        let want = [row.range_km, row.apogee_km, row.time_s];
        let errors: Vec<f64> = got.iter().zip(want).map(|(g, w)| (g - w) / w).collect();
        let ok = errors.iter().all(|e| e.abs() <= TOLERANCE);
        failed |= !ok;
        report.push(format!(
            "{} {}: range {:.0} km ({:+.1}%), apogee {:.0} km ({:+.1}%), time {:.0} s ({:+.1}%)",
            if ok { "ok  " } else { "FAIL" },
            row.flight,
            got[0],
            100.0 * errors[0],
            got[1],
            100.0 * errors[1],
            got[2],
            100.0 * errors[2]
        ));
    }
    eprintln!("{}", report.join("\n"));
    assert!(!failed, "reference flights off by more than 5%:\n{}", report.join("\n"));
}

/// The classes' maximum ranges against the figures the public sources give for them.
#[test]
fn class_maximum_ranges_are_the_published_ones() {
    let site = Geodetic::from_degrees(39.0, 125.7, 30.0);
    let cfg = FlightConfig::default();
    // (class, published maximum range km, tolerance): Scud-B 300 km and Nodong 1,300 km are
    // well established; the Hwasong-12's 4,500 km is an estimate, hence 10%.
    for (class, range_km, tolerance) in [("srbm", 300.0, 0.05), ("mrbm", 1_300.0, 0.05), ("irbm", 4_500.0, 0.10)] {
        let v = missile_class(class).unwrap();
        let s = solve_program(&v, &site, 90f64.to_radians(), Shape::MinimumEnergy { range_m: None }, &cfg).unwrap();
        let got = s.trajectory.range_m() / 1e3;
        assert!(((got - range_km) / range_km).abs() <= tolerance, "{class}: {got:.0} km vs {range_km} km");
    }
}
