//! The same seed gives byte-identical output; another seed gives other noise, and other air
//! for the flights to fly in where the scenario has an `[atmosphere]`.

use crate::{bundled, run};

#[test]
fn same_seed_same_bytes_other_seed_other_noise() {
    let a = run(bundled("salvo")).files();
    let b = run(bundled("salvo")).files();
    for (i, name) in ["truth", "measurements", "summary"].iter().enumerate() {
        assert!(a[i] == b[i], "{name} differs between two runs with the same seed");
        assert!(!a[i].is_empty(), "{name} is empty");
    }
    let mut other = bundled("salvo");
    other.seed += 1;
    let c = run(other.clone()).files();
    assert!(a[0] != c[0], "the bundled salvo flies each seed's own air");
    assert!(a[1] != c[1], "measurements must depend on the seed");
    // In the standard atmosphere the seed is the sensors' alone.
    let mut calm = bundled("salvo");
    calm.atmosphere = sim::Atmosphere::default();
    other.atmosphere = sim::Atmosphere::default();
    let (d, e) = (run(calm).files(), run(other).files());
    assert!(d[0] == e[0], "in the standard air, truth must not depend on the seed");
    assert!(d[1] != e[1], "measurements must depend on the seed");
}

#[test]
fn every_line_is_json_in_time_order() {
    let r = run(bundled("mrbm-sea-of-japan"));
    let [truth, meas, summary] = r.files();
    for (name, bytes) in [("truth", truth), ("measurements", meas)] {
        let mut last = String::new();
        let mut n = 0;
        for line in std::str::from_utf8(&bytes).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: {e}: {line}"));
            let t = v["time"].as_str().unwrap().to_string();
            assert!(t >= last, "{name}: {t} after {last}");
            vocab::UtcNanos::parse_rfc3339(&t).unwrap();
            last = t;
            n += 1;
        }
        assert!(n > 100, "{name}: only {n} lines");
    }
    let s: serde_json::Value = serde_json::from_slice(&summary).unwrap();
    assert_eq!(s["format_version"], 1);
    assert_eq!(s["launches"][0]["id"], "L1");
    // The run's own air, as drawn from its seed, is in the summary.
    assert_eq!(s["air"]["layers"].as_array().map(Vec::len), Some(3), "{s}");
    assert!(s["air"]["density_offset"].as_f64().is_some_and(|d| d.abs() < 0.5), "{s}");
}
