//! Percentile bootstrap interval of the Mann-Whitney rank-biserial effect r = 2U/(n1 n2) - 1,
//! resampling both groups independently (Efron & Tibshirani 1993, two-sample bootstrap).
//! Each resample draws from its own ChaCha8 stream keyed by (seed, b), so the interval does
//! not depend on the rayon thread count.
use super::Interval;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// r for samples `x`, `y` (ties count half), O((n1+n2) log(n1+n2)).
pub fn rank_biserial(x: &[f64], y: &[f64]) -> f64 {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return 0.0;
    }
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let r = super::rank_average(&all);
    let r1: f64 = r[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    2.0 * u1 / (n1 * n2) as f64 - 1.0
}

/// Percentile interval of r at `level` from `resamples` paired group resamples.
pub fn rank_biserial_ci(x: &[f64], y: &[f64], level: f64, resamples: usize, seed: u64) -> Interval {
    let nan = Interval {
        low: f64::NAN,
        high: f64::NAN,
        level,
        method: "percentile",
    };
    if x.is_empty() || y.is_empty() || resamples == 0 || !(level > 0.0 && level < 1.0) {
        return nan;
    }
    let stats: Vec<f64> = (0..resamples)
        .into_par_iter()
        .map(|b| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let xs: Vec<f64> = (0..x.len())
                .map(|_| x[rng.random_range(0..x.len())])
                .collect();
            let ys: Vec<f64> = (0..y.len())
                .map(|_| y[rng.random_range(0..y.len())])
                .collect();
            rank_biserial(&xs, &ys)
        })
        .collect();
    let a = (1.0 - level) / 2.0;
    Interval {
        low: super::quantile(&stats, a),
        high: super::quantile(&stats, 1.0 - a),
        level,
        method: "percentile",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_matches_mann_whitney_and_interval_brackets_it() {
        let x: Vec<f64> = (0..40).map(|i| (i as f64 * 0.37).sin() + 0.5).collect();
        let y: Vec<f64> = (0..35).map(|i| (i as f64 * 0.91).cos()).collect();
        let r = rank_biserial(&x, &y);
        let t = super::super::mann_whitney_u(&x, &y, super::super::Alternative::TwoSided);
        assert!((r - t.effect_size).abs() < 1e-12);
        let ci = rank_biserial_ci(&x, &y, 0.95, 2000, 7);
        assert!(ci.low <= r && r <= ci.high, "{ci:?} {r}");
        let again = rank_biserial_ci(&x, &y, 0.95, 2000, 7);
        assert_eq!(ci.low.to_bits(), again.low.to_bits());
    }
}
