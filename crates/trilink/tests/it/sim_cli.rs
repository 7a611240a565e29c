//! `trilink sim`: every bundled scenario runs, output is reproducible, and bad input gets exit
//! code 2 with a message that names the file, the line and the field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn trilink(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trilink")).args(args).output().expect("run trilink")
}

fn repo(path: &str) -> String {
    format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn every_bundled_scenario_runs_and_repeats_byte_for_byte() {
    let scenarios: Vec<_> = std::fs::read_dir(repo("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    assert!(scenarios.len() >= 3, "bundled scenarios: {scenarios:?}");
    for path in scenarios {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let (a, b) = (scratch(&format!("{stem}-a")), scratch(&format!("{stem}-b")));
        for dir in [&a, &b] {
            let out = trilink(&["sim", path.to_str().unwrap(), "--out", dir.to_str().unwrap()]);
            assert!(out.status.success(), "{stem}: {}", String::from_utf8_lossy(&out.stderr));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("simulated s per wall s") && stdout.contains("impact"), "{stem}: {stdout}");
        }
        for file in ["truth.ndjson", "measurements.ndjson", "summary.json"] {
            let (x, y) = (std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap());
            assert!(!x.is_empty(), "{stem}/{file} is empty");
            assert!(x == y, "{stem}/{file} differs between runs");
        }
        // No temporary files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&a)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{stem}: {leftovers:?}");
    }
}

#[test]
fn seed_override_changes_the_noise() {
    let scenario = repo("scenarios/mrbm-sea-of-japan.toml");
    let (a, b) = (scratch("seed-a"), scratch("seed-b"));
    assert!(trilink(&["sim", &scenario, "--out", a.to_str().unwrap()]).status.success());
    assert!(trilink(&["sim", &scenario, "--out", b.to_str().unwrap(), "--seed", "7"]).status.success());
    let read = |d: &Path| std::fs::read(d.join("measurements.ndjson")).unwrap();
    assert!(read(&a) != read(&b));
}

#[test]
fn bad_input_exits_2_and_says_where() {
    let dir = scratch("bad-input");
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(repo("scenarios/mrbm-sea-of-japan.toml")).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, good.replacen("detection_probability = 0.95", "detection_probability = 9.5", 1)).unwrap();
    let out = trilink(&["sim", bad.to_str().unwrap(), "--out", dir.join("o").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = good.lines().position(|l| l.starts_with("[[radar]]")).unwrap() + 1;
    assert!(err.contains(&format!("bad.toml:{line}")) && err.contains("`detection_probability`"), "{err}");

    let out = trilink(&["sim", dir.join("missing.toml").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to read scenario"));

    std::fs::write(&bad, b"\xff\xfe not utf-8").unwrap();
    let out = trilink(&["sim", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));

    let out = trilink(&["sim"]);
    assert_eq!(out.status.code(), Some(2), "missing argument is a usage error");
}

#[test]
fn unwritable_output_is_a_run_failure_not_a_panic() {
    let dir = scratch("unwritable");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = trilink(&["sim", &repo("scenarios/mrbm-sea-of-japan.toml"), "--out", file.join("sub").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to create output directory"));
}
