//! Property tests (64 cases each; 256 for the cheap claim/bound dualities) and determinism /
//! degenerate-input checks.

use proptest::prelude::*;

use super::*;

const ALTS: [Alternative; 3] = [
    Alternative::Less,
    Alternative::Greater,
    Alternative::TwoSided,
];

/// Samples with some ties and zeros: values on a 0.5 grid mixed with continuous ones.
fn sample(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![(-6i32..=6).prop_map(|k| f64::from(k) * 0.5), -5.0..5.0f64],
        0..max_len,
    )
}

fn in_unit(p: f64) -> bool {
    (0.0..=1.0).contains(&p)
}

fn same(a: &TestResult, b: &TestResult) -> bool {
    a.method == b.method && a.n == b.n && (a.p_value - b.p_value).abs() <= 1e-12
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn p_values_in_unit_interval(x in sample(70), y in sample(30), mu in -2.0..2.0f64) {
        for alt in ALTS {
            prop_assert!(in_unit(wilcoxon_signed_rank(&x, mu, alt).p_value));
            prop_assert!(in_unit(sign_test(&x, mu, alt).p_value));
            prop_assert!(in_unit(mann_whitney_u(&x, &y, alt).p_value));
        }
    }

    #[test]
    fn wilcoxon_less_is_greater_on_flipped_sample(x in sample(70), mu in -2.0..2.0f64) {
        let flipped: Vec<f64> = x.iter().map(|v| -v).collect();
        let a = wilcoxon_signed_rank(&x, mu, Alternative::Less);
        let b = wilcoxon_signed_rank(&flipped, -mu, Alternative::Greater);
        prop_assert!(same(&a, &b), "{a:?} vs {b:?}");
        let s = sign_test(&x, mu, Alternative::Less);
        let t = sign_test(&flipped, -mu, Alternative::Greater);
        prop_assert!(same(&s, &t), "{s:?} vs {t:?}");
    }

    #[test]
    fn mwu_less_is_greater_with_samples_swapped(x in sample(20), y in sample(20)) {
        let a = mann_whitney_u(&x, &y, Alternative::Less);
        let b = mann_whitney_u(&y, &x, Alternative::Greater);
        prop_assert!(same(&a, &b), "{a:?} vs {b:?}");
    }

    #[test]
    fn holm_bounds_and_monotone(p in prop::collection::vec(0.0..=1.0f64, 0..30)) {
        let adj = holm(&p);
        prop_assert_eq!(adj.len(), p.len());
        for (a, r) in adj.iter().zip(&p) {
            prop_assert!(*a >= *r && *a <= 1.0);
        }
        let mut idx: Vec<usize> = (0..p.len()).collect();
        idx.sort_by(|&i, &j| p[i].total_cmp(&p[j]));
        for w in idx.windows(2) {
            prop_assert!(adj[w[0]] <= adj[w[1]]);
        }
    }

    #[test]
    fn bootstrap_contains_estimate(x in prop::collection::vec(-5.0..5.0f64, 2..40), seed in any::<u64>()) {
        for (stat, est) in [(Statistic::Median, median(&x)), (Statistic::Mean, mean(&x))] {
            let ci = bootstrap_ci(&x, stat, 0.95, 1000, seed);
            prop_assert!(ci.low <= est && est <= ci.high, "{stat:?} {est} not in {ci:?}");
        }
    }

    #[test]
    fn clopper_pearson_contains_proportion(n in 1u64..2000, frac in 0.0..=1.0f64, level in 0.5..0.999f64) {
        let k = ((n as f64) * frac).round() as u64;
        let ci = clopper_pearson(k, n, level);
        let phat = k as f64 / n as f64;
        prop_assert!(0.0 <= ci.low && ci.low <= phat && phat <= ci.high && ci.high <= 1.0, "{ci:?} k={k} n={n}");
    }

    #[test]
    fn ranks_sum_to_triangular_number(x in sample(100)) {
        let n = x.len() as f64;
        let sum: f64 = rank_average(&x).iter().sum();
        prop_assert!((sum - n * (n + 1.0) / 2.0).abs() < 1e-9);
    }
}

#[test]
fn bootstrap_is_identical_across_thread_counts() {
    let x: Vec<f64> = (0..57)
        .map(|i| ((i * 37 % 23) as f64).sqrt() - 2.0)
        .collect();
    let run = |threads: usize, stat: Statistic| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| bootstrap_ci(&x, stat, 0.95, 10_000, 7))
    };
    for stat in [Statistic::Median, Statistic::Mean] {
        let (a, b) = (run(1, stat), run(2, stat));
        assert_eq!(a.low.to_bits(), b.low.to_bits());
        assert_eq!(a.high.to_bits(), b.high.to_bits());
        assert_eq!(a.method, b.method);
        assert_eq!(a.method, "bca");
    }
}

