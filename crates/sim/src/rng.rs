//! Deterministic randomness: one ChaCha8 stream per sensor, seeded from the scenario seed and
//! the sensor's id, so adding a sensor never changes another sensor's noise.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

#[derive(Debug)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// A stream for `label` under `seed`: FNV-1a of the label, mixed with the seed by SplitMix64.
    pub fn for_stream(seed: u64, label: &str) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in label.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let mut z = seed ^ h;
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng(ChaCha8Rng::seed_from_u64(z ^ (z >> 31)))
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    pub fn uniform_in(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Standard normal by the Box–Muller transform (both halves are not kept, so every draw
    /// costs the same and the stream stays simple to reason about).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: keeps ln finite
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Poisson-distributed count with mean `lambda` (Knuth's product method; the scenario caps
    /// the mean so the loop stays short).
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        if lambda <= 0.0 {
            return 0;
        }
        let limit = (-lambda).exp();
        let mut k = 0;
        let mut p = self.uniform();
        while p > limit {
            k += 1;
            p *= self.uniform();
        }
        k
    }

    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.uniform() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_right() {
        let mut r = Rng::for_stream(7, "test");
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.01, "mean {mean} var {var}");
        let counts: Vec<u32> = (0..n).map(|_| r.poisson(2.5)).collect();
        let mean = f64::from(counts.iter().sum::<u32>()) / n as f64;
        assert!((mean - 2.5).abs() < 0.02, "poisson mean {mean}");
    }

    #[test]
    fn streams_are_independent_of_each_other_and_repeatable() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_stream(1, "KOR-1").0.next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::for_stream(1, "KOR-1").uniform(), Rng::for_stream(1, "KOR-2").uniform());
        assert_ne!(Rng::for_stream(1, "KOR-1").uniform(), Rng::for_stream(2, "KOR-1").uniform());
    }
}
