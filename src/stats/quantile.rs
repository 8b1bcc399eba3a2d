//! Exact distribution-free quantile test (generalised sign test) and the order-statistic
//! confidence bound that is exactly dual to it (Hahn & Meeker, *Statistical Intervals*, ch. 5).
//!
//! Setting: values x_1..x_n, a threshold `tau`, a share `q` in (0, 1) and the good side.
//! - PASS claim: P(X on the good side of tau) > q. For [`Good::Lower`] the good side is x < tau,
//!   so the claim is "the q-quantile is below tau" (q = 0.5: "the median is below tau"); for
//!   [`Good::Higher`] it is x > tau: "the (1-q)-quantile is above tau".
//! - FAIL claim: P(X on the bad side of tau) > 1 - q.
//!
//! Values equal to tau count on neither side, which is conservative for both claims.
//! With good = #{x strictly on the good side} and bad = #{x strictly on the bad side}:
//! p_good = P(Bin(n, q) >= good), p_bad = P(Bin(n, 1 - q) >= bad) (exact binomial tails;
//! p_good equals `scipy.stats.binomtest(good, n, q, alternative="greater").pvalue`).

use super::{normal, smallest_k_at_most, without_nan, Good};

/// Outcome of [`quantile_test`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct QuantileTest {
    /// Observations used (NaN excluded), good + bad + ties.
    pub n: usize,
    /// Observations strictly on the good side of tau.
    pub good: usize,
    /// Observations strictly on the bad side of tau.
    pub bad: usize,
    /// Observations equal to tau (on neither side).
    pub ties: usize,
    /// The share of the claims.
    pub q: f64,
    /// p-value of the PASS claim P(good side) > q: P(Bin(n, q) >= good).
    pub p_good: f64,
    /// p-value of the FAIL claim P(bad side) > 1 - q: P(Bin(n, 1 - q) >= bad).
    pub p_bad: f64,
}

/// Quantile test of `x` against `tau` (see the module docs), O(n).
/// `q` outside (0, 1) or NaN decides nothing: p_good = p_bad = 1 (the counts are still given).
pub fn quantile_test(x: &[f64], tau: f64, q: f64, good: Good) -> QuantileTest {
    let x = without_nan(x);
    let below = x.iter().filter(|v| **v < tau).count();
    let above = x.iter().filter(|v| **v > tau).count();
    let (n_good, n_bad) = match good {
        Good::Lower => (below, above),
        Good::Higher => (above, below),
    };
    let n = x.len();
    let (p_good, p_bad) = if q > 0.0 && q < 1.0 {
        (
            binom_sf(n_good as u64, n as u64, q),
            binom_sf(n_bad as u64, n as u64, 1.0 - q),
        )
    } else {
        (1.0, 1.0)
    };
    QuantileTest {
        n,
        good: n_good,
        bad: n_bad,
        ties: n - n_good - n_bad,
        q,
        p_good,
        p_bad,
    }
}

/// One-sided order-statistic bound at level `a` used by the PASS claim (`pass = true`) or the
/// FAIL claim of [`quantile_test`] with the same `x`, `q` and `good`.
///
/// With p = q (PASS) or p = 1 - q (FAIL), k = the smallest k in 1..=n with
/// P(Bin(n, p) >= k) <= a. The bound is:
/// - PASS, `Lower`: the k-th smallest value, an upper (1 - a) confidence bound of the q-quantile;
/// - PASS, `Higher`: the k-th largest value, a lower bound of the (1 - q)-quantile;
/// - FAIL, `Lower`: the k-th largest value, a lower bound of the q-quantile;
/// - FAIL, `Higher`: the k-th smallest value, an upper bound of the (1 - q)-quantile.
///
/// Exact duality (ties included): for every tau, `p_good <= a` iff the PASS bound exists and
/// lies strictly on the good side of tau, and `p_bad <= a` iff the FAIL bound exists and lies
/// strictly on the bad side. (k-th smallest < tau iff #{x < tau} >= k, and the tail is the
/// same non-increasing [`binom_sf`] as the p-values.)
///
/// `None` when no k exists (n too small for level a: P(Bin(n, p) >= n) = p^n > a), for empty
/// input, or for `q` outside (0, 1) or `a` outside (0, 1). O(n).
pub fn quantile_bound(x: &[f64], q: f64, good: Good, pass: bool, a: f64) -> Option<f64> {
    if !(q > 0.0 && q < 1.0 && a > 0.0 && a < 1.0) {
        return None;
    }
    let mut x = without_nan(x);
    let n = x.len();
    let p = if pass { q } else { 1.0 - q };
    let tails = upper_tails(n as u64, p);
    let k = smallest_k_at_most(n as u64, a, |k| tails[k as usize])? as usize;
    // PASS/Lower and FAIL/Higher bound from below the data: k-th smallest
    let idx = if (good == Good::Lower) == pass {
        k - 1
    } else {
        n - k
    };
    Some(*x.select_nth_unstable_by(idx, f64::total_cmp).1)
}

