//! Nonparametric tests, multiple-testing correction and confidence intervals for xaudit verdicts.
//!
//! Every function matches a named scipy/numpy call (scipy 1.17.1, numpy 2.4); the golden
//! values in `fixtures/golden/stats.json` (written by `fixtures/stats_golden.py`) pin that.
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
mod ranks;
mod sign;
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
pub use ranks::rank_average;
pub use sign::sign_test;
pub use wilcoxon::wilcoxon_signed_rank;

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
