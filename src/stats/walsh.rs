//! Wilcoxon signed-rank test written through Walsh averages, with the exactly dual
//! Hodges-Lehmann-type bound on the pseudo-median.
//!
//! Walsh averages: A_ij = (x_i + x_j)/2 for i <= j, N = n(n+1)/2 of them (computed as
//! `0.5 * x_i + 0.5 * x_j`, the same value as numpy's `(x_i + x_j) / 2` for finite data; the
//! average of +inf and -inf is taken as 0). For data without ties the signed-rank statistic
//! T+ (sum of the ranks of the positive x_i - tau) equals #{A_ij > tau} (Tukey's identity),
//! so with counts over Walsh averages (for [`Good::Lower`]: good = #{A < tau},
//! bad = #{A > tau}; [`Good::Higher`] mirrored; A == tau counts on neither side):
//! p_good = P(T >= good), p_bad = P(T >= bad), T with the null distribution of the
//! signed-rank statistic for n (symmetric on 0..=N).
//!
//! For tie-free data `Good::Higher` gives p_good =
//! `scipy.stats.wilcoxon(x - tau, alternative="greater", method="exact").pvalue` and p_bad the
//! same with `alternative="less"`. With ties or zeros among x - tau the p-values are not
//! scipy's (which then uses mid-ranks and a tie-corrected normal approximation): they are the
//! ones exactly dual to the Walsh-average bound.
//!
//! The null tail is exact (dynamic programming in f64 probabilities) for n <= 400; for larger
//! n it is the normal approximation with continuity correction, mean N/2, variance
//! n(n+1)(2n+1)/24: P(T >= k) ~ sf((k - 0.5 - N/2)/sd), which is scipy's
//! `method="asymptotic", correction=True` without tie correction.

use super::{from_order_key, normal, order_key, smallest_k_at_most, without_nan, Good};

/// Largest n for which the null tail is exact.
const EXACT_MAX_N: usize = 400;
/// Largest N for which the k-th Walsh average is found by materialising all of them.
const MATERIALIZE_MAX: u64 = 2_000_000;

/// Outcome of [`walsh_test`]. Counts are over the N = n(n+1)/2 Walsh averages.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct WalshTest {
    /// Observations used (NaN excluded).
    pub n: usize,
    /// Number of Walsh averages, n(n+1)/2 = good + bad + ties.
    pub walsh: usize,
    /// Walsh averages strictly on the good side of tau.
    pub good: usize,
    /// Walsh averages strictly on the bad side of tau.
    pub bad: usize,
    /// Walsh averages equal to tau.
    pub ties: usize,
    /// p-value of the PASS claim (the pseudo-median is on the good side): P(T >= good).
    pub p_good: f64,
    /// p-value of the FAIL claim (the pseudo-median is on the bad side): P(T >= bad).
    pub p_bad: f64,
    /// `"exact"` (n <= 400) or `"normal-approx"`.
    pub method: &'static str,
}

/// Signed-rank test of `x` against `tau` through Walsh averages (see the module docs).
/// O(n log n) for the counts plus O(n^3) (n <= 400: a few ms) for the exact null tail.
/// Empty input or NaN `tau` gives p_good = p_bad = 1.
pub fn walsh_test(x: &[f64], tau: f64, good: Good) -> WalshTest {
    walsh_test_with(x, tau, good, EXACT_MAX_N)
}

/// One-sided bound on the pseudo-median at level `a` for the PASS claim (`pass = true`) or the
/// FAIL claim of [`walsh_test`] with the same `x` and `good`.
///
/// k = the smallest k in 1..=N with P(T >= k) <= a. PASS, `Lower`: the k-th smallest Walsh
/// average (an upper (1 - a) bound of the pseudo-median); PASS, `Higher`: the k-th largest
/// (a lower bound); FAIL mirrored (`Lower`: k-th largest, `Higher`: k-th smallest).
///
/// Exact duality (ties included): `p_good <= a` iff the PASS bound exists and lies strictly on
/// the good side of tau, and `p_bad <= a` iff the FAIL bound exists and lies strictly on the
/// bad side, because the counts and the bound use the same Walsh values and the same tail
/// (non-increasing bit for bit on the exact path; on the normal path consecutive k differ by
/// 1/sd in z, far above the rounding of the normal sf).
/// `None` when no k exists (P(T >= N) = 2^-n > a), for empty input, or for `a` outside (0, 1).
pub fn walsh_bound(x: &[f64], good: Good, pass: bool, a: f64) -> Option<f64> {
    walsh_bound_with(x, good, pass, a, EXACT_MAX_N, MATERIALIZE_MAX)
}