/// P(Bin(n, p) >= k), the exact binomial upper tail (= `scipy.stats.binom.sf(k - 1, n, p)`).
/// 1 for k = 0, 0 for k > n; NaN for p outside [0, 1].
///
/// Computed by summing the pmf from the top: pmf ratios from the mode (pmf(j+1)/pmf(j) =
/// (n-j)/(j+1) p/(1-p)), accumulated from j = n down and normalised by the total. Small upper
/// tails keep ~1e-14 relative accuracy (n up to 1e5; tails below ~1e-300 underflow to 0), and
/// the result is non-increasing in k bit for bit, which the bounds' exact duality relies on.
/// (statrs' `Binomial::sf`, a continued fraction, agrees to ~1e-11 relative but is not
/// monotone by construction.) O(n) time and memory.
pub fn binom_sf(k: u64, n: u64, p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    upper_tails(n, p)[k as usize]
}

/// t[k] = P(Bin(n, p) >= k) for k = 0..=n+1 (see [`binom_sf`]); p must be in [0, 1].
fn upper_tails(n: u64, p: f64) -> Vec<f64> {
    let nu = n as usize;
    let mut t = vec![0.0; nu + 2];
    t[0] = 1.0;
    if p <= 0.0 {
        return t;
    }
    if p >= 1.0 {
        t[..=nu].fill(1.0);
        return t;
    }
    let nf = n as f64;
    // unnormalised pmf, 1 at the mode floor((n+1) p), so nothing overflows
    let mode = (((nf + 1.0) * p).floor() as usize).min(nu);
    let mut w = vec![0.0; nu + 1];
    w[mode] = 1.0;
    let odds = p / (1.0 - p);
    for j in mode + 1..=nu {
        w[j] = w[j - 1] * ((nf - j as f64 + 1.0) / j as f64 * odds);
    }
    for j in (0..mode).rev() {
        w[j] = w[j + 1] * ((j as f64 + 1.0) / (nf - j as f64) / odds);
    }
    for j in (0..=nu).rev() {
        t[j] = t[j + 1] + w[j];
    }
    let total = t[0];
    for v in &mut t {
        *v = (*v / total).min(1.0);
    }
    t[0] = 1.0;
    t
}