#[test]
fn degenerate_inputs_do_not_panic() {
    for alt in ALTS {
        let w = wilcoxon_signed_rank(&[1.0, 1.0, 1.0], 1.0, alt);
        assert_eq!((w.p_value, w.statistic, w.n), (1.0, 0.0, 0));
        let w = wilcoxon_signed_rank(&[], 0.0, alt);
        assert_eq!((w.p_value, w.n), (1.0, 0));
        assert_eq!(sign_test(&[], 0.0, alt).p_value, 1.0);
        assert_eq!(mann_whitney_u(&[], &[1.0], alt).p_value, 1.0);
        assert_eq!(mann_whitney_u(&[2.0; 4], &[2.0; 3], alt).p_value, 1.0);
    }
    assert!(holm(&[]).is_empty());
    assert!(median(&[]).is_nan() && mean(&[]).is_nan() && quantile(&[], 0.5).is_nan());
    let e = bootstrap_ci(&[], Statistic::Median, 0.95, 100, 1);
    assert!(e.low.is_nan() && e.high.is_nan());
    let one = bootstrap_ci(&[3.5], Statistic::Mean, 0.95, 100, 1);
    assert_eq!((one.low, one.high), (3.5, 3.5));
    let flat = bootstrap_ci(&[2.0; 9], Statistic::Median, 0.95, 100, 1);
    assert_eq!((flat.low, flat.high, flat.method), (2.0, 2.0, "percentile"));
    let cp = clopper_pearson(0, 0, 0.95);
    assert_eq!((cp.low, cp.high), (0.0, 1.0));
}

/// NaN is a caller bug (debug_assert); release builds exclude it instead of panicking.
#[cfg(not(debug_assertions))]
#[test]
fn nan_is_excluded_in_release() {
    let with_nan = wilcoxon_signed_rank(&[1.0, f64::NAN, 2.5, -0.5], 0.0, Alternative::TwoSided);
    let without = wilcoxon_signed_rank(&[1.0, 2.5, -0.5], 0.0, Alternative::TwoSided);
    assert_eq!(with_nan.p_value, without.p_value);
    assert_eq!(median(&[f64::NAN, 1.0, 3.0]), 2.0);
    assert_eq!(holm(&[f64::NAN, 0.01]), vec![1.0, 0.02]);
}

// ---- claim tests and their exactly dual bounds (quantile.rs, walsh.rs, relative_effect.rs) ----

/// Many ties: values on a coarse grid that contains every threshold tried (tau in -1..=1).
fn tied_sample(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-4i32..=4).prop_map(|k| f64::from(k) * 0.5), 0..max_len)
}

/// Levels in [1e-6, 0.5], log-uniform so that small levels are exercised too.
fn level() -> impl Strategy<Value = f64> {
    (-6.0..0.5f64.log10()).prop_map(|e| 10f64.powf(e))
}

const GOODS: [Good; 2] = [Good::Lower, Good::Higher];

/// Strictly on the good (`good_side`) or bad side of tau.
fn beyond(v: f64, tau: f64, good: Good, good_side: bool) -> bool {
    if (good == Good::Lower) == good_side {
        v < tau
    } else {
        v > tau
    }
}