/// Hodges-Lehmann estimate of the pseudo-median: the median of the Walsh averages (mean of
/// the two middle ones when N is even). NaN for empty input.
pub fn hodges_lehmann(x: &[f64]) -> f64 {
    hodges_lehmann_with(x, MATERIALIZE_MAX)
}

/// P(T >= k) for the signed-rank statistic T of n observations under H0, as used by
/// [`walsh_test`]: exact for n <= 400, normal approximation beyond. 1 for k = 0, 0 for k > N.
pub fn signed_rank_sf(k: u64, n: usize) -> f64 {
    NullTail::new(n, EXACT_MAX_N).sf(k)
}

pub(crate) fn walsh_test_with(x: &[f64], tau: f64, good: Good, exact_max_n: usize) -> WalshTest {
    let s = sorted(x);
    let n = s.len();
    let total = pairs(n);
    let below = count_walsh(&s, |w| w < tau);
    // a NaN tau is on neither side of anything
    let above = if tau.is_nan() {
        0
    } else {
        total - count_walsh(&s, |w| w <= tau)
    };
    let (n_good, n_bad) = match good {
        Good::Lower => (below, above),
        Good::Higher => (above, below),
    };
    let tail = NullTail::new(n, exact_max_n);
    WalshTest {
        n,
        walsh: total as usize,
        good: n_good as usize,
        bad: n_bad as usize,
        ties: (total - n_good - n_bad) as usize,
        p_good: tail.sf(n_good),
        p_bad: tail.sf(n_bad),
        method: tail.method(),
    }
}

pub(crate) fn walsh_bound_with(
    x: &[f64],
    good: Good,
    pass: bool,
    a: f64,
    exact_max_n: usize,
    materialize_max: u64,
) -> Option<f64> {
    if !(a > 0.0 && a < 1.0) {
        return None;
    }
    let s = sorted(x);
    let total = pairs(s.len());
    let tail = NullTail::new(s.len(), exact_max_n);
    let k = smallest_k_at_most(total, a, |k| tail.sf(k))?;
    let rank = if (good == Good::Lower) == pass {
        k
    } else {
        total + 1 - k
    };
    Some(kth_walsh(&s, rank, materialize_max))
}

pub(crate) fn hodges_lehmann_with(x: &[f64], materialize_max: u64) -> f64 {
    let s = sorted(x);
    let total = pairs(s.len());
    if total == 0 {
        return f64::NAN;
    }
    let mid = total.div_ceil(2);
    if total % 2 == 1 {
        return kth_walsh(&s, mid, materialize_max);
    }
    if total <= materialize_max {
        let mut w = all_walsh(&s);
        let (_, lo, right) = w.select_nth_unstable_by(mid as usize - 1, f64::total_cmp);
        let hi = right.iter().copied().fold(f64::INFINITY, f64::min);
        walsh(*lo, hi)
    } else {
        walsh(
            kth_walsh(&s, mid, materialize_max),
            kth_walsh(&s, mid + 1, materialize_max),
        )
    }
}

fn sorted(x: &[f64]) -> Vec<f64> {
    let mut s = without_nan(x);
    s.sort_by(f64::total_cmp);
    s
}

fn pairs(n: usize) -> u64 {
    let n = n as u64;
    n * (n + 1) / 2
}

/// The Walsh average of a and b; non-decreasing in each argument, never NaN for non-NaN input.
fn walsh(a: f64, b: f64) -> f64 {
    let w = 0.5 * a + 0.5 * b;
    if w.is_nan() {
        0.0
    } else {
        w
    }
}

