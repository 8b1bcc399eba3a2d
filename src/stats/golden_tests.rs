//! Golden tests: every case in fixtures/golden/stats.json (scipy 1.17.1 / numpy 2.4, written by
//! fixtures/stats_golden.py) must match to 1e-10 absolute, except the bootstrap intervals
//! (Monte Carlo), the binomial tails (1e-12 relative, as they go down to 1e-100) and the
//! order-statistic bounds (exactly equal: they are data values).

use serde::Deserialize;

use super::*;

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/golden/stats.json");
const TOL: f64 = 1e-10;

#[derive(Deserialize)]
struct Golden {
    rankdata: Vec<RankCase>,
    wilcoxon: Vec<OneSampleCase>,
    sign: Vec<OneSampleCase>,
    mannwhitney: Vec<MwuCase>,
    holm: Vec<HolmCase>,
    clopper_pearson: Vec<CpCase>,
    median: Vec<MedianCase>,
    quantile: Vec<QuantileCase>,
    bootstrap: Vec<BootCase>,
    binom_sf: Vec<BinomSfCase>,
    quantile_test: Vec<QuantileTestCase>,
    walsh: Vec<WalshCase>,
    walsh_asymptotic: Vec<WalshCase>,
    relative_effect: Vec<EffectCase>,
}

#[derive(Deserialize)]
struct RankCase {
    x: Vec<f64>,
    ranks: Vec<f64>,
}

#[derive(Deserialize)]
struct OneSampleCase {
    label: String,
    x: Vec<f64>,
    mu: f64,
    alternative: Alternative,
    #[serde(default)]
    method: Option<String>,
    n: usize,
    statistic: f64,
    pvalue: f64,
}

#[derive(Deserialize)]
struct MwuCase {
    label: String,
    x: Vec<f64>,
    y: Vec<f64>,
    alternative: Alternative,
    method: String,
    statistic: f64,
    pvalue: f64,
}

#[derive(Deserialize)]
struct HolmCase {
    p: Vec<f64>,
    adjusted: Vec<f64>,
}

#[derive(Deserialize)]
struct CpCase {
    k: u64,
    n: u64,
    level: f64,
    low: f64,
    high: f64,
}

#[derive(Deserialize)]
struct MedianCase {
    x: Vec<f64>,
    median: f64,
}

#[derive(Deserialize)]
struct QuantileCase {
    x: Vec<f64>,
    q: f64,
    value: f64,
}

#[derive(Deserialize)]
struct BootCase {
    label: String,
    x: Vec<f64>,
    statistic: Statistic,
    level: f64,
    low: f64,
    high: f64,
}

#[derive(Deserialize)]
struct BinomSfCase {
    k: u64,
    n: u64,
    p: f64,
    sf: f64,
}

#[derive(Deserialize)]
struct QuantileTestCase {
    label: String,
    x: Vec<f64>,
    tau: f64,
    q: f64,
    good: Good,
    n: usize,
    good_count: usize,
    bad_count: usize,
    ties: usize,
    p_good: f64,
    p_bad: f64,
    bounds: Vec<QuantileBoundCase>,
}

#[derive(Deserialize)]
struct QuantileBoundCase {
    a: f64,
    pass: Option<f64>,
    fail: Option<f64>,
}

#[derive(Deserialize)]
struct WalshCase {
    label: String,
    x: Vec<f64>,
    tau: f64,
    n: usize,
    t_plus: u64,
    p_greater: f64,
    p_less: f64,
    #[serde(default)]
    hodges_lehmann: Option<f64>,
    #[serde(default)]
    bounds: Vec<WalshBoundCase>,
}

#[derive(Deserialize)]
struct WalshBoundCase {
    a: f64,
    kth_smallest: Option<f64>,
    kth_largest: Option<f64>,
}

#[derive(Deserialize)]
struct EffectCase {
    label: String,
    x: Vec<f64>,
    y: Vec<f64>,
    r0: f64,
    theta: f64,
    p_good: f64,
    p_bad: f64,
    bounds: Vec<EffectBoundCase>,
}

#[derive(Deserialize)]
struct EffectBoundCase {
    a: f64,
    r_low: f64,
    r_high: f64,
}

fn golden() -> Golden {
    let text = std::fs::read_to_string(GOLDEN).expect("read golden stats.json");
    serde_json::from_str(&text).expect("parse golden stats.json")
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= TOL,
        "{what}: got {got:e}, scipy {want:e}"
    );
}

/// scipy's method names mapped to ours.
fn method_name(scipy: &str) -> &'static str {
    if scipy == "exact" {
        "exact"
    } else {
        "normal-approx"
    }
}

#[test]
fn rankdata_matches_scipy() {
    for c in golden().rankdata {
        let r = rank_average(&c.x);
        assert_eq!(r.len(), c.ranks.len());
        for (a, b) in r.iter().zip(&c.ranks) {
            close(*a, *b, "rank");
        }
    }
}

