//! Golden tests: every case in fixtures/golden/stats.json (scipy 1.17.1 / numpy 2.4, written by
//! fixtures/stats_golden.py) must match to 1e-10 absolute, except the bootstrap intervals.

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