fn all_walsh(s: &[f64]) -> Vec<f64> {
    let mut w = Vec::with_capacity(pairs(s.len()) as usize);
    for (i, a) in s.iter().enumerate() {
        w.extend(s[i..].iter().map(|b| walsh(*a, *b)));
    }
    w
}

/// Number of Walsh averages of the sorted `s` for which `below` holds; `below` must hold on an
/// initial segment of the values (like `w < v`). Two pointers, O(n).
fn count_walsh(s: &[f64], below: impl Fn(f64) -> bool) -> u64 {
    let mut end = s.len(); // for the current i, exactly the j in i..end satisfy `below`
    let mut count = 0;
    for i in 0..s.len() {
        while end > i && !below(walsh(s[i], s[end - 1])) {
            end -= 1;
        }
        if end <= i {
            break;
        }
        count += (end - i) as u64;
    }
    count
}

/// The k-th smallest (1-based, 1 <= k <= N) Walsh average of the sorted, non-empty `s`.
/// Materialises all N when N <= `materialize_max`; otherwise bisects on the value (in
/// `total_cmp` order, at most 64 steps) with the O(n) count of averages <= v, then snaps to
/// the smallest Walsh average >= the value found. O(n) memory on that path.
fn kth_walsh(s: &[f64], k: u64, materialize_max: u64) -> f64 {
    if pairs(s.len()) <= materialize_max {
        let mut w = all_walsh(s);
        return *w.select_nth_unstable_by(k as usize - 1, f64::total_cmp).1;
    }
    let n = s.len();
    let (min, max) = (walsh(s[0], s[0]), walsh(s[n - 1], s[n - 1]));
    if count_walsh(s, |w| w <= min) >= k {
        return min;
    }
    // invariant: count(<= lo) < k <= count(<= hi)
    let (mut lo, mut hi) = (order_key(min), order_key(max));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let v = from_order_key(mid);
        if count_walsh(s, |w| w <= v) >= k {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    smallest_walsh_at_least(s, from_order_key(hi))
}

/// The smallest Walsh average >= v of the sorted `s` (+inf if none). Two pointers, O(n).
fn smallest_walsh_at_least(s: &[f64], v: f64) -> f64 {
    let n = s.len();
    let mut best = f64::INFINITY;
    let mut j = n; // first j >= i with walsh(s[i], s[j]) >= v; non-increasing in i
    for i in 0..n {
        j = j.max(i);
        while j > i && walsh(s[i], s[j - 1]) >= v {
            j -= 1;
        }
        if j < n {
            best = best.min(walsh(s[i], s[j]));
        }
    }
    best
}

/// Upper tail P(T >= k) of the null signed-rank statistic for n observations.
enum NullTail {
    /// t[k] for k = 0..=N+1, non-increasing, t[0] = 1, t[N+1] = 0.
    Exact(Vec<f64>),
    Normal {
        total: u64,
        mean: f64,
        sd: f64,
    },
}

impl NullTail {
    fn new(n: usize, exact_max_n: usize) -> Self {
        if n <= exact_max_n {
            return NullTail::Exact(exact_tail(n));
        }
        let nf = n as f64;
        let total = pairs(n);
        NullTail::Normal {
            total,
            mean: total as f64 / 2.0,
            sd: (nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0).sqrt(),
        }
    }

    fn sf(&self, k: u64) -> f64 {
        match self {
            NullTail::Exact(t) => t.get(k as usize).copied().unwrap_or(0.0),
            NullTail::Normal { total, mean, sd } => {
                if k == 0 {
                    1.0
                } else if k > *total {
                    0.0
                } else {
                    normal::sf((k as f64 - 0.5 - mean) / sd)
                }
            }
        }
    }

    fn method(&self) -> &'static str {
        match self {
            NullTail::Exact(_) => "exact",
            NullTail::Normal { .. } => "normal-approx",
        }
    }
}

