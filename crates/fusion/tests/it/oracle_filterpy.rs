//! The EKF step agrees with filterpy's ExtendedKalmanFilter to 1e-6 relative, on the same
//! model and data: trilink's transition, process noise and propagated state for the predict;
//! its measurement Jacobian, prediction, noise and report for the update — radar with and
//! without range rate, space infrared, and a partner track, under both motion models.
//!
//! Runs when `TRILINK_PYTHON` names a Python with filterpy (`.ci/run` sets it up).

use fusion::dynamics::{process_noise, propagate, transition, Model, MotionNoise};
use fusion::filter::{predict, update};
use fusion::measurement::{model, Observation, PartnerTrack, RadarObs, SpaceIrObs};
use fusion::{Cov, State, DIM, DRAG};
use geodesy::{geodetic_to_ecef, Geodetic, Vector3};
use std::process::Command;

const RELATIVE_TOLERANCE: f64 = 1e-6;

fn flat(m: impl IntoIterator<Item = f64>) -> serde_json::Value {
    serde_json::Value::from(m.into_iter().collect::<Vec<f64>>())
}

/// Row-major copy of a column-major nalgebra matrix.
fn rows<const R: usize, const C: usize>(m: &nalgebra::SMatrix<f64, R, C>) -> Vec<f64> {
    (0..R).flat_map(|i| (0..C).map(move |j| m[(i, j)])).collect()
}

fn state() -> (State, Cov) {
    let r = geodetic_to_ecef(&Geodetic::from_degrees(39.4, 131.0, 180e3));
    let mut x = State::zeros();
    x.fixed_rows_mut::<3>(0).copy_from(&r);
    x.fixed_rows_mut::<3>(3).copy_from(&Vector3::new(-1800.0, 2300.0, 700.0));
    x.fixed_rows_mut::<3>(6).copy_from(&Vector3::new(12.0, -8.0, 20.0));
    x[DRAG] = 0.2;
    // A full, correlated covariance: A·Aᵀ plus a diagonal.
    let a = nalgebra::SMatrix::<f64, DIM, DIM>::from_fn(|i, j| ((i * 7 + j * 3) % 11) as f64 - 5.0);
    let scale =
        nalgebra::SVector::<f64, DIM>::from_fn(|i, _| [300.0, 300.0, 300.0, 20.0, 20.0, 20.0, 3.0, 3.0, 3.0, 0.05][i]);
    let p = Cov::from_diagonal(&scale) * (a * a.transpose() / 50.0 + Cov::identity()) * Cov::from_diagonal(&scale);
    (x, p)
}

