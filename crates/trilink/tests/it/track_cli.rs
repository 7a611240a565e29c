//! `trilink track`: tracks from a report file; a bad line stops it with exit 2 and its number.

use std::path::Path;
use std::process::Command;

fn trilink(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trilink")).args(args).output().expect("run trilink")
}

#[test]
fn tracks_a_simulated_launch_and_refuses_a_bad_line() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("track-cli");
    let _ = std::fs::remove_dir_all(&dir);
    let scenario = format!("{}/../../scenarios/mrbm-sea-of-japan.toml", env!("CARGO_MANIFEST_DIR"));
    assert!(trilink(&["sim", &scenario, "--out", dir.to_str().unwrap()]).status.success());
    let meas = dir.join("measurements.ndjson");
    let tracks = dir.join("tracks.ndjson");
    let o = trilink(&["track", meas.to_str().unwrap(), "--out", tracks.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&tracks).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() > 100);
    let last = lines.last().unwrap();
    assert!(last["impact"]["lat_deg"].as_f64().is_some_and(|lat| (lat - 39.8).abs() < 0.2), "{last}");
    assert!(lines.iter().any(|l| l["launch"].is_object()));
    let nations: std::collections::BTreeSet<String> = lines
        .iter()
        .flat_map(|l| l["nations"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()))
        .collect();
    assert!(nations.len() >= 2, "fused only {nations:?}");

    // Corrupt line 5: exit 2, and the message names the line and the field.
    let text = std::fs::read_to_string(&meas).unwrap();
    let mut bad: Vec<String> = text.lines().map(str::to_string).collect();
    bad[4] = bad[4].replacen("\"range_m\":", "\"range_m\":-", 1);
    let bad_path = dir.join("bad.ndjson");
    std::fs::write(&bad_path, bad.join("\n")).unwrap();
    let o = trilink(&["track", bad_path.to_str().unwrap(), "--out", dir.join("t2.ndjson").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.ndjson:5") && err.contains("range_m"), "{err}");
}