/// Images needed (normal approximation) for the one-sided binomial test of H0: p <= p0 at
/// level `a` to reach `power` when the true share is `p_hat`:
/// n = ((z_{1-a} sqrt(p0 (1-p0)) + z_power sqrt(p_hat (1-p_hat))) / (p_hat - p0))^2,
/// unrounded (round up for a count). `None` unless 0 <= p0 < p_hat <= 1 and a, power are in
/// (0, 1). When the numerator is negative (power well below 1/2) the result is 0.
pub fn images_to_decide(p_hat: f64, p0: f64, a: f64, power: f64) -> Option<f64> {
    let ok = (0.0..1.0).contains(&p0)
        && p_hat > p0
        && p_hat <= 1.0
        && a > 0.0
        && a < 1.0
        && power > 0.0
        && power < 1.0;
    if !ok {
        return None;
    }
    let num = normal::ppf(1.0 - a) * (p0 * (1.0 - p0)).sqrt()
        + normal::ppf(power) * (p_hat * (1.0 - p_hat)).sqrt();
    let n = num.max(0.0) / (p_hat - p0);
    Some(n * n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::{Binomial, DiscreteCDF};

    #[test]
    fn binom_sf_edges() {
        assert_eq!(binom_sf(0, 10, 0.3), 1.0);
        assert_eq!(binom_sf(0, 0, 0.3), 1.0);
        assert_eq!(binom_sf(1, 0, 0.3), 0.0);
        assert_eq!(binom_sf(11, 10, 0.3), 0.0);
        assert!((binom_sf(10, 10, 0.5) / 0.5f64.powi(10) - 1.0).abs() < 1e-15);
        assert_eq!(binom_sf(1, 10, 0.0), 0.0);
        assert_eq!(binom_sf(10, 10, 1.0), 1.0);
        assert!(binom_sf(3, 10, 1.5).is_nan() && binom_sf(3, 10, f64::NAN).is_nan());
        // P(X >= 1) = 1 - (1-p)^n
        let want = 1.0 - 0.9f64.powi(20);
        assert!((binom_sf(1, 20, 0.1) - want).abs() < 1e-15);
    }

    /// Against statrs' continued fraction (accurate to ~1e-11 relative at these n).
    #[test]
    fn binom_sf_agrees_with_statrs() {
        for n in [1u64, 2, 7, 30, 101, 500, 2000] {
            for p in [0.01, 0.05, 0.3, 0.5, 0.77, 0.95, 0.999] {
                let b = Binomial::new(p, n).unwrap();
                let t = upper_tails(n, p);
                for k in 1..=n {
                    let (got, want) = (t[k as usize], b.sf(k - 1));
                    assert!(
                        (got - want).abs() <= 1e-10 * want + 1e-300,
                        "n={n} p={p} k={k}: {got:e} vs statrs {want:e}"
                    );
                }
            }
        }
    }

    #[test]
    fn tail_is_monotone_and_in_unit_interval() {
        for n in [0u64, 1, 5, 64, 999] {
            for p in [1e-9, 0.02, 0.5, 0.9, 1.0 - 1e-9] {
                let t = upper_tails(n, p);
                assert_eq!(t.len(), n as usize + 2);
                assert_eq!((t[0], t[n as usize + 1]), (1.0, 0.0));
                assert!(t.windows(2).all(|w| w[0] >= w[1] && w[1] >= 0.0));
            }
        }
    }

    #[test]
    fn counts_and_p_values_by_hand() {
        let x = [1.0, 2.0, 3.0, 3.0, 4.0, 5.0, f64::INFINITY];
        let t = quantile_test(&x, 3.0, 0.5, Good::Lower);
        assert_eq!((t.n, t.good, t.bad, t.ties), (7, 2, 3, 2));
        assert!((t.p_good - binom_sf(2, 7, 0.5)).abs() == 0.0);
        let h = quantile_test(&x, 3.0, 0.25, Good::Higher);
        assert_eq!((h.good, h.bad, h.ties), (3, 2, 2));
        // P(Bin(7, 0.25) >= 3), P(Bin(7, 0.75) >= 2)
        let want_good: f64 = (3..=7).map(|j| pmf(7, j, 0.25)).sum();
        let want_bad: f64 = (2..=7).map(|j| pmf(7, j, 0.75)).sum();
        assert!((h.p_good - want_good).abs() < 1e-15);
        assert!((h.p_bad - want_bad).abs() < 1e-15);
    }

    fn pmf(n: u64, k: u64, p: f64) -> f64 {
        let c: f64 = (0..k).map(|i| (n - i) as f64 / (i + 1) as f64).product();
        c * p.powi(k as i32) * (1.0 - p).powi((n - k) as i32)
    }

    #[test]
    fn bound_is_the_textbook_order_statistic() {
        // n = 20, q = 0.5, a = 0.05: P(Bin(20, .5) >= 15) = 0.0207, >= 14: 0.0577, so k = 15
        let x: Vec<f64> = (1..=20).map(f64::from).rev().collect();
        assert_eq!(quantile_bound(&x, 0.5, Good::Lower, true, 0.05), Some(15.0));
        assert_eq!(quantile_bound(&x, 0.5, Good::Higher, true, 0.05), Some(6.0));
        assert_eq!(quantile_bound(&x, 0.5, Good::Lower, false, 0.05), Some(6.0));
        assert_eq!(
            quantile_bound(&x, 0.5, Good::Higher, false, 0.05),
            Some(15.0)
        );
        // n = 4: P(Bin(4, .5) >= 4) = 1/16 > 0.05
        assert_eq!(
            quantile_bound(&[1.0, 2.0, 3.0, 4.0], 0.5, Good::Lower, true, 0.05),
            None
        );
        assert_eq!(quantile_bound(&[], 0.5, Good::Lower, true, 0.05), None);
        assert_eq!(quantile_bound(&x, 0.0, Good::Lower, true, 0.05), None);
        assert_eq!(quantile_bound(&x, 0.5, Good::Lower, true, 1.0), None);
    }

    #[test]
    fn degenerate_inputs() {
        let e = quantile_test(&[], 0.0, 0.5, Good::Lower);
        assert_eq!((e.n, e.p_good, e.p_bad), (0, 1.0, 1.0));
        let bad_q = quantile_test(&[1.0, 2.0], 5.0, 1.0, Good::Lower);
        assert_eq!((bad_q.good, bad_q.p_good, bad_q.p_bad), (2, 1.0, 1.0));
        let nan_tau = quantile_test(&[1.0, 2.0], f64::NAN, 0.5, Good::Lower);
        assert_eq!((nan_tau.ties, nan_tau.p_good, nan_tau.p_bad), (2, 1.0, 1.0));
    }

    #[test]
    fn images_to_decide_matches_formula() {
        let n = images_to_decide(0.7, 0.5, 0.05, 0.8).unwrap();
        // z_.95 = 1.6448536269514722, z_.8 = 0.8416212335729143
        let direct =
            ((1.6448536269514722 * 0.5 + 0.8416212335729143 * 0.21f64.sqrt()) / 0.2).powi(2);
        assert!((n - direct).abs() < 1e-9, "{n} vs {direct}");
        assert_eq!(n.ceil(), 37.0);
        assert_eq!(images_to_decide(0.5, 0.5, 0.05, 0.8), None);
        assert_eq!(images_to_decide(0.4, 0.5, 0.05, 0.8), None);
        assert_eq!(images_to_decide(0.7, 0.5, 0.0, 0.8), None);
        assert_eq!(images_to_decide(0.7, 0.5, 0.05, f64::NAN), None);
        // smaller effect, more images; more power, more images
        assert!(images_to_decide(0.6, 0.5, 0.05, 0.8).unwrap() > n);
        assert!(images_to_decide(0.7, 0.5, 0.05, 0.9).unwrap() > n);
    }
}
