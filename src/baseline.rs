//! Regression against a baseline: is a result significantly worse than the same result
//! (audit, method, variant) in a previous run's report.json?
//!
//! Images present in both runs (matched by file sha256) are compared **paired**: per image,
//! the worsening w = current - baseline (or baseline - current for a higher-is-better
//! metric), tested against the allowed regression m with the run's one-sample test (exact
//! binomial sign test of the median of w by default, Wilcoxon signed-rank on request):
//! REGRESSED claims median(w) > m, NOT WORSE claims median(w) < m. Runs on different images
//! fall back to a two-sample test of the relative effect (Hoeffding bound, as the
//! two-sample audits) of the shifted values, and say so. Both claims of every comparison
//! join the run's single Holm family (`check::decide`), so the probability of any wrong
//! verdict, absolute or regression, stays at most alpha. `xaudit compare` uses the same
//! comparison between any two runs.
use crate::claim::{Direction, TestChoice};
use crate::error::{Error, Result};
use crate::gate::{self, Decision, Evaluation, Verdict};
use crate::report::{AuditResult, ImageRecord, PairedValue, Regression, Report};
use std::collections::BTreeMap;
use std::path::Path;

/// A loaded baseline with the comparison settings.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub path: String,
    pub report: Report,
    /// Allowed regression by audit code (configured per audit or in `[baseline]`).
    pub max_regression: BTreeMap<String, f64>,
    pub default_max_regression: f64,
    pub test: TestChoice,
}

impl Baseline {
    /// The allowed regression of audit `code`.
    pub fn allowed(&self, code: &str) -> f64 {
        self.max_regression
            .get(code)
            .copied()
            .unwrap_or(self.default_max_regression)
    }
}

fn major(v: &str) -> &str {
    v.split('.').next().unwrap_or(v)
}

/// Reads a report for comparison; a report of another major schema version is refused with
/// the fix.
pub fn read(path: &Path) -> Result<Report> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::data(
            path,
            format!("cannot read: {e}"),
            "pass the report.json written by `xaudit check --out-dir` for the baseline run",
        )
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::data(
            path,
            format!("not JSON: {e}"),
            "pass the report.json written by `xaudit check --out-dir`",
        )
    })?;
    let version = v
        .get("schema_version")
        .and_then(|s| s.as_str())
        .unwrap_or("none")
        .to_string();
    let ours = crate::report::SCHEMA_VERSION;
    if major(&version) != major(ours) {
        let by = v
            .pointer("/provenance/xaudit_version")
            .and_then(|s| s.as_str())
            .unwrap_or("an unknown version");
        return Err(Error::data(
            path,
            format!("report schema {version} (written by xaudit {by}) is not comparable with this xaudit's schema {ours}"),
            format!("re-run the baseline's model with this xaudit (`xaudit check ... --out-dir DIR`) and pass DIR/report.json, or compare with xaudit {by}"),
        ));
    }
    serde_json::from_value(v).map_err(|e| {
        Error::data(
            path,
            format!("not an xaudit report: {e}"),
            "pass the report.json written by `xaudit check --out-dir` (schema in docs/report.schema.json)",
        )
    })
}

/// The key a result is matched by across runs.
pub fn key(r: &AuditResult) -> (String, String, String) {
    (r.code.clone(), r.method.clone(), r.variant.clone())
}

/// A comparison ready for the decision: its two claims and the report fields.
pub struct Prepared {
    pub evaluation: Evaluation,
    pub regression: Regression,
    /// +1 when higher metric values are worse, -1 when lower ones are (difference =
    /// sign * worsening).
    sign: f64,
}

fn values(r: &AuditResult, images: &[ImageRecord]) -> (Vec<f64>, BTreeMap<String, (f64, String)>) {
    let hash: BTreeMap<usize, &str> = images
        .iter()
        .map(|i| (i.index, i.sha256.as_str()))
        .collect();
    let mut all = Vec::new();
    let mut by_hash = BTreeMap::new();
    for s in &r.per_sample {
        let Some(v) = s.value.filter(|v| v.is_finite()) else {
            continue;
        };
        all.push(v);
        if let Some(h) = hash.get(&s.index) {
            by_hash.insert(h.to_string(), (v, s.path.clone()));
        }
    }
    (all, by_hash)
}

