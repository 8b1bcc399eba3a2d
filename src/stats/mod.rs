//! Nonparametric tests, multiple-testing correction and confidence intervals for xaudit verdicts.
//!
//! Every function matches a named scipy/numpy call (scipy 1.17.1, numpy 2.4); the golden
//! values in `fixtures/golden/stats.json` (written by `fixtures/stats_golden.py`) pin that.
//!
//! The claim tests ([`quantile_test`], [`walsh_test`], [`effect_test`]) each come with a
//! one-sided bound ([`quantile_bound`], [`walsh_bound`], [`effect_bound`]) that is exactly dual
//! to the test, bit for bit: at every level a, a claim's p-value is <= a iff its bound lies
//! strictly beyond the threshold (property-tested on data with many ties).
//!
//! Inputs must not contain NaN (callers filter them). This is checked with `debug_assert!`;
//! release builds never panic and treat NaN observations as excluded.

mod binomial;
mod bootstrap;
mod descriptive;
mod effect_ci;
mod holm;
mod mann_whitney;
mod normal;
mod quantile;
mod ranks;
mod relative_effect;
mod sequential;
mod sign;
mod walsh;
mod wilcoxon;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod prop_tests;

pub use binomial::clopper_pearson;
pub use bootstrap::bootstrap_ci;
pub use descriptive::{mean, median, quantile};
pub use effect_ci::{rank_biserial, rank_biserial_ci};
pub use holm::holm;
pub use mann_whitney::mann_whitney_u;
pub use quantile::{binom_sf, images_to_decide, quantile_bound, quantile_test, QuantileTest};
pub use ranks::rank_average;
pub use relative_effect::{effect_bound, effect_test, EffectTest};
pub use sequential::{anytime_bound, ln_mixture_martingale, replay, SequentialQuantile};
pub use sign::sign_test;
pub use walsh::{hodges_lehmann, signed_rank_sf, walsh_bound, walsh_test, WalshTest};
pub use wilcoxon::wilcoxon_signed_rank;

/// Standard normal quantile (NaN outside [0, 1]).
pub fn normal_ppf(p: f64) -> f64 {
    normal::ppf(p)
}

/// One-sided bound on a binomial rate from `k` of `n`, exactly dual to the exact binomial
/// test through [`binom_sf`]: the upper bound U (`upper`) satisfies P(Bin(n, t) <= k) <= a
/// exactly when t >= U; the lower bound L satisfies P(Bin(n, t) >= k) <= a exactly when
/// t <= L. Found by bisection on the same tail function, so rounding cannot split them.
pub fn rate_bound(k: u64, n: u64, a: f64, upper: bool) -> f64 {
    if n == 0 || !(a > 0.0 && a < 1.0) {
        return if upper { 1.0 } else { 0.0 };
    }
    let k = k.min(n);
    // The test's p-value at rate t, monotone in t.
    let p = |t: f64| {
        if upper {
            1.0 - binom_sf(k + 1, n, t)
        } else {
            binom_sf(k, n, t)
        }
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        // upper: p decreases in t; we want the smallest t with p(t) <= a.
        // lower: p increases in t; we want the largest t with p(t) <= a.
        let rejected = p(mid) <= a;
        if upper == rejected {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    if upper {
        hi
    } else {
        lo
    }
}

/// Alternative hypothesis, spelled as in scipy (`"less"`, `"greater"`, `"two-sided"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Alternative {
    Less,
    Greater,
    TwoSided,
}

/// Outcome of one hypothesis test.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TestResult {
    /// `"wilcoxon-signed-rank"`, `"sign"` or `"mann-whitney-u"`.
    pub test: &'static str,
    /// `"exact"` or `"normal-approx"`.
    pub method: &'static str,
    /// The `statistic` scipy reports for the same call (see each test's docs).
    pub statistic: f64,
    /// p-value, always in [0, 1].
    pub p_value: f64,
    /// Observations actually used (after dropping zero differences; n1 + n2 for Mann-Whitney).
    pub n: usize,
    /// Rank-biserial-type effect size in [-1, 1], positive when x tends to be larger
    /// (than `mu`, or than `y`). Wilcoxon: (T+ - T-)/(T+ + T-). Sign: (n_pos - n_neg)/n.
    /// Mann-Whitney: 2 U1/(n1 n2) - 1. 0 when nothing is left to compare.
    pub effect_size: f64,
}

/// Which side of the threshold `tau` is good, for the claim tests ([`quantile_test`],
/// [`walsh_test`]): `Lower` means values below `tau` are good, `Higher` values above it.
/// Values exactly equal to `tau` count on neither side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Good {
    Lower,
    Higher,
}

/// Statistic for [`bootstrap_ci`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Statistic {
    Median,
    Mean,
}

/// Two-sided confidence interval.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
    /// `"bca"`, `"percentile"` (bootstrap) or `"clopper-pearson"`.
    pub method: &'static str,
}

/// Removes NaN (not allowed; see module docs) without panicking in release builds.
fn without_nan(x: &[f64]) -> Vec<f64> {
    debug_assert!(
        x.iter().all(|v| !v.is_nan()),
        "stats: NaN input is not allowed"
    );
    x.iter().copied().filter(|v| !v.is_nan()).collect()
}

/// Smallest k in `1..=max` with `tail(k) <= a`, for a `tail` that is non-increasing in k
/// (binary search); `None` when even `tail(max)` exceeds `a`. Used for the order-statistic
/// bounds, with the same tail function as the p-values so the two are exactly dual.
fn smallest_k_at_most(max: u64, a: f64, tail: impl Fn(u64) -> f64) -> Option<u64> {
    if max == 0 || tail(max) > a {
        return None;
    }
    // invariant: tail(hi) <= a, and tail(k) > a for k <= lo (lo = 0 is a sentinel)
    let (mut lo, mut hi) = (0u64, max);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if tail(mid) <= a {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// Maps an f64 to a u64 whose order is `f64::total_cmp`'s (for bisection on the value).
fn order_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// Inverse of [`order_key`].
fn from_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}
