//! Property tests (64 cases each) and determinism / degenerate-input checks.

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
