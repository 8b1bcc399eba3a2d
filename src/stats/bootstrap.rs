//! BCa bootstrap confidence interval for the median or mean of one sample.
//!
//! Follows Efron & Tibshirani (1993) ch. 14 as `scipy.stats.bootstrap(method="BCa")` does:
//! z0 = Phi^-1(fraction of resampled statistics below the estimate, ties counting half),
//! acceleration a from the jackknife, and the interval read off the bootstrap distribution
//! with numpy's linear quantile at the BCa-adjusted levels. Random numbers differ from
//! scipy's, so results agree with scipy only up to Monte Carlo error.
//!
//! Reproducibility: resample b draws from its own ChaCha8 stream (seed = `seed`, stream = b),
//! so the result is bit-identical whatever the rayon thread count.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::descriptive::{median_sorted, quantile_sorted};
use super::{normal, without_nan, Interval, Statistic};

/// BCa interval at confidence `level` from `resamples` bootstrap resamples. Falls back to the
/// percentile interval when BCa is undefined (z0 infinite, zero jackknife variance, or
/// non-finite adjusted levels). n = 0, `resamples` = 0 or a level outside (0, 1) give NaN
/// bounds; n = 1 gives [x, x].
pub fn bootstrap_ci(
    x: &[f64],
    stat: Statistic,
    level: f64,
    resamples: usize,
    seed: u64,
) -> Interval {
    let x = without_nan(x);
    let nan = Interval {
        low: f64::NAN,
        high: f64::NAN,
        level,
        method: "percentile",
    };
    if x.is_empty() || resamples == 0 || !(level > 0.0 && level < 1.0) {
        return nan;
    }
    if x.len() == 1 {
        return Interval {
            low: x[0],
            high: x[0],
            ..nan
        };
    }
    let estimate = statistic(&mut x.clone(), stat);
    let mut dist = resample_stats(&x, stat, resamples, seed);
    dist.sort_by(f64::total_cmp);

    let alpha = (1.0 - level) / 2.0;
    let (q_low, q_high, method) = match bca_levels(&x, stat, estimate, &dist, alpha) {
        Some((lo, hi)) => (lo, hi, "bca"),
        None => (alpha, 1.0 - alpha, "percentile"),
    };
    Interval {
        low: quantile_sorted(&dist, q_low),
        high: quantile_sorted(&dist, q_high),
        level,
        method,
    }
}

/// The statistic of `v` (reorders `v`).
fn statistic(v: &mut [f64], stat: Statistic) -> f64 {
    match stat {
        Statistic::Mean => v.iter().sum::<f64>() / v.len() as f64,
        Statistic::Median => {
            v.sort_unstable_by(f64::total_cmp);
            median_sorted(v)
        }
    }
}

/// Statistic of each resample, in resample order; resample b uses ChaCha8 stream b.
fn resample_stats(x: &[f64], stat: Statistic, resamples: usize, seed: u64) -> Vec<f64> {
    let n = x.len();
    (0..resamples)
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(n),
            |buf: &mut Vec<f64>, b| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(b as u64);
                buf.clear();
                buf.extend((0..n).map(|_| x[rng.random_range(0..n)]));
                statistic(buf, stat)
            },
        )
        .collect()
}

/// BCa-adjusted quantile levels (alpha_1, alpha_2), or None when BCa is undefined.
fn bca_levels(
    x: &[f64],
    stat: Statistic,
    estimate: f64,
    dist: &[f64],
    alpha: f64,
) -> Option<(f64, f64)> {
    let below = dist.iter().filter(|&&t| t < estimate).count();
    let at_or_below = dist.iter().filter(|&&t| t <= estimate).count();
    let z0 = normal::ppf((below + at_or_below) as f64 / (2 * dist.len()) as f64);
    let a = acceleration(x, stat)?;
    let z_alpha = normal::ppf(alpha);
    let adjust = |z: f64| {
        let num = z0 + z;
        normal::cdf(z0 + num / (1.0 - a * num))
    };
    let (lo, hi) = (adjust(z_alpha), adjust(-z_alpha));
    (z0.is_finite() && lo.is_finite() && hi.is_finite()).then_some((lo, hi))
}

/// Jackknife acceleration a = sum(U^3) / (6 sum(U^2)^(3/2)), U_i = (n-1)(mean_j - theta_(i));
/// None when the jackknife values do not vary.
fn acceleration(x: &[f64], stat: Statistic) -> Option<f64> {
    let n = x.len();
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    let total: f64 = s.iter().sum();
    // leave-one-out statistics; the multiset is the same whichever copy of a value is left out
    let jack: Vec<f64> = (0..n)
        .map(|j| match stat {
            Statistic::Mean => (total - s[j]) / (n - 1) as f64,
            Statistic::Median => median_without(&s, j),
        })
        .collect();
    let mean_j = jack.iter().sum::<f64>() / n as f64;
    let u: Vec<f64> = jack.iter().map(|t| (n - 1) as f64 * (mean_j - t)).collect();
    let nf = n as f64;
    let num: f64 = u.iter().map(|v| v * v * v).sum::<f64>() / nf.powi(3);
    let den: f64 = u.iter().map(|v| v * v).sum::<f64>() / nf.powi(2);
    if den > 0.0 && den.is_finite() {
        Some(num / (6.0 * den.powf(1.5)))
    } else {
        None
    }
}

/// Median of sorted `s` with element `j` removed (n >= 2), without copying.
fn median_without(s: &[f64], j: usize) -> f64 {
    let at = |k: usize| if k < j { s[k] } else { s[k + 1] };
    let m = s.len() - 1;
    if m % 2 == 1 {
        at(m / 2)
    } else {
        (at(m / 2 - 1) + at(m / 2)) / 2.0
    }
}
