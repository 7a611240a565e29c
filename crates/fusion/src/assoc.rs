//! Global nearest neighbour assignment: the minimum-cost one-to-one matching of tracks to the
//! measurements of one scan, solved exactly by the Hungarian method (shortest augmenting paths
//! with potentials, O(n²m)), after gating splits the problem into independent clusters.

/// Cost that marks a forbidden pairing (outside the gate).
pub const FORBIDDEN: f64 = f64::INFINITY;

/// Minimum-cost assignment of rows to columns for a `rows × cols` matrix with rows ≤ cols
/// (row-major). Returns, for each row, its column.
pub fn hungarian(cost: &[f64], rows: usize, cols: usize) -> Vec<usize> {
    assert!(rows <= cols && cost.len() == rows * cols, "hungarian needs rows ≤ cols");
    // Large finite stand-in for forbidden pairs keeps the potentials finite.
    let big = cost.iter().filter(|c| c.is_finite()).fold(0.0f64, |m, c| m.max(c.abs())) * 4.0 + 1e6;
    let c = |i: usize, j: usize| {
        let v = cost[i * cols + j];
        if v.is_finite() {
            v
        } else {
            big
        }
    };
    // 1-based arrays as in the classic formulation; p[j] is the row matched to column j.
    let mut u = vec![0.0; rows + 1];
    let mut v = vec![0.0; cols + 1];
    let mut p = vec![0usize; cols + 1];
    let mut way = vec![0usize; cols + 1];
    for i in 1..=rows {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; cols + 1];
        let mut used = vec![false; cols + 1];
        loop {
            used[j0] = true;
            let i0 = p[j0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0;
            for j in 1..=cols {
                if !used[j] {
                    let cur = c(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=cols {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut out = vec![0; rows];
    for j in 1..=cols {
        if p[j] != 0 {
            out[p[j] - 1] = j - 1;
        }
    }
    out
}

/// Assigns tracks to measurements given gated costs `(track, measurement, cost)`. A track may
/// stay unassigned at `miss_cost`. Returns `(track, measurement)` pairs.
pub fn assign(
    tracks: usize,
    measurements: usize,
    gated: &[(usize, usize, f64)],
    miss_cost: f64,
) -> Vec<(usize, usize)> {
    // Clusters: union-find over tracks and measurements joined by a gated pair.
    let mut parent: Vec<usize> = (0..tracks + measurements).collect();
    fn find(parent: &mut [usize], mut a: usize) -> usize {
        while parent[a] != a {
            parent[a] = parent[parent[a]];
            a = parent[a];
        }
        a
    }
    for &(t, m, _) in gated {
        let (a, b) = (find(&mut parent, t), find(&mut parent, tracks + m));
        if a != b {
            parent[a] = b;
        }
    }
    let mut clusters: std::collections::BTreeMap<usize, (Vec<usize>, Vec<usize>)> = Default::default();
    for &(t, m, _) in gated {
        let root = find(&mut parent, t);
        let entry = clusters.entry(root).or_default();
        if !entry.0.contains(&t) {
            entry.0.push(t);
        }
        if !entry.1.contains(&m) {
            entry.1.push(m);
        }
    }
    let mut pairs = Vec::new();
    for (_, (ts, ms)) in clusters {
        // Columns: the cluster's measurements, then one "miss" column per track.
        let (n, m) = (ts.len(), ms.len());
        let cols = m + n;
        let mut cost = vec![FORBIDDEN; n * cols];
        for &(t, mi, c) in gated {
            if let (Some(r), Some(k)) = (ts.iter().position(|x| *x == t), ms.iter().position(|x| *x == mi)) {
                cost[r * cols + k] = c;
            }
        }
        for r in 0..n {
            cost[r * cols + m + r] = miss_cost;
        }
        for (r, col) in hungarian(&cost, n, cols).into_iter().enumerate() {
            if col < m && cost[r * cols + col].is_finite() {
                pairs.push((ts[r], ms[col]));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(cost: &[f64], rows: usize, cols: usize) -> f64 {
        fn go(cost: &[f64], rows: usize, cols: usize, i: usize, used: &mut Vec<bool>) -> f64 {
            if i == rows {
                return 0.0;
            }
            let mut best = f64::INFINITY;
            for j in 0..cols {
                if !used[j] {
                    used[j] = true;
                    best = best.min(cost[i * cols + j] + go(cost, rows, cols, i + 1, used));
                    used[j] = false;
                }
            }
            best
        }
        go(cost, rows, cols, 0, &mut vec![false; cols])
    }

    proptest::proptest! {
        #[test]
        fn hungarian_is_optimal(rows in 1usize..5, extra in 0usize..3, seed in 0u64..1000) {
            let cols = rows + extra;
            let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let cost: Vec<f64> = (0..rows * cols).map(|_| { s = s.wrapping_mul(6364136223846793005).wrapping_add(1); (s >> 40) as f64 / 1e3 }).collect();
            let a = hungarian(&cost, rows, cols);
            let total: f64 = a.iter().enumerate().map(|(i, j)| cost[i * cols + j]).sum();
            let mut seen = a.clone();
            seen.sort_unstable();
            seen.dedup();
            proptest::prop_assert_eq!(seen.len(), rows);
            proptest::prop_assert!((total - brute(&cost, rows, cols)).abs() < 1e-9);
        }
    }

    #[test]
    fn gating_and_misses() {
        // Track 0 gates with measurements 0 and 1, track 1 only with 1: GNN gives 0→0, 1→1.
        let pairs = assign(2, 3, &[(0, 0, 2.0), (0, 1, 1.0), (1, 1, 1.5)], 20.0);
        assert_eq!(pairs.len(), 2);
        assert!(pairs.contains(&(0, 0)) && pairs.contains(&(1, 1)));
        // A lone track whose only candidate costs more than a miss stays unassigned.
        assert!(assign(1, 1, &[(0, 0, 30.0)], 20.0).is_empty());
    }
}
