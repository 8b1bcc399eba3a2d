//! Binomial tails for the sign test and the Clopper-Pearson interval (statrs).

use statrs::distribution::{Beta, Binomial, ContinuousCDF, DiscreteCDF};

use super::{wilcoxon::clamp_p, Alternative, Interval};

/// p-value of `scipy.stats.binomtest(k, n, 0.5, alternative)`. For p = 1/2 the distribution is
/// symmetric, so scipy's two-sided rule (sum of outcomes no likelier than k) is
/// P(X <= min(k, n-k)) + P(X >= max(k, n-k)), and 1 when k = n/2.
pub(crate) fn binom_half_p(k: u64, n: u64, alt: Alternative) -> f64 {
    let Ok(b) = Binomial::new(0.5, n) else {
        return 1.0;
    };
    let k = k.min(n);
    let p = match alt {
        Alternative::Less => b.cdf(k),
        Alternative::Greater if k == 0 => 1.0,
        Alternative::Greater => b.sf(k - 1),
        Alternative::TwoSided if 2 * k == n => 1.0,
        Alternative::TwoSided => {
            let lo = k.min(n - k);
            b.cdf(lo) + b.sf(n - lo - 1)
        }
    };
    clamp_p(p)
}

/// Clopper-Pearson exact two-sided interval for k successes in n trials
/// (= `scipy.stats.binomtest(k, n).proportion_ci(level, method="exact")`):
/// low = Beta(k, n-k+1).ppf(a/2), high = Beta(k+1, n-k).ppf(1-a/2), a = 1 - level;
/// low = 0 when k = 0, high = 1 when k = n. k > n is clamped to n; n = 0 gives [0, 1];
/// a level outside (0, 1) gives NaN bounds. `method` is "clopper-pearson".
pub fn clopper_pearson(k: u64, n: u64, level: f64) -> Interval {
    let mut out = Interval {
        low: f64::NAN,
        high: f64::NAN,
        level,
        method: "clopper-pearson",
    };
    if !(level > 0.0 && level < 1.0) {
        return out;
    }
    let k = k.min(n);
    let alpha = (1.0 - level) / 2.0;
    let (kf, nf) = (k as f64, n as f64);
    out.low = if k == 0 {
        0.0
    } else {
        beta_ppf(kf, nf - kf + 1.0, alpha)
    };
    out.high = if k == n {
        1.0
    } else {
        beta_ppf(kf + 1.0, nf - kf, 1.0 - alpha)
    };
    out
}

fn beta_ppf(a: f64, b: f64, p: f64) -> f64 {
    Beta::new(a, b).map_or(f64::NAN, |d| d.inverse_cdf(p))
}
