//! Sign test: `scipy.stats.binomtest(k, n, p=0.5, alternative=alt)` with k = #(x_i > mu) and
//! n = #(x_i != mu). Statistic is scipy's `BinomTestResult.statistic` = k/n.

use super::binomial::binom_half_p;
use super::{without_nan, Alternative, TestResult};

/// Sign test of H0: P(x > mu) = 1/2. Ties with mu are dropped; with nothing left the result
/// is p = 1, statistic 0, n = 0. `Greater` means x tends to exceed mu.
pub fn sign_test(x: &[f64], mu: f64, alt: Alternative) -> TestResult {
    let d: Vec<f64> = without_nan(x).iter().map(|v| v - mu).collect();
    let pos = d.iter().filter(|v| **v > 0.0).count();
    let neg = d.iter().filter(|v| **v < 0.0).count();
    let n = pos + neg;
    if n == 0 {
        return TestResult {
            test: "sign",
            method: "exact",
            statistic: 0.0,
            p_value: 1.0,
            n: 0,
            effect_size: 0.0,
        };
    }
    TestResult {
        test: "sign",
        method: "exact",
        statistic: pos as f64 / n as f64,
        p_value: binom_half_p(pos as u64, n as u64, alt),
        n,
        effect_size: (pos as f64 - neg as f64) / n as f64,
    }
}