/// Compares `cur` with `base` (same audit, method, variant). `None` when either has no
/// usable value or the metrics differ.
pub fn prepare(
    cur: &AuditResult,
    cur_images: &[ImageRecord],
    base: &AuditResult,
    base_images: &[ImageRecord],
    max_regression: f64,
    test: TestChoice,
    min_n: usize,
) -> Option<Prepared> {
    if cur.metric != base.metric {
        return None;
    }
    let (cv, ch) = values(cur, cur_images);
    let (bv, bh) = values(base, base_images);
    if cv.is_empty() || bv.is_empty() {
        return None;
    }
    // Worse = higher values when lower is better.
    let sign = match cur.direction {
        Direction::Lower => 1.0,
        Direction::Higher => -1.0,
    };
    let worse = if sign > 0.0 { "higher" } else { "lower" };
    let mut pairs: Vec<PairedValue> = ch
        .iter()
        .filter_map(|(h, (c, path))| {
            bh.get(h).map(|(b, _)| PairedValue {
                path: path.clone(),
                baseline: *b,
                current: *c,
            })
        })
        .collect();
    pairs.sort_by(|a, b| a.path.cmp(&b.path));
    let shared = pairs.len();
    let paired = shared >= min_n.min(cv.len()).max(1);
    let metric = &cur.metric;
    let m = max_regression;
    let (evaluation, design_reason) = if paired {
        let w: Vec<f64> = pairs
            .iter()
            .map(|p| sign * (p.current - p.baseline))
            .collect();
        let e = gate::one_sample(
            &w,
            &format!("worsening of {metric}"),
            m,
            Direction::Lower,
            0.5,
            test,
        );
        let reason = format!(
            "paired on {shared} images shared with the baseline (same file sha256{})",
            if shared < cv.len() {
                format!(
                    "; {} current images not in the baseline left out",
                    cv.len() - shared
                )
            } else {
                String::new()
            }
        );
        (e, reason)
    } else {
        // Badness (lower is better) of each run; the current run shifted by the allowance.
        let cur_bad: Vec<f64> = cv.iter().map(|v| sign * v - m).collect();
        let base_bad: Vec<f64> = bv.iter().map(|v| sign * v).collect();
        let e = gate::two_sample(
            &cur_bad,
            &base_bad,
            &format!("{metric} (current vs baseline)"),
            0.0,
            Direction::Lower,
        );
        let reason = format!(
            "two-sample: only {shared} images shared with the baseline (fewer than {}), so the runs are compared as independent groups (weaker than paired)",
            min_n.min(cv.len()).max(1)
        );
        (e, reason)
    };
    let bm = finite(crate::stats::median(&bv));
    let cm = finite(crate::stats::median(&cv));
    let (difference, difference_label, bound_of) = if paired {
        let label = if test == TestChoice::Wilcoxon {
            "pseudo-median difference"
        } else {
            "median difference"
        };
        (
            finite(sign * evaluation.estimate),
            label.to_string(),
            "difference".to_string(),
        )
    } else {
        (
            cm.zip(bm).map(|(c, b)| c - b),
            "difference of medians".to_string(),
            "rank-biserial r (> 0: current better)".to_string(),
        )
    };
    let regression = Regression {
        design: if paired { "paired" } else { "two-sample" }.into(),
        test: evaluation.test.into(),
        design_reason,
        baseline_n: bv.len(),
        current_n: cv.len(),
        paired_n: if paired { shared } else { 0 },
        baseline_median: bm,
        current_median: cm,
        difference,
        difference_label,
        worse: worse.into(),
        max_regression: m,
        claim_regressed: evaluation.claim_fail.clone(),
        claim_not_worse: evaluation.claim_pass.clone(),
        verdict: Verdict::Inconclusive,
        reason: String::new(),
        p_regressed_adjusted: None,
        p_not_worse_adjusted: None,
        level: None,
        bound_low: None,
        bound_high: None,
        bound_of,
        gated: false,
        pairs: if paired { pairs } else { Vec::new() },
    };
    Some(Prepared {
        evaluation,
        regression,
        sign,
    })
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl Prepared {
    /// The report fields after the decision. Bounds on the worsening become bounds on the
    /// difference (current - baseline) for paired designs.
    pub fn decided(self, d: Option<Decision>) -> Regression {
        let mut r = self.regression;
        let Some(d) = d else { return r };
        r.verdict = d.verdict;
        r.reason = d.reason;
        r.p_regressed_adjusted = d.p_fail_adjusted;
        r.p_not_worse_adjusted = d.p_pass_adjusted;
        r.level = d.level;
        if r.design == "paired" && self.sign < 0.0 {
            r.bound_low = d.bound_high.map(|v| -v);
            r.bound_high = d.bound_low.map(|v| -v);
        } else {
            r.bound_low = d.bound_low;
            r.bound_high = d.bound_high;
        }
        r
    }
}

/// What differs between two runs that a reader of a comparison must know.
pub fn differences(base: &Report, cur: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let mut diff = |what: &str, a: &str, b: &str| {
        if a != b {
            out.push(format!("{what}: baseline {a}, current {b}"));
        }
    };
    diff(
        "model sha256",
        &base.model.sha256[..base.model.sha256.len().min(12)],
        &cur.model.sha256[..cur.model.sha256.len().min(12)],
    );
    diff(
        "data sha256",
        &base.provenance.data_sha256[..base.provenance.data_sha256.len().min(12)],
        &cur.provenance.data_sha256[..cur.provenance.data_sha256.len().min(12)],
    );
    diff("suite", &base.provenance.suite, &cur.provenance.suite);
    diff(
        "suite sha256",
        &base.provenance.suite_sha256[..base.provenance.suite_sha256.len().min(12)],
        &cur.provenance.suite_sha256[..cur.provenance.suite_sha256.len().min(12)],
    );
    diff("seed", &base.seed.to_string(), &cur.seed.to_string());
    diff("alpha", &base.alpha.to_string(), &cur.alpha.to_string());
    diff(
        "xaudit version",
        &base.provenance.xaudit_version,
        &cur.provenance.xaudit_version,
    );
    let names = |r: &Report| r.methods.keys().cloned().collect::<Vec<_>>().join(", ");
    diff("methods", &names(base), &names(cur));
    for (m, p) in &cur.methods {
        if let Some(bp) = base.methods.get(m) {
            if bp != p {
                out.push(format!("method {m} parameters: baseline {bp}, current {p}"));
            }
        }
    }
    let bmap: BTreeMap<_, _> = base.audits.iter().map(|r| (key(r), r)).collect();
    for r in &cur.audits {
        if let Some(b) = bmap.get(&key(r)) {
            let label = format!("{} {} {}", r.code, r.name, r.method);
            if b.params != r.params {
                out.push(format!(
                    "{label} parameters: baseline {}, current {}",
                    b.params, r.params
                ));
            }
            if b.metric != r.metric {
                out.push(format!(
                    "{label} metric: baseline {}, current {} (not compared)",
                    b.metric, r.metric
                ));
            }
            if b.threshold != r.threshold {
                out.push(format!(
                    "{label} threshold: baseline {}, current {}",
                    b.threshold, r.threshold
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SampleValue;

    fn result(values: &[f64], dir: Direction) -> AuditResult {
        let mut r: AuditResult = serde_json::from_value(serde_json::json!({
            "code": "XA101", "name": "a", "title": "t", "suite": "s", "method": "saliency",
            "variant": "", "metric": "m", "n": values.len(), "excluded": 0,
            "excluded_reasons": {}, "threshold": 0.5, "direction": "lower", "rationale": "",
            "claim": null, "descriptive": null, "verdict": "pass", "reason": "",
            "p_pass_adjusted": null, "p_fail_adjusted": null, "level": null,
            "bound_low": null, "bound_high": null, "images_to_decide": null, "gated": true,
            "advisory": false, "prerequisite": false, "ignored": null, "note": null,
            "per_sample": [], "reference": null, "secondary": {}, "curves": [],
            "summary": {}, "params": {}, "duration_s": 0.0
        }))
        .unwrap();
        r.direction = dir;
        r.per_sample = values
            .iter()
            .enumerate()
            .map(|(i, v)| SampleValue {
                index: i,
                path: format!("img{i}.png"),
                value: Some(*v),
                excluded: None,
            })
            .collect();
        r
    }

    fn images(n: usize, salt: &str) -> Vec<ImageRecord> {
        (0..n)
            .map(|i| ImageRecord {
                index: i,
                path: format!("img{i}.png"),
                sha256: format!("{salt}{i}"),
            })
            .collect()
    }

    fn decide(p: Prepared) -> Regression {
        let s = gate::Settings::default();
        let d = gate::decide(&[Some(&p.evaluation)], &s).remove(0);
        p.decided(d)
    }

    #[test]
    fn a_clear_paired_worsening_regresses_and_an_unchanged_run_does_not() {
        let base: Vec<f64> = (0..40).map(|i| 0.2 + 0.01 * i as f64).collect();
        let worse: Vec<f64> = base.iter().map(|v| v + 0.05).collect();
        let ims = images(40, "h");
        for (dir, cur, verdict) in [
            (Direction::Lower, &worse, Verdict::Fail),
            (Direction::Higher, &worse, Verdict::Pass),
            (Direction::Lower, &base, Verdict::Inconclusive),
        ] {
            let p = prepare(
                &result(cur, dir),
                &ims,
                &result(&base, dir),
                &ims,
                0.0,
                TestChoice::Quantile,
                30,
            )
            .unwrap();
            let r = decide(p);
            assert_eq!(r.design, "paired");
            assert_eq!(r.verdict, verdict, "{dir:?}: {}", r.reason);
            assert!((r.difference.unwrap() - if cur == &base { 0.0 } else { 0.05 }).abs() < 1e-9);
        }
        // Within the allowance: not a regression.
        let p = prepare(
            &result(&worse, Direction::Lower),
            &ims,
            &result(&base, Direction::Lower),
            &ims,
            0.1,
            TestChoice::Quantile,
            30,
        )
        .unwrap();
        let r = decide(p);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.reason);
        // The bound is on the difference: at most 0.05 + rounding, below the allowance.
        assert!(r.bound_high.unwrap() < 0.1 && r.bound_high.unwrap() >= 0.05 - 1e-9);
    }

    #[test]
    fn different_images_fall_back_to_two_samples_and_say_so() {
        let base: Vec<f64> = (0..60).map(|i| 0.2 + 0.001 * i as f64).collect();
        let worse: Vec<f64> = (0..60).map(|i| 0.6 + 0.001 * i as f64).collect();
        let p = prepare(
            &result(&worse, Direction::Lower),
            &images(60, "a"),
            &result(&base, Direction::Lower),
            &images(60, "b"),
            0.0,
            TestChoice::Quantile,
            30,
        )
        .unwrap();
        let r = decide(p);
        assert_eq!(r.design, "two-sample");
        assert!(
            r.design_reason.contains("two-sample"),
            "{}",
            r.design_reason
        );
        assert_eq!(r.verdict, Verdict::Fail, "{}", r.reason);
        assert!(r.pairs.is_empty());
    }

    #[test]
    fn the_paired_regression_test_holds_alpha_at_the_allowance() {
        // Nulls at the boundary: median worsening exactly m, skewed and discrete.
        use rand::{Rng, SeedableRng};
        let s = gate::Settings::default();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let ims = images(40, "h");
        let trials = 2000;
        for (name, draw) in [("skewed", 0usize), ("discrete", 1), ("symmetric", 2)] {
            let mut wrong = 0;
            for _ in 0..trials {
                let base: Vec<f64> = (0..40).map(|_| rng.random::<f64>()).collect();
                let cur: Vec<f64> = base
                    .iter()
                    .map(|b| {
                        let u: f64 = rng.random();
                        let w = match draw {
                            // Exponential shifted so its median is 0.
                            0 => -u.ln() - std::f64::consts::LN_2,
                            1 => [-1.0, 0.0, 0.0, 1.0][rng.random_range(0..4)],
                            _ => u - 0.5,
                        };
                        b + 0.1 + w
                    })
                    .collect();
                let p = prepare(
                    &result(&cur, Direction::Lower),
                    &ims,
                    &result(&base, Direction::Lower),
                    &ims,
                    0.1,
                    TestChoice::Quantile,
                    30,
                )
                .unwrap();
                let d = gate::decide(&[Some(&p.evaluation)], &s).remove(0);
                if p.decided(d).verdict == Verdict::Fail {
                    wrong += 1;
                }
            }
            let rate = wrong as f64 / trials as f64;
            // alpha = 0.05 plus three binomial standard errors of the simulation.
            assert!(
                rate <= 0.05 + 3.0 * (0.05f64 * 0.95 / trials as f64).sqrt(),
                "{name}: {rate}"
            );
        }
    }
}