/// Exact tail by dynamic programming over the ranks 1..=n, each either counted (adds r) or
/// not, with probability 1/2 each: p_r(s) = (p_{r-1}(s) + p_{r-1}(s - r)) / 2. Probabilities
/// (not counts) keep everything in range; the tail is summed from the top, so it is
/// non-increasing bit for bit. About n^3/6 additions (n = 400: ~11 M).
fn exact_tail(n: usize) -> Vec<f64> {
    let total = n * (n + 1) / 2;
    let mut p = vec![0.0; total + 1];
    p[0] = 1.0;
    for r in 1..=n {
        let top = r * (r + 1) / 2;
        for s in (r..=top).rev() {
            p[s] = 0.5 * (p[s] + p[s - r]);
        }
        for v in &mut p[..r.min(top + 1)] {
            *v *= 0.5;
        }
    }
    let mut t = vec![0.0f64; total + 2];
    for s in (0..=total).rev() {
        t[s] = (t[s + 1] + p[s]).min(1.0);
    }
    t[0] = 1.0;
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_walsh(x: &[f64]) -> Vec<f64> {
        let mut w = Vec::new();
        for i in 0..x.len() {
            for j in i..x.len() {
                w.push((x[i] + x[j]) / 2.0);
            }
        }
        w.sort_by(f64::total_cmp);
        w
    }

    #[test]
    fn exact_tail_small_n_by_enumeration() {
        for n in 0..=12usize {
            let total = n * (n + 1) / 2;
            let mut counts = vec![0u64; total + 1];
            for mask in 0u32..(1 << n) {
                let s: usize = (0..n).filter(|r| mask >> r & 1 == 1).map(|r| r + 1).sum();
                counts[s] += 1;
            }
            let t = exact_tail(n);
            for k in 0..=total {
                let want = counts[k..].iter().sum::<u64>() as f64 / 2f64.powi(n as i32);
                assert!((t[k] - want).abs() < 1e-15, "n={n} k={k}");
            }
            assert_eq!(t[total + 1], 0.0);
        }
    }

    #[test]
    fn exact_tail_is_monotone_and_symmetric_at_400() {
        let t = exact_tail(400);
        assert!(t.windows(2).all(|w| w[0] >= w[1]));
        let total = 400 * 401 / 2;
        // P(T >= k) + P(T >= N + 1 - k) = 1 by symmetry
        for k in [1, 5000, 40_100, 70_000] {
            assert!((t[k] + t[total + 1 - k] - 1.0).abs() < 1e-12, "k={k}");
        }
    }

    #[test]
    fn normal_tail_is_close_to_exact_at_n_120() {
        // continuity-corrected normal vs exact: within a few 1e-3 relative for moderate p; the
        // normal tail is heavier (conservative) below p ~ 0.04
        let (exact, approx) = (NullTail::new(120, 400), NullTail::new(120, 0));
        for k in (3630..5500).step_by(50) {
            let (e, a) = (exact.sf(k), approx.sf(k));
            // measured: <= 4e-3 relative for p >= 0.02, 2e-2 at p = 0.01, 0.1 at p = 1e-3
            let tol = if e >= 0.02 { 5e-3 } else { 3e-2 };
            if e >= 0.008 {
                assert!((a - e).abs() <= tol * e, "k={k}: exact {e}, normal {a}");
            }
        }
    }

    #[test]
    fn counts_match_brute_force() {
        let x = [0.5, -1.0, 2.0, 0.5, 3.0, -1.0, 0.0, 1.5];
        let w = brute_walsh(&x);
        for tau in [-2.0, -1.0, -0.25, 0.0, 0.5, 0.75, 1.0, 3.0, 4.0] {
            let t = walsh_test(&x, tau, Good::Lower);
            let lt = w.iter().filter(|v| **v < tau).count();
            let gt = w.iter().filter(|v| **v > tau).count();
            assert_eq!((t.good, t.bad, t.ties, t.walsh), (lt, gt, 36 - lt - gt, 36));
            let h = walsh_test(&x, tau, Good::Higher);
            assert_eq!((h.good, h.bad), (gt, lt));
        }
    }

    #[test]
    fn kth_walsh_paths_agree() {
        let x: Vec<f64> = (0..37)
            .map(|i| {
                ((i * 17 % 11) as f64 - 5.0) * 0.25 + if i % 5 == 0 { 0.0 } else { 1e-3 * i as f64 }
            })
            .collect();
        let s = sorted(&x);
        let w = brute_walsh(&x);
        for k in 1..=w.len() as u64 {
            let (big, small) = (kth_walsh(&s, k, 0), kth_walsh(&s, k, u64::MAX));
            assert_eq!(big, w[k as usize - 1], "k={k}");
            assert_eq!(small, w[k as usize - 1], "k={k}");
        }
        assert_eq!(
            hodges_lehmann_with(&x, 0),
            hodges_lehmann_with(&x, u64::MAX)
        );
    }

    #[test]
    fn hodges_lehmann_by_hand() {
        assert!(hodges_lehmann(&[]).is_nan());
        assert_eq!(hodges_lehmann(&[3.0]), 3.0);
        // Walsh: 1, 1.5, 2 -> 1.5
        assert_eq!(hodges_lehmann(&[1.0, 2.0]), 1.5);
        // Walsh of 1, 2, 10: 1, 1.5, 5.5, 2, 6, 10 -> (2 + 5.5) / 2
        assert_eq!(hodges_lehmann(&[10.0, 1.0, 2.0]), 3.75);
        assert_eq!(hodges_lehmann_with(&[10.0, 1.0, 2.0], 0), 3.75);
    }

    #[test]
    fn infinities_and_degenerate_inputs() {
        let x = [f64::NEG_INFINITY, 1.0, f64::INFINITY];
        // Walsh: -inf, -inf, 0 (inf with -inf), 1, inf, inf
        let t = walsh_test(&x, 0.5, Good::Lower);
        assert_eq!((t.good, t.bad, t.ties), (3, 3, 0));
        assert_eq!(hodges_lehmann(&x), 0.5);
        assert_eq!(hodges_lehmann_with(&x, 0), 0.5);
        let e = walsh_test(&[], 0.0, Good::Lower);
        assert_eq!((e.n, e.walsh, e.p_good, e.p_bad), (0, 0, 1.0, 1.0));
        let nan_tau = walsh_test(&[1.0, 2.0], f64::NAN, Good::Higher);
        assert_eq!((nan_tau.ties, nan_tau.p_good, nan_tau.p_bad), (3, 1.0, 1.0));
        assert_eq!(walsh_bound(&[], Good::Lower, true, 0.05), None);
        assert_eq!(walsh_bound(&[1.0, 2.0], Good::Lower, true, 0.05), None);
        assert_eq!(walsh_bound(&[1.0; 9], Good::Lower, true, 0.0), None);
        assert_eq!(signed_rank_sf(0, 0), 1.0);
        assert_eq!(signed_rank_sf(1, 0), 0.0);
        assert_eq!(signed_rank_sf(7, 3), 0.0);
        assert_eq!(signed_rank_sf(6, 3), 0.125);
    }

    #[test]
    fn bound_is_the_textbook_walsh_average() {
        // n = 10: N = 55, P(T >= 47) = P(T <= 8) = 0.0244 <= 0.025 < P(T <= 9) = 0.0322
        // (tables of the signed-rank statistic, e.g. Hollander & Wolfe)
        let x: Vec<f64> = (1..=10).map(|i| f64::from(i * i)).collect();
        let t = NullTail::new(10, 400);
        assert_eq!(smallest_k_at_most(55, 0.025, |k| t.sf(k)), Some(47));
        let w = brute_walsh(&x);
        assert_eq!(walsh_bound(&x, Good::Lower, true, 0.025), Some(w[46]));
        assert_eq!(walsh_bound(&x, Good::Higher, true, 0.025), Some(w[8]));
        assert_eq!(walsh_bound(&x, Good::Lower, false, 0.025), Some(w[8]));
        assert_eq!(walsh_bound(&x, Good::Higher, false, 0.025), Some(w[46]));
    }
}
