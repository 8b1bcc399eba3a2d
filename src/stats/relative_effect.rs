//! Distribution-free bound for the two-sample relative effect
//! theta = P(X > Y) + P(X = Y)/2 (X: the audited group, Y: the reference group), and for the
//! rank-biserial correlation r = 2 theta - 1.
//!
//! Estimate: theta_hat = U1/(n1 n2) with U1 from average ranks (= `scipy.stats.mannwhitneyu(x,
//! y).statistic / (n1 n2)`; 2 theta_hat - 1 is [`rank_biserial`](super::rank_biserial)),
//! O((n1 + n2) log(n1 + n2)).
//!
//! Hoeffding's inequality for two-sample U-statistics with a kernel in [0, 1] (Hoeffding 1963,
//! JASA 58:13-30, section 5): P(theta_hat - theta >= t) <= exp(-2 k t^2) with k = min(n1, n2),
//! and the same for the lower tail. It holds for every n and every level with no assumption on
//! the distributions (ties included), and is conservative.
//! - PASS claim r > r0 (theta > theta0 = (1 + r0)/2):
//!   p_good = exp(-2k (theta_hat - theta0)^2) if theta_hat > theta0, else 1.
//! - FAIL claim r < r0: p_bad = exp(-2k (theta0 - theta_hat)^2) if theta_hat < theta0, else 1.
//!
//! The bounds at level a are r_low = 2 (theta_hat - sqrt(ln(1/a)/(2k))) - 1 and
//! r_high = 2 (theta_hat + sqrt(ln(1/a)/(2k))) - 1, clamped to [-1, 1]; see [`effect_bound`]
//! for how they are pinned down in floating point so that the duality is exact.

use super::{from_order_key, order_key, ranks, without_nan};

/// Outcome of [`effect_test`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EffectTest {
    /// Size of the audited group x (NaN excluded).
    pub n1: usize,
    /// Size of the reference group y (NaN excluded).
    pub n2: usize,
    /// The claims' threshold on r.
    pub r0: f64,
    /// The same threshold on theta: (1 + r0)/2.
    pub theta0: f64,
    /// theta_hat = U1/(n1 n2); 0.5 when a group is empty.
    pub theta: f64,
    /// Rank-biserial correlation 2 theta_hat - 1.
    pub r: f64,
    /// p-value of the PASS claim r > r0 (Hoeffding).
    pub p_good: f64,
    /// p-value of the FAIL claim r < r0 (Hoeffding).
    pub p_bad: f64,
}

/// Relative-effect test of x against y for the threshold `r0` on r (see the module docs).
/// An empty group gives theta = 0.5 and p_good = p_bad = 1; `r0` outside [-1, 1] or NaN
/// decides nothing (p_good = p_bad = 1).
pub fn effect_test(x: &[f64], y: &[f64], r0: f64) -> EffectTest {
    let (x, y) = (without_nan(x), without_nan(y));
    let (n1, n2) = (x.len(), y.len());
    let theta = theta_hat(&x, &y);
    let k = n1.min(n2);
    let (p_good, p_bad) = if (-1.0..=1.0).contains(&r0) {
        (p_pass(theta, k, r0), p_fail(theta, k, r0))
    } else {
        (1.0, 1.0)
    };
    EffectTest {
        n1,
        n2,
        r0,
        theta0: (1.0 + r0) * 0.5,
        theta,
        r: 2.0 * theta - 1.0,
        p_good,
        p_bad,
    }
}

/// Bound on r at one-sided level `a` for the PASS claim (`pass = true`: the lower bound r_low)
/// or the FAIL claim (the upper bound r_high) of `test`. NaN for `a` outside (0, 1).
///
/// Mathematically r_low = 2 (theta_hat - sqrt(ln(1/a)/(2k))) - 1 clamped to [-1, 1] (and r_high
/// mirrored). To make the duality hold bit for bit, the value returned is the floating-point
/// boundary of the p-value itself (found by bisection over the floats of [-1, 1], within
/// rounding of the closed form): r_low = the smallest r in [-1, 1] whose PASS p-value exceeds
/// a, r_high = the largest r in [-1, 1] whose FAIL p-value exceeds a. So for every r0 in
/// [-1, 1] (strict comparisons):
/// `p_good <= a` iff `r_low > r0`, and `p_bad <= a` iff `r_high < r0`.
/// (This relies on `f64::exp` being monotone, as libm's is.) With an empty group the bounds
/// are -1 and 1.
pub fn effect_bound(test: &EffectTest, pass: bool, a: f64) -> f64 {
    if !(a > 0.0 && a < 1.0) || test.theta.is_nan() {
        return f64::NAN;
    }
    let (theta, k) = (test.theta, test.n1.min(test.n2));
    // + 0.0 turns a -0.0 boundary into 0.0
    if pass {
        // p_pass is non-decreasing in r and p_pass(1) = 1 > a
        first_true(|r| p_pass(theta, k, r) > a) + 0.0
    } else {
        // p_fail is non-increasing in r and p_fail(-1) = 1 > a
        last_true(|r| p_fail(theta, k, r) > a) + 0.0
    }
}

