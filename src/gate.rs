//! From measurements to verdicts: one-sided tests against the threshold (Wilcoxon
//! signed-rank, or the sign test when the differences are too skewed or tied for
//! Wilcoxon's symmetry assumption), Mann-Whitney U for two-sample audits, BCa bootstrap
//! intervals, Holm-Bonferroni across every test of the run (algorithms.md F3-F6).
use crate::audit::Direction;
use crate::stats::{self, Alternative, Statistic};
use serde::{Deserialize, Serialize};

/// The verdict of one gated audit result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
    /// The audit could not be evaluated (an error).
    Error,
    /// The audit does not apply (e.g. no random-label model given).
    NotRun,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Inconclusive => "INCONCLUSIVE",
            Verdict::Error => "ERROR",
            Verdict::NotRun => "NOT RUN",
        }
    }
}

/// Decision settings (suite and config; never in audit code).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub alpha: f64,
    /// Fewer usable images than this: INCONCLUSIVE.
    pub min_n: usize,
    pub bootstrap_resamples: usize,
    pub confidence: f64,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            alpha: 0.05,
            min_n: 30,
            bootstrap_resamples: 10_000,
            confidence: 0.95,
            seed: 0,
        }
    }
}

/// Statistics of one gated sample, before multiplicity correction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tested {
    pub n: usize,
    pub median: f64,
    pub mean: f64,
    pub q25: f64,
    pub q75: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub ci_method: String,
    /// `wilcoxon-signed-rank`, `sign` or `mann-whitney-u`.
    pub test: String,
    pub test_method: String,
    /// Why the sign test replaced Wilcoxon, when it did.
    pub test_note: Option<String>,
    pub statistic: f64,
    pub effect_size: f64,
    /// One-sided p for the good direction (two-sided for two-sample audits).
    pub p_good: f64,
    /// One-sided p for the bad direction (NaN for two-sample audits: FAIL there is by CI).
    pub p_bad: f64,
    /// Two-sample: CI of the effect size r.
    pub effect_ci: Option<(f64, f64)>,
}

