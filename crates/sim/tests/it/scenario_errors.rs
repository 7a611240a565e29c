//! A malformed scenario gets an error that names the file, the line and the field.

const GOOD: &str = r#"name = "t"
seed = 1
start = 2026-05-14T05:27:00Z

[[launch]]
id = "L1"
class = "srbm"
site = { lat_deg = 39.0, lon_deg = 127.4 }
time = 2026-05-14T05:27:10Z
azimuth_deg = 90
shape = "minimum-energy"

[[radar]]
id = "R1"
nation = "KOR"
site = { lat_deg = 37.0, lon_deg = 127.5 }
max_range_km = 800
update_interval_s = 1.0
detection_probability = 0.9
sigma_range_m = 20
sigma_az_mrad = 1
sigma_el_mrad = 1
"#;

fn check(edit: (&str, &str), expect: &[&str]) {
    let text = GOOD.replacen(edit.0, edit.1, 1);
    assert_ne!(text, GOOD, "edit {edit:?} did not apply");
    let err = sim::parse("scenarios/bad.toml", &text).expect_err("must be rejected").to_string();
    for e in expect {
        assert!(err.contains(e), "error {err:?} lacks {e:?}");
    }
}

#[test]
fn good_scenario_parses() {
    let s = sim::parse("good.toml", GOOD).unwrap();
    assert_eq!((s.launches.len(), s.radars.len()), (1, 1));
}

#[test]
fn each_mistake_is_named_with_file_line_and_field() {
    let cases: &[((&str, &str), &[&str])] = &[
        (
            ("azimuth_deg = 90", "azimuth_deg = 400"),
            &["scenarios/bad.toml:5", "launch \"L1\"", "`azimuth_deg`", "[0, 360]"],
        ),
        (("class = \"srbm\"", "class = \"cruise\""), &["bad.toml:5", "`class`", "unknown class \"cruise\""]),
        (("nation = \"KOR\"", "nation = \"korea\""), &["bad.toml:13", "radar \"R1\"", "`nation`"]),
        (("sigma_range_m = 20", "sigma_range_m = -1"), &["bad.toml:13", "`sigma_range_m`"]),
        (("detection_probability = 0.9", "detection_probability = 1.5"), &["bad.toml:13", "`detection_probability`"]),
        (("lat_deg = 39.0", "lat_deg = 91.0"), &["bad.toml:5", "`site.lat_deg`"]),
        (("time = 2026-05-14T05:27:10Z", "time = 2026-05-13T05:27:10Z"), &["bad.toml:5", "`time`", "must fall within"]),
        (("start = 2026-05-14T05:27:00Z", "start = 2026-05-14T05:27:00"), &["bad.toml:3", "`start`", "time zone"]),
        (("shape = \"minimum-energy\"", "shape = \"wobbly\""), &["bad.toml:5", "`shape`", "unknown shape"]),
        (("shape = \"minimum-energy\"", "shape = \"depressed\""), &["bad.toml:5", "`range_km`"]),
        (("id = \"R1\"", "id = \"L1\""), &["bad.toml:13", "`id`", "unique"]),
        (("seed = 1", "seed = 1\nspeed = 2"), &["bad.toml", "line 3", "unknown field `speed`"]),
        (("max_range_km = 800\n", ""), &["bad.toml", "missing field `max_range_km`"]),
        (("seed = 1", "seed = \"one\""), &["bad.toml", "line 2", "seed"]),
        (("[[radar]]", "[[radar]"), &["bad.toml", "line 13"]),
    ];
    for (edit, expect) in cases {
        check(*edit, expect);
    }
}

#[test]
fn garbage_never_panics() {
    // Truncations and byte flips of a good file: each is parsed or rejected, never a panic.
    let bytes = GOOD.as_bytes();
    for cut in (0..bytes.len()).step_by(7) {
        let _ = sim::parse("cut.toml", &String::from_utf8_lossy(&bytes[..cut]));
    }
    for i in (0..bytes.len()).step_by(3) {
        let mut b = bytes.to_vec();
        b[i] = b"]=\"[0.-9e{}\n#"[i % 13];
        let _ = sim::parse("flip.toml", &String::from_utf8_lossy(&b));
    }
}

#[test]
fn the_days_air_is_drawn_per_seed_and_checked() {
    let standard = sim::parse("good.toml", GOOD).unwrap();
    assert_eq!(standard.atmosphere.draw(1), None, "no [atmosphere]: the standard itself");
    let text = format!("{GOOD}\n[atmosphere]\ndensity_sd = 0.08\nlayer_sd = 0.03\n");
    let s = sim::parse("air.toml", &text).unwrap();
    let (a, b) = (s.atmosphere.draw(1).unwrap(), s.atmosphere.draw(2).unwrap());
    assert_eq!(s.atmosphere.draw(1), Some(a), "the same seed, the same air");
    assert_ne!(a, b, "another seed, another day");
    // A run's launch flies in its air: the same seed with and without it lands elsewhere.
    let cfg = flight::FlightConfig::default();
    let calm = sim::fly_all(&standard, &cfg, &|_| {}).unwrap();
    let windy = sim::fly_all(&s, &cfg, &|_| {}).unwrap();
    assert_ne!(calm[0].trajectory.impact, windy[0].trajectory.impact);
    check(
        ("sigma_el_mrad = 1\n", "sigma_el_mrad = 1\n[atmosphere]\ndensity_sd = 0.5\n"),
        &["atmosphere", "density_sd", "must be in [0, 0.3]"],
    );
    check(("sigma_el_mrad = 1\n", "sigma_el_mrad = 1\n[atmosphere]\nlayer_sd = -0.01\n"), &["atmosphere", "layer_sd"]);
    check(("sigma_el_mrad = 1\n", "sigma_el_mrad = 1\n[atmosphere]\nwind = 3\n"), &["wind"]);
}
