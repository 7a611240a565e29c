//! Track-to-track fusion with unknown cross-correlation: covariance intersection.
//!
//! Two estimates of one target from different nations share errors (common prior, common
//! sensors, earlier exchanges) in ways neither side knows. Covariance intersection fuses them
//! into an estimate that is consistent for any cross-correlation: P⁻¹ = ω P₁⁻¹ + (1 − ω) P₂⁻¹,
//! x = P (ω P₁⁻¹ x₁ + (1 − ω) P₂⁻¹ x₂), with ω ∈ [0, 1] minimising the trace of P.

use nalgebra::{SMatrix, SVector};

/// Fuses two Gaussian estimates by covariance intersection; `None` if either covariance is
/// not positive definite.
pub fn covariance_intersection<const N: usize>(
    x1: &SVector<f64, N>,
    p1: &SMatrix<f64, N, N>,
    x2: &SVector<f64, N>,
    p2: &SMatrix<f64, N, N>,
) -> Option<(SVector<f64, N>, SMatrix<f64, N, N>, f64)> {
    let i1 = p1.cholesky()?.inverse();
    let i2 = p2.cholesky()?.inverse();
    let fused = |w: f64| -> Option<SMatrix<f64, N, N>> { (i1 * w + i2 * (1.0 - w)).cholesky().map(|c| c.inverse()) };
    // The trace is convex in ω.
    let w = golden_section_min(|w| fused(w).map_or(f64::INFINITY, |p| p.trace()), 0.0, 1.0, 40);
    let p = fused(w)?;
    let x = p * (i1 * x1 * w + i2 * x2 * (1.0 - w));
    Some((x, p, w))
}

/// The minimiser of a unimodal `f` on `[lo, hi]` by golden-section search, `steps` shrinks of
/// 0.618 each, one new evaluation per step.
pub fn golden_section_min(f: impl Fn(f64) -> f64, lo: f64, hi: f64, steps: usize) -> f64 {
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (lo, hi);
    let mut c = b - phi * (b - a);
    let mut d = a + phi * (b - a);
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..steps {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - phi * (b - a);
            fc = f(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + phi * (b - a);
            fd = f(d);
        }
    }
    0.5 * (a + b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Matrix2, Vector2};

    #[test]
    fn ci_is_consistent_for_any_correlation_and_no_worse_than_either() {
        // Two estimates of the same truth whose errors are correlated with unknown ρ.
        let p1 = Matrix2::new(4.0, 0.0, 0.0, 1.0);
        let p2 = Matrix2::new(1.0, 0.0, 0.0, 4.0);
        let (_, p, w) = covariance_intersection(&Vector2::new(0.0, 0.0), &p1, &Vector2::new(1.0, 1.0), &p2).unwrap();
        assert!(p.trace() <= p1.trace().min(p2.trace()) + 1e-9);
        assert!((0.0..=1.0).contains(&w));
        for rho in [-0.9, -0.5, 0.0, 0.5, 0.9, 0.99] {
            // Cross-covariance of the two errors for this ρ; the fused error's true covariance
            // is K P K' with K = [ωP P1⁻¹, (1−ω)P P2⁻¹]; it must not exceed P.
            let s1 = p1.map(f64::sqrt);
            let s2 = p2.map(f64::sqrt);
            let p12 = s1 * s2 * rho;
            let k1 = p * p1.try_inverse().unwrap() * w;
            let k2 = p * p2.try_inverse().unwrap() * (1.0 - w);
            let actual = k1 * p1 * k1.transpose()
                + k1 * p12 * k2.transpose()
                + k2 * p12.transpose() * k1.transpose()
                + k2 * p2 * k2.transpose();
            let gap = (p - actual).symmetric_eigenvalues();
            assert!(gap.min() > -1e-9, "ρ {rho}: CI covariance smaller than the true one: {gap}");
        }
    }
}