/// The levels to try: a random one and, where they are valid levels, the p-values themselves
/// (the boundary case p == a).
fn levels(a: f64, p_good: f64, p_bad: f64) -> Vec<f64> {
    let mut v = vec![a];
    v.extend([p_good, p_bad].into_iter().filter(|p| *p > 0.0 && *p < 1.0));
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn quantile_test_is_dual_to_its_bound(
        x in tied_sample(200), tau in (-2i32..=2).prop_map(|k| f64::from(k) * 0.5),
        q in 0.05..0.95f64, a in level(),
    ) {
        for good in GOODS {
            let t = quantile_test(&x, tau, q, good);
            prop_assert_eq!(t.good + t.bad + t.ties, x.len());
            prop_assert!(in_unit(t.p_good) && in_unit(t.p_bad));
            for a in levels(a, t.p_good, t.p_bad) {
                let pass = quantile_bound(&x, q, good, true, a);
                let fail = quantile_bound(&x, q, good, false, a);
                let pass_ok = pass.is_some_and(|b| beyond(b, tau, good, true));
                let fail_ok = fail.is_some_and(|b| beyond(b, tau, good, false));
                prop_assert_eq!(t.p_good <= a, pass_ok, "PASS {:?} a={} bound {:?} {:?}", good, a, pass, t);
                prop_assert_eq!(t.p_bad <= a, fail_ok, "FAIL {:?} a={} bound {:?} {:?}", good, a, fail, t);
            }
        }
    }

    #[test]
    fn binom_sf_is_monotone(n in 0u64..300, p in 0.0..=1.0f64) {
        let mut prev = 1.0;
        for k in 0..=n + 1 {
            let v = binom_sf(k, n, p);
            prop_assert!(in_unit(v) && v <= prev, "n={} p={} k={}", n, p, k);
            prev = v;
        }
    }

    #[test]
    fn effect_test_is_dual_to_its_bound(
        x in tied_sample(60), y in tied_sample(60),
        r0 in prop_oneof![-1.0..=1.0f64, Just(-1.0), Just(0.0), Just(1.0)], a in level(),
    ) {
        let t = effect_test(&x, &y, r0);
        prop_assert!(in_unit(t.p_good) && in_unit(t.p_bad));
        prop_assert!((t.r - rank_biserial(&x, &y)).abs() <= 1e-12);
        for a in levels(a, t.p_good, t.p_bad) {
            let (lo, hi) = (effect_bound(&t, true, a), effect_bound(&t, false, a));
            prop_assert!((-1.0..=1.0).contains(&lo) && lo <= t.r && t.r <= hi && hi <= 1.0);
            prop_assert_eq!(t.p_good <= a, lo > r0, "PASS a={} r_low={} {:?}", a, lo, t);
            prop_assert_eq!(t.p_bad <= a, hi < r0, "FAIL a={} r_high={} {:?}", a, hi, t);
            // at the bound itself: r0 = r_low is not rejected, r0 = r_high neither
            let at_lo = effect_test(&x, &y, lo);
            let at_hi = effect_test(&x, &y, hi);
            prop_assert!(at_lo.p_good > a && at_hi.p_bad > a);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Exact null tail (n <= 400); the bound materialises the Walsh averages (N <= 2e6).
    #[test]
    fn walsh_test_is_dual_to_its_bound(
        x in tied_sample(120), tau in (-2i32..=2).prop_map(|k| f64::from(k) * 0.25), a in level(),
    ) {
        walsh_duality(&x, tau, a, 400, 2_000_000)?;
    }

    /// Normal-approximation tail and the bisection path for the k-th Walsh average.
    #[test]
    fn walsh_duality_holds_on_the_approximate_and_large_paths(
        x in tied_sample(200), tau in (-2i32..=2).prop_map(|k| f64::from(k) * 0.25), a in level(),
    ) {
        walsh_duality(&x, tau, a, 0, 0)?;
    }

    #[test]
    fn kth_walsh_paths_agree(x in sample(40)) {
        prop_assert_eq!(
            walsh::hodges_lehmann_with(&x, 0).to_bits(),
            walsh::hodges_lehmann_with(&x, u64::MAX).to_bits()
        );
        for good in GOODS {
            for pass in [true, false] {
                for a in [1e-4, 0.01, 0.05, 0.3] {
                    let big = walsh::walsh_bound_with(&x, good, pass, a, 400, 0);
                    let small = walsh::walsh_bound_with(&x, good, pass, a, 400, u64::MAX);
                    prop_assert_eq!(big, small);
                }
            }
        }
    }
}

fn walsh_duality(
    x: &[f64],
    tau: f64,
    a: f64,
    exact_max_n: usize,
    materialize_max: u64,
) -> Result<(), TestCaseError> {
    for good in GOODS {
        let t = walsh::walsh_test_with(x, tau, good, exact_max_n);
        prop_assert_eq!(t.good + t.bad + t.ties, t.walsh);
        prop_assert!(in_unit(t.p_good) && in_unit(t.p_bad));
        for a in levels(a, t.p_good, t.p_bad) {
            let bound =
                |pass| walsh::walsh_bound_with(x, good, pass, a, exact_max_n, materialize_max);
            let (pass, fail) = (bound(true), bound(false));
            let pass_ok = pass.is_some_and(|b| beyond(b, tau, good, true));
            let fail_ok = fail.is_some_and(|b| beyond(b, tau, good, false));
            prop_assert_eq!(
                t.p_good <= a,
                pass_ok,
                "PASS {:?} a={} bound {:?} {:?}",
                good,
                a,
                pass,
                t
            );
            prop_assert_eq!(
                t.p_bad <= a,
                fail_ok,
                "FAIL {:?} a={} bound {:?} {:?}",
                good,
                a,
                fail,
                t
            );
        }
    }
    Ok(())
}
