//! `trilink bench fusion` runs small, reports its figures, and refuses nonsense.

use std::process::Command;

fn trilink(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trilink")).args(args).output().expect("run trilink")
}

#[test]
fn fusion_bench_reports_rate_and_tracks() {
    let o = trilink(&["bench", "fusion", "--objects", "20", "--reports-per-s", "1000", "--seconds", "6"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("reports/s") && text.contains("real time") && text.contains("confirmed for 20 objects"),
        "{text}"
    );
    for bad in [["--objects", "0"], ["--seconds", "-1"], ["--reports-per-s", "nan"]] {
        let mut args = vec!["bench", "fusion"];
        args.extend_from_slice(&bad);
        assert_eq!(trilink(&args).status.code(), Some(2), "{bad:?}");
    }
}