#[test]
fn ekf_step_matches_filterpy() {
    let Some(python) = std::env::var_os("TRILINK_PYTHON") else {
        eprintln!("skipped: TRILINK_PYTHON is not set (.ci/run sets it)");
        return;
    };
    let noise = MotionNoise::default();
    let (x0, p0) = state();
    let site = Geodetic::from_degrees(37.0, 127.5, 200.0);
    let observations = |xp: &State| -> Vec<Observation> {
        let r = Vector3::new(xp[0], xp[1], xp[2]);
        // Reports near (not at) the predicted values, as a real update sees.
        let probe = RadarObs::new(site, 1.0, 0.1, 0.1, None, (1.0, 1e-3, 1e-3), None).unwrap();
        let m = model(&Observation::Radar(probe), xp);
        let radar = RadarObs::new(
            site,
            m.predicted[0] + 40.0,
            m.predicted[1] - 2e-3,
            m.predicted[2] + 1e-3,
            None,
            (25.0, 1e-3, 1e-3),
            None,
        )
        .unwrap();
        let rr = (r - geodetic_to_ecef(&site)).normalize().dot(&Vector3::new(xp[3], xp[4], xp[5]));
        let doppler = RadarObs::new(
            site,
            m.predicted[0] - 15.0,
            m.predicted[1] + 5e-4,
            m.predicted[2] - 5e-4,
            Some(rr + 3.0),
            (15.0, 8e-4, 8e-4),
            Some(2.0),
        )
        .unwrap();
        let sat = Vector3::new(-1.44e7, 3.96e7, 0.0);
        let frame = fusion::measurement::nadir_frame(&sat);
        let b = frame * (r - sat);
        let ir = SpaceIrObs::new(sat, b.x.atan2(b.z) + 4e-5, b.y.atan2(b.z) - 2e-5, 3e-5).unwrap();
        let mut pv = nalgebra::SVector::<f64, 6>::zeros();
        for k in 0..6 {
            pv[k] = xp[k] + [120.0, -80.0, 60.0, 3.0, -2.0, 1.0][k];
        }
        let partner = PartnerTrack {
            partner_track: "KOR-7".into(),
            pos_vel: pv,
            cov: nalgebra::SMatrix::<f64, 6, 6>::from_diagonal(&nalgebra::SVector::<f64, 6>::from_column_slice(&[
                1e4, 1e4, 1e4, 25.0, 25.0, 25.0,
            ])),
        };
        vec![
            Observation::Radar(radar),
            Observation::Radar(doppler),
            Observation::SpaceIr(ir),
            Observation::Partner(partner),
        ]
    };
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    for model_kind in [Model::Boost, Model::Ballistic] {
        let dt = 1.5;
        let (xp, pp) = predict(&x0, &p0, dt, model_kind, &noise);
        for obs in observations(&xp) {
            let lin = model(&obs, &xp);
            let (mut xu, mut pu) = (xp, pp);
            update(&mut xu, &mut pu, &lin).expect("update");
            let m = lin.dim;
            cases.push(serde_json::json!({
                "x": flat(x0.iter().copied()),
                "P": flat(rows(&p0)),
                "F": flat(rows(&transition(&x0, dt, model_kind))),
                "Q": flat(rows(&process_noise(dt, model_kind, &noise))),
                "x_pred": flat(propagate(&x0, dt, model_kind).iter().copied()),
                "z": flat(lin.z.iter().take(m).copied()),
                "hx": flat(lin.predicted.iter().take(m).copied()),
                "H": flat((0..m).flat_map(|i| (0..DIM).map(move |j| (i, j))).map(|(i, j)| lin.h[(i, j)])),
                "R": flat((0..m).flat_map(|i| (0..m).map(move |j| (i, j))).map(|(i, j)| lin.r[(i, j)])),
                "angle_rows": lin.angle_rows,
            }));
            ours.push((
                format!("{model_kind:?}/{obs:?}").chars().take(60).collect::<String>(),
                rows(&pp),
                xu,
                rows(&pu),
            ));
        }
    }
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("filterpy-cases.json");
    std::fs::write(&path, serde_json::to_vec(&cases).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../oracles/filterpy_ekf.py");
    let out = Command::new(python).arg(script).arg(&path).output().expect("run python");
    assert!(out.status.success(), "oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(theirs.len(), ours.len());
    let close = |what: &str, a: &[f64], b: &[f64]| {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            // Relative to the matrix's largest entry: off-diagonal terms near zero carry the
            // rounding of the large ones.
            assert!(
                (x - y).abs() <= RELATIVE_TOLERANCE * scale,
                "{what}[{i}]: trilink {x} filterpy {y} (scale {scale})"
            );
        }
    };
    for ((name, p_pred, x_upd, p_upd), t) in ours.iter().zip(&theirs) {
        let get = |k: &str| t[k].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect::<Vec<f64>>();
        close(&format!("{name} P_pred"), p_pred, &get("P_pred"));
        close(&format!("{name} P_upd"), p_upd, &get("P_upd"));
        // The state: compare the update's correction, which is what the algebra produced
        // (the states themselves are ~6e6 m, where 1e-6 relative would hide a 6 m error).
        let x_f = get("x_upd");
        let xu: Vec<f64> = x_upd.iter().copied().collect();
        let diffs: Vec<f64> = xu.iter().zip(&x_f).map(|(a, b)| a - b).collect();
        let max_diff = diffs.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        assert!(max_diff < 1e-6, "{name}: state differs from filterpy by {max_diff} (m or m/s)");
    }
}
