//! Track initiation: two position fixes a short time apart, consistent with a missile's speed,
//! make a tentative track. A fix is a radar report converted to ECEF, or the triangulation of
//! two infrared satellites' lines of sight at the same instant.

use geodesy::{Matrix3, Vector3};

/// A position fix waiting to be paired.
#[derive(Debug, Clone)]
pub struct Fix {
    pub t_s: f64,
    pub pos: Vector3<f64>,
    pub cov: Matrix3<f64>,
    pub sensor: String,
    pub nation: vocab::Nation,
}

/// Triangulates two lines of sight (satellite positions and unit directions): the midpoint of
/// their closest approach, its covariance from the angular noise and geometry, and the miss
/// distance between the lines. `None` for near-parallel lines (no depth information).
pub fn triangulate(
    s1: &Vector3<f64>,
    u1: &Vector3<f64>,
    sigma1_rad: f64,
    s2: &Vector3<f64>,
    u2: &Vector3<f64>,
    sigma2_rad: f64,
) -> Option<(Vector3<f64>, Matrix3<f64>, f64)> {
    let w0 = s1 - s2;
    let b = u1.dot(u2);
    let denom = 1.0 - b * b;
    // Lines closer than ~2.5° to parallel give range errors hundreds of times the cross error.
    if denom < 2e-3 {
        return None;
    }
    let d = u1.dot(&w0);
    let e = u2.dot(&w0);
    let t1 = (b * e - d) / denom;
    let t2 = (e - b * d) / denom;
    if t1 <= 0.0 || t2 <= 0.0 {
        return None;
    }
    let p1 = s1 + u1 * t1;
    let p2 = s2 + u2 * t2;
    let mid = (p1 + p2) / 2.0;
    // Each line constrains the two directions across it with σ·range; stacking both lines'
    // information gives the fix covariance (the along-line direction of one is fixed by the other).
    let info = |u: &Vector3<f64>, sigma_m: f64| (Matrix3::identity() - u * u.transpose()) / (sigma_m * sigma_m);
    let information = info(u1, sigma1_rad * t1) + info(u2, sigma2_rad * t2);
    let cov = information.try_inverse()?;
    Some((mid, cov, (p1 - p2).norm()))
}

/// The fastest and slowest a tracked object moves between two fixes: beyond 8 km/s nothing
/// ballistic flies; a pair implying it is two different objects.
pub const MAX_SPEED_MPS: f64 = 8_000.0;

/// Two fixes closer in time than this make a poor velocity (a 500 m position error over 0.1 s
/// is a 5 km/s velocity error); wait for a later one.
pub const MIN_PAIR_INTERVAL_S: f64 = 0.9;

/// How well `fix` pairs with an earlier fix made at `t_s` at `pos` with covariance trace
/// `cov_trace` (what an index of waiting fixes keeps, so that a search does not touch the
/// fixes themselves): `None` if implausible (too close in time,
/// older than `window_s`, or farther apart than the speed limit allows), else a score where
/// lower is better — the most recent partner first, then the closest.
pub fn pair_score(t_s: f64, pos: &Vector3<f64>, cov_trace: f64, fix: &Fix, window_s: f64) -> Option<f64> {
    let dt = fix.t_s - t_s;
    if !(dt >= MIN_PAIR_INTERVAL_S && dt <= window_s) {
        return None;
    }
    let displacement = (fix.pos - pos).norm();
    // Allow the speed limit plus three sigma of both fixes' position errors.
    let slack = 3.0 * ((cov_trace + fix.cov.trace()).sqrt());
    if displacement > MAX_SPEED_MPS * dt + slack {
        return None;
    }
    Some(dt * 1e6 + displacement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangulation_finds_the_crossing_and_a_sensible_covariance() {
        let target = Vector3::new(-3.0e6, 4.0e6, 4.0e6);
        let s1 = Vector3::new(-1.4e7, 4.0e7, 0.0);
        let s2 = Vector3::new(-3.5e7, 2.3e7, 0.0);
        let (u1, u2) = ((target - s1).normalize(), (target - s2).normalize());
        let (p, cov, miss) = triangulate(&s1, &u1, 3e-5, &s2, &u2, 3e-5).unwrap();
        assert!((p - target).norm() < 1e-3 && miss < 1e-3);
        // σ·range ≈ 1.1 km across each line; the fix is a few km at worst.
        let sd = cov.symmetric_eigenvalues().map(f64::sqrt);
        assert!(sd.max() < 10e3 && sd.min() > 100.0, "{sd}");
        assert!(triangulate(&s1, &u1, 3e-5, &(s1 + Vector3::new(1e3, 0.0, 0.0)), &u1, 3e-5).is_none());
    }
}
