//! Metrics: GOSPA, χ² quantiles for NEES bands, and running statistics.

use geodesy::Vector3;

/// Generalised optimal sub-pattern assignment (Rahmathullah, García-Fernández, Svensson 2017)
/// with α = 2: localisation error of assigned pairs plus c^p/2 for each missed or false object,
/// all to the power 1/p. Exact assignment by the Hungarian method.
pub fn gospa(estimates: &[Vector3<f64>], truths: &[Vector3<f64>], c_m: f64, p: f64) -> Gospa {
    let (n, m) = (estimates.len(), truths.len());
    let penalty = c_m.powf(p) / 2.0;
    if n == 0 || m == 0 {
        let total = penalty * (n + m) as f64;
        return Gospa { value_m: total.powf(1.0 / p), localisation_m: 0.0, missed: m, false_tracks: n };
    }
    // Rows: the smaller set; a pair costs min(d, c)^p, but a pair at c is no better than a
    // miss plus a false track (2 · c^p/2), so pairs at or beyond c count as unassigned.
    let (rows, cols, est_rows) = if n <= m { (n, m, true) } else { (m, n, false) };
    let mut cost = vec![0.0; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            let (e, t) = if est_rows { (i, j) } else { (j, i) };
            cost[i * cols + j] = (estimates[e] - truths[t]).norm().min(c_m).powf(p);
        }
    }
    let assignment = fusion::assoc::hungarian(&cost, rows, cols);
    let mut localisation = 0.0;
    let mut assigned = 0;
    for (i, j) in assignment.into_iter().enumerate() {
        let d = cost[i * cols + j];
        if d < c_m.powf(p) {
            localisation += d;
            assigned += 1;
        }
    }
    let missed = m - assigned;
    let false_tracks = n - assigned;
    let total = localisation + penalty * (missed + false_tracks) as f64;
    Gospa { value_m: total.powf(1.0 / p), localisation_m: localisation.powf(1.0 / p), missed, false_tracks }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gospa {
    pub value_m: f64,
    pub localisation_m: f64,
    pub missed: usize,
    pub false_tracks: usize,
}

/// Quantile of χ² with `k` degrees of freedom (Wilson–Hilferty; within 1% for k ≥ 3).
pub fn chi2_quantile(k: f64, p: f64) -> f64 {
    let z = normal_quantile(p);
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
}

/// Standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let p_low = 0.02425;
    if p < p_low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - p_low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gospa_counts_misses_and_false_tracks() {
        let t = [Vector3::new(0.0, 0.0, 0.0), Vector3::new(1e6, 0.0, 0.0)];
        let e = [Vector3::new(3.0, 4.0, 0.0)];
        let g = gospa(&e, &t, 100.0, 2.0);
        assert_eq!((g.missed, g.false_tracks), (1, 0));
        assert!((g.value_m - (25.0f64 + 100.0 * 100.0 / 2.0).sqrt()).abs() < 1e-9);
        let g = gospa(&[], &[], 100.0, 2.0);
        assert_eq!(g.value_m, 0.0);
    }

    #[test]
    fn quantiles_match_tables() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((chi2_quantile(6.0, 0.95) - 12.592).abs() / 12.592 < 0.01);
        assert!((chi2_quantile(60.0, 0.025) - 40.482).abs() / 40.482 < 0.01);
    }
}
