//! `trilink eval`: prints the report, writes eval.json and plots; bad arguments exit 2.

use std::path::Path;
use std::process::Command;

fn trilink(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trilink")).args(args).output().expect("run trilink")
}

#[test]
fn eval_writes_report_and_plots() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("eval-cli");
    let _ = std::fs::remove_dir_all(&out);
    let scenario = format!("{}/../../scenarios/mrbm-sea-of-japan.toml", env!("CARGO_MANIFEST_DIR"));
    let o = trilink(&["eval", &scenario, "--runs", "1", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in
        ["steady state", "PCRLB", "NEES", "GOSPA", "launch point L1", "ellipse coverage", "first impact prediction"]
    {
        assert!(text.contains(needle), "report lacks {needle:?}:\n{text}");
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("eval.json")).unwrap()).unwrap();
    assert_eq!(json["scenarios"][0]["runs"], 1);
    assert!(json["scenarios"][0]["bins"].as_array().unwrap().len() > 10);
    for svg in ["mrbm-sea-of-japan-error.svg", "mrbm-sea-of-japan-map.svg"] {
        let body = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(body.starts_with("<svg") && body.contains("polyline"), "{svg}");
    }
}

#[test]
fn eval_refuses_bad_arguments() {
    let scenario = format!("{}/../../scenarios/mrbm-sea-of-japan.toml", env!("CARGO_MANIFEST_DIR"));
    assert_eq!(trilink(&["eval", &scenario, "--runs", "0"]).status.code(), Some(2));
    assert_eq!(trilink(&["eval"]).status.code(), Some(2));
    assert_eq!(trilink(&["eval", "/nonexistent.toml"]).status.code(), Some(2));
}