/// U1/(n1 n2) with average ranks; 0.5 when a group is empty.
fn theta_hat(x: &[f64], y: &[f64]) -> f64 {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return 0.5;
    }
    let pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    let r = ranks::rank_average(&pooled);
    let f1 = n1 as f64;
    let u1 = r[..n1].iter().sum::<f64>() - f1 * (f1 + 1.0) / 2.0;
    u1 / (f1 * n2 as f64)
}

/// PASS p-value for threshold r0: exp(-2k (theta - theta0)^2) if theta > theta0, else 1.
/// Non-decreasing in r0 (every step is a monotone floating-point operation).
fn p_pass(theta: f64, k: usize, r0: f64) -> f64 {
    let theta0 = (1.0 + r0) * 0.5;
    if theta > theta0 {
        let d = theta - theta0;
        (-(2.0 * k as f64) * (d * d)).exp()
    } else {
        1.0
    }
}

/// FAIL p-value for threshold r0: exp(-2k (theta0 - theta)^2) if theta < theta0, else 1.
/// Non-increasing in r0.
fn p_fail(theta: f64, k: usize, r0: f64) -> f64 {
    let theta0 = (1.0 + r0) * 0.5;
    if theta < theta0 {
        let d = theta0 - theta;
        (-(2.0 * k as f64) * (d * d)).exp()
    } else {
        1.0
    }
}

/// Smallest float r in [-1, 1] with `pred(r)`, for `pred` false then true and `pred(1)` true.
fn first_true(pred: impl Fn(f64) -> bool) -> f64 {
    if pred(-1.0) {
        return -1.0;
    }
    // invariant: !pred(lo), pred(hi)
    let (mut lo, mut hi) = (order_key(-1.0), order_key(1.0));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if pred(from_order_key(mid)) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    from_order_key(hi)
}

/// Largest float r in [-1, 1] with `pred(r)`, for `pred` true then false and `pred(-1)` true.
fn last_true(pred: impl Fn(f64) -> bool) -> f64 {
    if pred(1.0) {
        return 1.0;
    }
    // invariant: pred(lo), !pred(hi)
    let (mut lo, mut hi) = (order_key(-1.0), order_key(1.0));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if pred(from_order_key(mid)) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    from_order_key(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed_form(t: &EffectTest, pass: bool, a: f64) -> f64 {
        let m = ((1.0 / a).ln() / (2.0 * t.n1.min(t.n2) as f64)).sqrt();
        let th = if pass { t.theta - m } else { t.theta + m };
        (2.0 * th - 1.0).clamp(-1.0, 1.0)
    }

    #[test]
    fn theta_matches_rank_biserial_and_definition() {
        let x: Vec<f64> = (0..40)
            .map(|i| ((i as f64 * 0.37).sin() * 4.0).round() / 4.0)
            .collect();
        let y: Vec<f64> = (0..27)
            .map(|i| ((i as f64 * 0.91).cos() * 4.0).round() / 4.0)
            .collect();
        let t = effect_test(&x, &y, 0.0);
        assert_eq!(t.r, super::super::rank_biserial(&x, &y));
        let mut s = 0.0;
        for a in &x {
            for b in &y {
                s += if a > b {
                    1.0
                } else if a == b {
                    0.5
                } else {
                    0.0
                };
            }
        }
        assert!((t.theta - s / (40.0 * 27.0)).abs() < 1e-14);
    }

    #[test]
    fn p_values_and_bounds_by_hand() {
        // x all above y: theta = 1, k = 5
        let x = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0];
        let y = [1.0, 2.0, 3.0, 4.0, 5.0];
        let t = effect_test(&x, &y, 0.2);
        assert_eq!((t.theta, t.r, t.p_bad), (1.0, 1.0, 1.0));
        // theta0 = 0.6: exp(-2 * 5 * 0.4^2) = exp(-1.6)
        assert!((t.p_good - (-1.6f64).exp()).abs() < 1e-15);
        for a in [0.01, 0.05, 0.2, 0.5] {
            for pass in [true, false] {
                let (b, c) = (effect_bound(&t, pass, a), closed_form(&t, pass, a));
                assert!((b - c).abs() < 1e-12, "a={a} pass={pass}: {b} vs {c}");
            }
        }
        assert!(effect_bound(&t, true, 0.0).is_nan() && effect_bound(&t, true, 1.0).is_nan());
    }

    #[test]
    fn degenerate_inputs() {
        let e = effect_test(&[], &[1.0], 0.0);
        assert_eq!((e.theta, e.r, e.p_good, e.p_bad), (0.5, 0.0, 1.0, 1.0));
        assert_eq!(effect_bound(&e, true, 0.05), -1.0);
        assert_eq!(effect_bound(&e, false, 0.05), 1.0);
        let out = effect_test(&[3.0, 4.0], &[1.0, 2.0], 1.5);
        assert_eq!((out.p_good, out.p_bad), (1.0, 1.0));
        let tied = effect_test(&[2.0; 4], &[2.0; 7], 0.0);
        assert_eq!((tied.theta, tied.p_good, tied.p_bad), (0.5, 1.0, 1.0));
    }
}