#[test]
fn wilcoxon_matches_scipy() {
    let cases = golden().wilcoxon;
    assert!(cases.len() >= 60);
    for c in cases {
        let what = format!("wilcoxon {} {:?}", c.label, c.alternative);
        let r = wilcoxon_signed_rank(&c.x, c.mu, c.alternative);
        assert_eq!(
            r.method,
            method_name(c.method.as_deref().unwrap_or("")),
            "{what}"
        );
        assert_eq!(r.n, c.n, "{what}");
        close(r.statistic, c.statistic, &format!("{what} statistic"));
        close(r.p_value, c.pvalue, &format!("{what} p"));
    }
}

#[test]
fn sign_test_matches_scipy_binomtest() {
    for c in golden().sign {
        let what = format!("sign {} {:?}", c.label, c.alternative);
        let r = sign_test(&c.x, c.mu, c.alternative);
        assert_eq!(r.n, c.n, "{what}");
        close(r.statistic, c.statistic, &format!("{what} statistic"));
        close(r.p_value, c.pvalue, &format!("{what} p"));
    }
}

#[test]
fn mann_whitney_matches_scipy() {
    for c in golden().mannwhitney {
        let what = format!("mwu {} {:?}", c.label, c.alternative);
        let r = mann_whitney_u(&c.x, &c.y, c.alternative);
        assert_eq!(r.method, method_name(&c.method), "{what}");
        assert_eq!(r.n, c.x.len() + c.y.len(), "{what}");
        close(r.statistic, c.statistic, &format!("{what} statistic"));
        close(r.p_value, c.pvalue, &format!("{what} p"));
    }
}

#[test]
fn holm_matches_definition_and_oracle() {
    let cases = golden().holm;
    let oracle = holm(&[0.01, 0.04, 0.03]);
    for (a, b) in oracle.iter().zip([0.03, 0.06, 0.06]) {
        close(*a, b, "holm oracle");
    }
    for c in cases {
        let adj = holm(&c.p);
        assert_eq!(adj.len(), c.adjusted.len());
        for (a, b) in adj.iter().zip(&c.adjusted) {
            close(*a, *b, "holm");
        }
    }
}

#[test]
fn clopper_pearson_matches_scipy() {
    for c in golden().clopper_pearson {
        let ci = clopper_pearson(c.k, c.n, c.level);
        let what = format!("cp k={} n={} level={}", c.k, c.n, c.level);
        close(ci.low, c.low, &format!("{what} low"));
        close(ci.high, c.high, &format!("{what} high"));
    }
}

#[test]
fn median_and_quantile_match_numpy() {
    let g = golden();
    for c in g.median {
        close(median(&c.x), c.median, "median");
    }
    for c in g.quantile {
        close(quantile(&c.x, c.q), c.value, &format!("quantile q={}", c.q));
    }
}

/// scipy's intervals use numpy's PCG64 and ours ChaCha8, so the two are different Monte Carlo
/// draws of the same BCa interval: endpoints agree to within 2% of the sample's range.
#[test]
fn bootstrap_bca_agrees_loosely_with_scipy() {
    for c in golden().bootstrap {
        let ci = bootstrap_ci(&c.x, c.statistic, c.level, 10_000, 42);
        let (lo, hi) =
            c.x.iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(*v), b.max(*v))
                });
        let tol = 0.02 * (hi - lo);
        let what = format!("bootstrap {} {:?} {}", c.label, c.statistic, c.level);
        assert_eq!(ci.method, "bca", "{what}");
        assert!(
            (ci.low - c.low).abs() <= tol,
            "{what} low {} vs scipy {} (tol {tol})",
            ci.low,
            c.low
        );
        assert!(
            (ci.high - c.high).abs() <= tol,
            "{what} high {} vs scipy {} (tol {tol})",
            ci.high,
            c.high
        );
    }
}

/// Relative accuracy of the binomial upper tail, down to tails of 1e-100.
#[test]
fn binom_sf_matches_scipy() {
    let cases = golden().binom_sf;
    assert!(cases.len() >= 100);
    for c in cases {
        let got = binom_sf(c.k, c.n, c.p);
        assert!(
            (got - c.sf).abs() <= 1e-12 * c.sf,
            "binom_sf k={} n={} p={}: got {got:e}, scipy {:e}",
            c.k,
            c.n,
            c.p,
            c.sf
        );
    }
}

