//! One-sample Wilcoxon signed-rank test on d_i = x_i - mu.
//!
//! Matches `scipy.stats.wilcoxon(d, zero_method="wilcox", correction=True, alternative=alt,
//! method=m)` with `m` chosen here rather than by scipy's "auto":
//! zeros are dropped first, then `m = "exact"` when n <= 50 and the |d_i| have no ties,
//! otherwise `m = "asymptotic"`. (scipy's "auto" would run a permutation test for n <= 13
//! with ties or zeros; a deterministic normal approximation is preferred here.)
//!
//! Statistic: as scipy, T+ for one-sided alternatives and min(T+, T-) for two-sided.

use super::{normal, ranks, without_nan, Alternative, TestResult};

const TEST: &str = "wilcoxon-signed-rank";
/// Largest n for which the exact null distribution is used.
const EXACT_MAX_N: usize = 50;

/// Wilcoxon signed-rank test of H0: the d_i = x_i - mu are symmetric about 0.
/// `Greater` means x tends to exceed mu. Zero differences are dropped (zero_method="wilcox");
/// with nothing left the result is p = 1, statistic 0, n = 0.
pub fn wilcoxon_signed_rank(x: &[f64], mu: f64, alt: Alternative) -> TestResult {
    let d: Vec<f64> = without_nan(x)
        .iter()
        .map(|v| v - mu)
        .filter(|d| *d != 0.0 && !d.is_nan())
        .collect();
    let n = d.len();
    if n == 0 {
        return TestResult {
            test: TEST,
            method: "exact",
            statistic: 0.0,
            p_value: 1.0,
            n: 0,
            effect_size: 0.0,
        };
    }
    let abs: Vec<f64> = d.iter().map(|v| v.abs()).collect();
    let r = ranks::rank_average(&abs);
    let t_plus: f64 = d
        .iter()
        .zip(&r)
        .filter(|(v, _)| **v > 0.0)
        .map(|(_, r)| r)
        .sum();
    let t_minus: f64 = d
        .iter()
        .zip(&r)
        .filter(|(v, _)| **v < 0.0)
        .map(|(_, r)| r)
        .sum();
    let groups = ranks::tie_groups(&abs);
    let has_ties = groups.iter().any(|&t| t > 1);

    let (method, p) = if n <= EXACT_MAX_N && !has_ties {
        ("exact", exact_p(n, t_plus, alt))
    } else {
        (
            "normal-approx",
            approx_p(n, t_plus, ranks::tie_term(&groups), alt),
        )
    };
    let statistic = match alt {
        Alternative::TwoSided => t_plus.min(t_minus),
        _ => t_plus,
    };
    TestResult {
        test: TEST,
        method,
        statistic,
        p_value: clamp_p(p),
        n,
        effect_size: (t_plus - t_minus) / (t_plus + t_minus),
    }
}

/// Maps NaN to 1 and clamps to [0, 1].
pub(crate) fn clamp_p(p: f64) -> f64 {
    if p.is_nan() {
        1.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// Counts of T+ = 0..=n(n+1)/2 over the 2^n sign patterns (exact in f64: at most 2^50).
fn null_counts(n: usize) -> Vec<f64> {
    let max = n * (n + 1) / 2;
    let mut c = vec![0.0; max + 1];
    c[0] = 1.0;
    for k in 1..=n {
        let top = k * (k + 1) / 2;
        // rank k is either positive (adds k) or negative (adds 0)
        for s in (k..=top).rev() {
            c[s] += c[s - k];
        }
    }
    c
}

/// Exact p-value; `t_plus` is integral because there are no ties.
fn exact_p(n: usize, t_plus: f64, alt: Alternative) -> f64 {
    let c = null_counts(n);
    let total = 2f64.powi(n as i32);
    let t = (t_plus.round().max(0.0) as usize).min(c.len() - 1);
    let less = c[..=t].iter().sum::<f64>() / total;
    let greater = c[t..].iter().sum::<f64>() / total;
    match alt {
        Alternative::Less => less,
        Alternative::Greater => greater,
        Alternative::TwoSided => (2.0 * less.min(greater)).min(1.0),
    }
}

/// Normal approximation with tie and continuity correction, as scipy: the 0.5 correction
/// moves z toward 0 for two-sided (by sign(z); none when z == 0), and is -0.5 for
/// `Greater`, +0.5 for `Less`.
fn approx_p(n: usize, t_plus: f64, tie_term: f64, alt: Alternative) -> f64 {
    let nf = n as f64;
    let mean = nf * (nf + 1.0) * 0.25;
    let se = ((nf * (nf + 1.0) * (2.0 * nf + 1.0) - tie_term / 2.0) / 24.0).sqrt();
    if se.is_nan() || se <= 0.0 {
        return 1.0;
    }
    let z = (t_plus - mean) / se;
    let sign = match alt {
        Alternative::Greater => 1.0,
        Alternative::Less => -1.0,
        Alternative::TwoSided if z > 0.0 => 1.0,
        Alternative::TwoSided if z < 0.0 => -1.0,
        Alternative::TwoSided => 0.0,
    };
    let z = z - sign * 0.5 / se;
    match alt {
        Alternative::Less => normal::cdf(z),
        Alternative::Greater => normal::sf(z),
        Alternative::TwoSided => 2.0 * normal::sf(z.abs()),
    }
}