/// Whether Wilcoxon's symmetry assumption is too doubtful: strong skew or a heavy tie.
fn sign_test_reason(d: &[f64]) -> Option<String> {
    let n = d.len() as f64;
    if d.len() < 3 {
        return None;
    }
    let m = stats::mean(d);
    let sd = (d.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
    let mut sorted = d.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut best = 1;
    let mut run = 1;
    for w in sorted.windows(2) {
        run = if w[0] == w[1] { run + 1 } else { 1 };
        best = best.max(run);
    }
    if best as f64 >= 0.25 * n {
        return Some(format!("{best} of {} values are identical", d.len()));
    }
    if sd > 0.0 {
        let skew = d.iter().map(|v| ((v - m) / sd).powi(3)).sum::<f64>() / n;
        if skew.abs() > 1.0 {
            return Some(format!("skewness {skew:.2} (|skew| > 1)"));
        }
    }
    None
}

/// One-sample statistics of `x` against `threshold`.
pub fn one_sample(x: &[f64], threshold: f64, dir: Direction, s: &Settings, seed: u64) -> Tested {
    let (good, bad) = match dir {
        Direction::Lower => (Alternative::Less, Alternative::Greater),
        _ => (Alternative::Greater, Alternative::Less),
    };
    let d: Vec<f64> = x.iter().map(|v| v - threshold).collect();
    let note = sign_test_reason(&d);
    let (tg, tb) = if note.is_some() {
        (
            stats::sign_test(x, threshold, good),
            stats::sign_test(x, threshold, bad),
        )
    } else {
        (
            stats::wilcoxon_signed_rank(x, threshold, good),
            stats::wilcoxon_signed_rank(x, threshold, bad),
        )
    };
    let ci = stats::bootstrap_ci(
        x,
        Statistic::Median,
        s.confidence,
        s.bootstrap_resamples,
        seed,
    );
    Tested {
        n: x.len(),
        median: stats::median(x),
        mean: stats::mean(x),
        q25: stats::quantile(x, 0.25),
        q75: stats::quantile(x, 0.75),
        ci_low: ci.low,
        ci_high: ci.high,
        ci_method: ci.method.into(),
        test: tg.test.into(),
        test_method: tg.method.into(),
        test_note: note,
        statistic: tg.statistic,
        effect_size: tg.effect_size,
        p_good: tg.p_value,
        p_bad: tb.p_value,
        effect_ci: None,
    }
}

/// Two-sample statistics of `x` (audited group) against `reference`.
pub fn two_sample(x: &[f64], reference: &[f64], s: &Settings, seed: u64) -> Tested {
    let t = stats::mann_whitney_u(x, reference, Alternative::TwoSided);
    let ci = stats::rank_biserial_ci(
        x,
        reference,
        s.confidence,
        s.bootstrap_resamples.min(2000),
        seed,
    );
    let mci = stats::bootstrap_ci(
        x,
        Statistic::Median,
        s.confidence,
        s.bootstrap_resamples,
        seed,
    );
    Tested {
        n: x.len(),
        median: stats::median(x),
        mean: stats::mean(x),
        q25: stats::quantile(x, 0.25),
        q75: stats::quantile(x, 0.75),
        ci_low: mci.low,
        ci_high: mci.high,
        ci_method: mci.method.into(),
        test: t.test.into(),
        test_method: t.method.into(),
        test_note: None,
        statistic: t.statistic,
        effect_size: t.effect_size,
        p_good: t.p_value,
        p_bad: f64::NAN,
        effect_ci: Some((ci.low, ci.high)),
    }
}

/// Exact binomial test of a violation rate k/n against `threshold`, with the
/// Clopper-Pearson interval (`Lower`: PASS when the rate is shown below the threshold).
pub fn proportion(k: u64, n: u64, threshold: f64, dir: Direction, s: &Settings) -> Tested {
    use statrs::distribution::{Binomial, DiscreteCDF};
    let t = threshold.clamp(0.0, 1.0);
    let (below, above) = match Binomial::new(t, n) {
        Ok(b) => (b.cdf(k), if k == 0 { 1.0 } else { 1.0 - b.cdf(k - 1) }),
        Err(_) => (f64::NAN, f64::NAN),
    };
    let (p_good, p_bad) = match dir {
        Direction::Higher => (above, below),
        _ => (below, above),
    };
    let ci = stats::clopper_pearson(k, n, s.confidence);
    let rate = k as f64 / n.max(1) as f64;
    Tested {
        n: n as usize,
        median: rate,
        mean: rate,
        q25: f64::NAN,
        q75: f64::NAN,
        ci_low: ci.low,
        ci_high: ci.high,
        ci_method: ci.method.into(),
        test: "binomial".into(),
        test_method: "exact".into(),
        test_note: Some(format!("{k} violations in {n} cases")),
        statistic: k as f64,
        effect_size: rate - t,
        p_good: p_good.clamp(0.0, 1.0),
        p_bad: p_bad.clamp(0.0, 1.0),
        effect_ci: None,
    }
}

/// Verdict after Holm adjustment (`p_good_adj`, `p_bad_adj`).
pub fn verdict(
    t: &Tested,
    p_good_adj: f64,
    p_bad_adj: f64,
    threshold: f64,
    dir: Direction,
    s: &Settings,
    reference_n: Option<usize>,
) -> (Verdict, String) {
    let n_ok = t.n >= s.min_n && reference_n.is_none_or(|r| r >= s.min_n);
    if !n_ok {
        return (
            Verdict::Inconclusive,
            format!(
                "n = {} below the minimum of {} usable images",
                t.n.min(reference_n.unwrap_or(t.n)),
                s.min_n
            ),
        );
    }
    match dir {
        Direction::Different => {
            let (lo, hi) = t.effect_ci.unwrap_or((f64::NAN, f64::NAN));
            if p_good_adj < s.alpha && t.effect_size.abs() >= threshold {
                (
                    Verdict::Pass,
                    format!(
                        "groups differ: r = {:.3}, adjusted p = {:.2e}",
                        t.effect_size, p_good_adj
                    ),
                )
            } else if lo > -threshold && hi < threshold {
                (
                    Verdict::Fail,
                    format!(
                        "95% CI of r [{lo:.3}, {hi:.3}] lies inside (-{threshold}, {threshold})"
                    ),
                )
            } else {
                (
                    Verdict::Inconclusive,
                    format!(
                        "r = {:.3}, adjusted p = {:.2e}: neither shown",
                        t.effect_size, p_good_adj
                    ),
                )
            }
        }
        _ => {
            let sym = if dir == Direction::Lower { "<" } else { ">" };
            let anti = if dir == Direction::Lower { ">" } else { "<" };
            if p_good_adj < s.alpha {
                (
                    Verdict::Pass,
                    format!("median {sym} {threshold} (adjusted p = {p_good_adj:.2e})"),
                )
            } else if p_bad_adj < s.alpha {
                (
                    Verdict::Fail,
                    format!("median {anti} {threshold} (adjusted p = {p_bad_adj:.2e})"),
                )
            } else {
                (
                    Verdict::Inconclusive,
                    format!(
                        "median not shown {sym} or {anti} {threshold} at alpha = {}",
                        s.alpha
                    ),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_cases_get_the_right_verdict() {
        let s = Settings::default();
        let low: Vec<f64> = (0..50).map(|i| 0.1 + 0.001 * i as f64).collect();
        let t = one_sample(&low, 0.5, Direction::Lower, &s, 1);
        assert_eq!(
            verdict(&t, t.p_good, t.p_bad, 0.5, Direction::Lower, &s, None).0,
            Verdict::Pass
        );
        assert_eq!(
            verdict(&t, t.p_good, t.p_bad, 0.5, Direction::Lower, &s, None).0,
            Verdict::Pass
        );
        let t = one_sample(&low, 0.5, Direction::Higher, &s, 1);
        assert_eq!(
            verdict(&t, t.p_good, t.p_bad, 0.5, Direction::Higher, &s, None).0,
            Verdict::Fail
        );
        let few = &low[..10];
        let t = one_sample(few, 0.5, Direction::Lower, &s, 1);
        assert_eq!(
            verdict(&t, t.p_good, t.p_bad, 0.5, Direction::Lower, &s, None).0,
            Verdict::Inconclusive
        );
    }

    #[test]
    fn ties_switch_to_the_sign_test() {
        let mut x = vec![1.0; 30];
        x.extend((0..20).map(|i| 0.2 + 0.01 * i as f64));
        let t = one_sample(&x, 0.5, Direction::Lower, &Settings::default(), 1);
        assert_eq!(t.test, "sign");
        assert!(t.test_note.is_some());
    }

    #[test]
    fn two_sample_pass_and_fail() {
        let s = Settings::default();
        let a: Vec<f64> = (0..60).map(|i| 0.8 + 0.001 * i as f64).collect();
        let b: Vec<f64> = (0..60).map(|i| 0.5 + 0.001 * i as f64).collect();
        let t = two_sample(&a, &b, &s, 3);
        assert_eq!(
            verdict(
                &t,
                t.p_good,
                f64::NAN,
                0.3,
                Direction::Different,
                &s,
                Some(60)
            )
            .0,
            Verdict::Pass
        );
        let c: Vec<f64> = (0..200).map(|i| ((i * 37) % 200) as f64).collect();
        let d: Vec<f64> = (0..200).map(|i| ((i * 53) % 200) as f64 + 0.5).collect();
        let t = two_sample(&c, &d, &s, 3);
        assert_eq!(
            verdict(
                &t,
                t.p_good,
                f64::NAN,
                0.3,
                Direction::Different,
                &s,
                Some(200)
            )
            .0,
            Verdict::Fail
        );
    }
}