#[test]
fn quantile_test_matches_scipy_binomtest() {
    for c in golden().quantile_test {
        let what = format!("quantile {} {:?}", c.label, c.good);
        let t = quantile_test(&c.x, c.tau, c.q, c.good);
        assert_eq!(
            (t.n, t.good, t.bad, t.ties),
            (c.n, c.good_count, c.bad_count, c.ties),
            "{what}"
        );
        // relative: some p-values are far below 1e-10
        for (got, want, side) in [(t.p_good, c.p_good, "p_good"), (t.p_bad, c.p_bad, "p_bad")] {
            assert!(
                (got - want).abs() <= 1e-12 * want + 1e-300,
                "{what} {side}: got {got:e}, scipy {want:e}"
            );
        }
        for b in &c.bounds {
            let pass = quantile_bound(&c.x, c.q, c.good, true, b.a);
            let fail = quantile_bound(&c.x, c.q, c.good, false, b.a);
            assert_eq!((pass, fail), (b.pass, b.fail), "{what} bounds a={}", b.a);
        }
    }
}

/// Tie-free data: P(T >= #{A > tau}) is scipy's exact one-sided signed-rank p-value.
#[test]
fn walsh_test_matches_scipy_wilcoxon_exact() {
    let cases = golden().walsh;
    assert!(cases.iter().any(|c| c.n == 300));
    for c in cases {
        let what = format!("walsh {}", c.label);
        let hi = walsh_test(&c.x, c.tau, Good::Higher);
        let lo = walsh_test(&c.x, c.tau, Good::Lower);
        assert_eq!(hi.method, "exact", "{what}");
        assert_eq!(
            (hi.n, hi.good as u64, hi.ties),
            (c.n, c.t_plus, 0),
            "{what}"
        );
        assert_eq!((lo.good, lo.bad), (hi.bad, hi.good), "{what}");
        close(hi.p_good, c.p_greater, &format!("{what} greater"));
        close(hi.p_bad, c.p_less, &format!("{what} less"));
        close(lo.p_good, c.p_less, &format!("{what} lower good"));
        close(lo.p_bad, c.p_greater, &format!("{what} lower bad"));
        if let Some(hl) = c.hodges_lehmann {
            close(hodges_lehmann(&c.x), hl, &format!("{what} hodges-lehmann"));
        }
        for b in &c.bounds {
            let a = b.a;
            assert_eq!(
                walsh_bound(&c.x, Good::Lower, true, a),
                b.kth_smallest,
                "{what} a={a}"
            );
            assert_eq!(
                walsh_bound(&c.x, Good::Higher, false, a),
                b.kth_smallest,
                "{what} a={a}"
            );
            assert_eq!(
                walsh_bound(&c.x, Good::Higher, true, a),
                b.kth_largest,
                "{what} a={a}"
            );
            assert_eq!(
                walsh_bound(&c.x, Good::Lower, false, a),
                b.kth_largest,
                "{what} a={a}"
            );
        }
    }
}

/// The normal path is scipy's `method="asymptotic", correction=True` formula (no tie term for
/// tie-free data), so it matches to rounding: forced on at n ~ 120, the default at n ~ 500.
/// Against the exact p-value the approximation is only good to a few 1e-3 relative at n = 120
/// for moderate p (see walsh.rs), which is what the second check allows.
#[test]
fn walsh_normal_path_matches_scipy_asymptotic() {
    for c in golden().walsh_asymptotic {
        let what = format!("walsh asymptotic {}", c.label);
        let max_exact = if c.n > 400 { 400 } else { 0 };
        let t = super::walsh::walsh_test_with(&c.x, c.tau, Good::Higher, max_exact);
        assert_eq!(
            (t.method, t.good as u64),
            ("normal-approx", c.t_plus),
            "{what}"
        );
        close(t.p_good, c.p_greater, &format!("{what} greater"));
        close(t.p_bad, c.p_less, &format!("{what} less"));
        if c.n <= 400 {
            let exact = walsh_test(&c.x, c.tau, Good::Higher);
            assert_eq!(exact.method, "exact");
            for (e, a) in [(exact.p_good, c.p_greater), (exact.p_bad, c.p_less)] {
                if e > 0.02 {
                    assert!(
                        (e - a).abs() <= 5e-3 * e,
                        "{what}: exact {e}, asymptotic {a}"
                    );
                }
            }
        }
    }
}

#[test]
fn relative_effect_matches_scipy_mannwhitneyu() {
    for c in golden().relative_effect {
        let what = format!("effect {}", c.label);
        let t = effect_test(&c.x, &c.y, c.r0);
        close(t.theta, c.theta, &format!("{what} theta"));
        close(t.r, rank_biserial(&c.x, &c.y), &format!("{what} r"));
        close(t.p_good, c.p_good, &format!("{what} p_good"));
        close(t.p_bad, c.p_bad, &format!("{what} p_bad"));
        for b in &c.bounds {
            close(
                effect_bound(&t, true, b.a),
                b.r_low,
                &format!("{what} r_low {}", b.a),
            );
            close(
                effect_bound(&t, false, b.a),
                b.r_high,
                &format!("{what} r_high {}", b.a),
            );
        }
    }
}
