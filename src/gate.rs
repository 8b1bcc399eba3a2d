//! From measurements to verdicts. Two steps, each with typed results:
//!
//! 1. **evaluate**: each audit × method × variant becomes an [`Evaluation`]: two one-sided
//!    claims about the per-image values (the PASS claim on the good side of the threshold,
//!    the FAIL claim on the bad side), each with an exact or distribution-free p-value and a
//!    confidence bound that is exactly dual to it.
//! 2. **decide**: every claim of the run enters ONE Holm family (2 per evaluation), so the
//!    probability of any wrong PASS or FAIL in the run is at most alpha whatever the
//!    dependence between audits (Holm 1979; closed testing). A claim not rejected leaves the
//!    result INCONCLUSIVE. The bound printed beside a verdict is computed at the level at
//!    which its claim was tested, so a PASS never sits next to a bound that crosses the
//!    threshold.
//!
//! Tests: the default is the exact binomial quantile test (distribution-free, valid for skewed
//! and discrete metrics; values equal to the threshold count against both claims); Wilcoxon's
//! signed-rank test is selectable and is then a claim about the pseudo-median; two-sample
//! audits use Hoeffding's bound on the relative effect; proportions use the exact binomial
//! test with Clopper-Pearson bounds.
use crate::claim::Direction;
use crate::stats::{self, Good};
use serde::{Deserialize, Serialize};

/// The verdict of one audit result.
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

pub use crate::claim::TestChoice;

/// Decision settings (suite and config; never in audit code).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// Bound on the probability of any wrong PASS or FAIL in the run.
    pub alpha: f64,
    /// Fewer usable images than this: INCONCLUSIVE.
    pub min_n: usize,
    pub bootstrap_resamples: usize,
    /// Confidence of the descriptive (not decisive) bootstrap interval of the median.
    pub confidence: f64,
    /// Power assumed when estimating how many images would decide an INCONCLUSIVE result.
    pub power: f64,
    pub seed: u64,
    /// Sequential `check`: results that stopped as soon as they were decided (or ran to the
    /// cap) are tested with the anytime-valid form of the quantile test.
    #[serde(default)]
    pub sequential: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            alpha: 0.05,
            min_n: 30,
            bootstrap_resamples: 10_000,
            confidence: 0.95,
            power: 0.8,
            seed: 0,
            sequential: false,
        }
    }
}

/// The rule every report prints (README, `xaudit docs`, HTML).
pub fn decision_rule(s: &Settings) -> String {
    format!(
        "Each result makes two one-sided claims about its per-image values: PASS (the values lie \
         on the good side of the threshold) and FAIL (on the bad side). By default a claim is an \
         exact binomial test of a quantile (the median unless the suite sets `quantile`): PASS \
         means more than a share q of the images lie strictly on the good side; values equal to \
         the threshold count against both claims. `test = \"wilcoxon\"` tests the pseudo-median \
         instead (Hodges-Lehmann estimate); two-sample audits bound the rank-biserial effect with \
         Hoeffding's inequality; proportions use the exact binomial test. All claims of the run \
         (two per result) form one Holm family at alpha = {alpha}, so the probability of any \
         wrong PASS or FAIL in this run is at most {alpha}. A result neither of whose claims \
         is rejected is INCONCLUSIVE, as is one with fewer than {min_n} usable images, and a PASS \
         whose audit could not show its own precondition (a targeted attack significantly \
         stronger than random-sign, one-sided test at alpha = {alpha}); such a check can only \
         withhold a PASS, so the error budget stands. The bound shown beside a verdict is the \
         one-sided order-statistic (or \
         Clopper-Pearson, or Hoeffding) confidence bound at the Holm level at which the claim \
         was tested.{sequential}",
        alpha = s.alpha,
        min_n = s.min_n,
        sequential = if s.sequential {
            " Sequential mode (the default of `check`; `--fixed-n` turns it off): each audit \
             measures the images in a seeded random order and looks at its values after 10 \
             images and then each time their count has grown by half; a result using the \
             quantile test stops as soon as either claim's anytime-valid p-value is at most \
             alpha / (the run's claim count), and otherwise runs to the cap (--max-images, or \
             every image). Its claims are then tested with a mixture-martingale test of the same \
             quantile (the likelihood ratio of the side counts mixed uniformly over the \
             alternative rates; by Ville's inequality 1 / its largest value over the looks is a \
             p-value valid however the stop was chosen), and the bound shown is the matching \
             confidence-sequence bound. Its p-values enter the same Holm family, so the error \
             bound above holds. Results of other tests (Wilcoxon, two-sample, proportions) and \
             audits that need every image run to the cap and use their fixed-n tests; a \
             precondition checked at several looks is tested at alpha / (the number of looks)."
        } else {
            ""
        }
    )
}

fn good_of(dir: Direction) -> Good {
    match dir {
        Direction::Lower => Good::Lower,
        Direction::Higher => Good::Higher,
    }
}

/// What the decision needs to compute a bound at any level.
#[derive(Debug, Clone)]
pub enum Source {
    /// Exact quantile test on the values.
    Quantile {
        x: Vec<f64>,
        tau: f64,
        q: f64,
        good: Good,
    },
    /// Wilcoxon signed-rank test through Walsh averages.
    Walsh { x: Vec<f64>, tau: f64, good: Good },
    /// Two-sample relative effect (Hoeffding), oriented so that a larger r is good.
    Effect { test: stats::EffectTest },
    /// Anytime-valid quantile test of a sequential run: (arrival position, value) in arrival
    /// order and the looks taken (see `stats::replay`).
    Anytime {
        x: Vec<(usize, f64)>,
        looks: Vec<usize>,
        q: f64,
        good: Good,
    },
    /// k of n images violate; good = Lower means a rate below `tau` is good.
    Proportion {
        k: u64,
        n: u64,
        tau: f64,
        good: Good,
    },
}

impl Source {
    /// Bound of the PASS claim (`pass`) or the FAIL claim at one-sided level `a`; `None`
    /// when `n` is too small to bound it at that level.
    pub fn bound(&self, pass: bool, a: f64) -> Option<f64> {
        match self {
            Source::Quantile { x, q, good, .. } => stats::quantile_bound(x, *q, *good, pass, a),
            Source::Walsh { x, good, .. } => stats::walsh_bound(x, *good, pass, a),
            Source::Anytime { x, looks, q, good } => {
                stats::anytime_bound(x, looks, *q, *good, pass, a)
            }
            // The PASS bound of r is a lower bound, the FAIL bound an upper one.
            Source::Effect { test } => Some(stats::effect_bound(test, pass, a)),
            Source::Proportion { k, n, good, .. } => {
                let upper = (*good == Good::Lower) == pass;
                Some(stats::rate_bound(*k, *n, a, upper))
            }
        }
    }

    /// Images that would likely decide a claim at the observed effect (normal approximation,
    /// one-sided level `a`, `power`); `None` when the observed effect sits on the boundary.
    pub fn images_needed(&self, a: f64, power: f64) -> Option<f64> {
        let either = |good: f64, p0: f64, bad: f64| {
            stats::images_to_decide(good, p0, a, power)
                .or_else(|| stats::images_to_decide(bad, 1.0 - p0, a, power))
        };
        match self {
            Source::Quantile { x, tau, q, good } => {
                let t = stats::quantile_test(x, *tau, *q, *good);
                let n = t.n.max(1) as f64;
                either(t.good as f64 / n, *q, t.bad as f64 / n)
            }
            // The anytime test has no closed-form sample size; the run already went as far
            // as it could (the cap).
            Source::Anytime { .. } => None,
            Source::Walsh { x, tau, good } => {
                // The share of Walsh averages on one side has variance ~ 1/(3n) under H0.
                let t = stats::walsh_test(x, *tau, *good);
                let total = (t.good + t.bad + t.ties).max(1) as f64;
                let d = (t.good.max(t.bad) as f64 / total - 0.5).max(0.0);
                let z = stats::normal_ppf(1.0 - a) + stats::normal_ppf(power);
                (d > 0.0).then(|| z * z / (3.0 * d * d))
            }
            Source::Effect { test } => {
                let d = (test.theta - test.theta0).abs();
                // Hoeffding: the smaller group needs ln(1/a) / (2 d^2) images.
                (d > 0.0).then(|| (1.0 / a).ln() / (2.0 * d * d))
            }
            Source::Proportion { k, n, tau, good } => {
                let rate = *k as f64 / (*n).max(1) as f64;
                match good {
                    Good::Lower => either(1.0 - rate, 1.0 - tau, rate),
                    Good::Higher => either(rate, *tau, 1.0 - rate),
                }
            }
        }
    }
}

/// The typed test result of one audit × method × variant, before the decision.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub n: usize,
    /// Two-sample audits: the reference group's size.
    pub reference_n: Option<usize>,
    /// `quantile-binomial`, `wilcoxon-signed-rank`, `hoeffding-relative-effect` or `binomial`.
    pub test: &'static str,
    pub claim_pass: String,
    pub claim_fail: String,
    pub quantile: Option<f64>,
    /// The quantity the claims are about (the median, a quantile, the Hodges-Lehmann
    /// pseudo-median, the rank-biserial r, a rate), and its name.
    pub estimate: f64,
    pub estimate_label: String,
    /// Observations strictly on the good and bad sides and equal to the threshold (images,
    /// Walsh averages for Wilcoxon); `None` where the test does not count.
    pub good: Option<usize>,
    pub bad: Option<usize>,
    pub ties: Option<usize>,
    pub p_pass: f64,
    pub p_fail: f64,
    pub threshold: f64,
    pub direction: Direction,
    pub source: Source,
    /// Evidence a PASS also needs (see `audit::Requirement`); none by default.
    pub requirements: Vec<crate::audit::Requirement>,
    /// Sequential runs: the number of looks taken (the p-values are anytime-valid).
    pub looks: Option<usize>,
}

/// Median, spread and a bootstrap interval: context for readers, not used by the decision.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Descriptive {
    pub median: Option<f64>,
    pub mean: Option<f64>,
    pub q25: Option<f64>,
    pub q75: Option<f64>,
    /// Two-sided bootstrap interval of the median (descriptive only).
    pub median_ci_low: Option<f64>,
    pub median_ci_high: Option<f64>,
    pub median_ci_method: Option<String>,
    pub median_ci_confidence: f64,
}

fn fin(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// Descriptive statistics of `x` with a seeded BCa interval of the median.
pub fn describe(x: &[f64], s: &Settings, seed: u64) -> Descriptive {
    let ci = stats::bootstrap_ci(
        x,
        stats::Statistic::Median,
        s.confidence,
        s.bootstrap_resamples,
        seed,
    );
    Descriptive {
        median: fin(stats::median(x)),
        mean: fin(stats::mean(x)),
        q25: fin(stats::quantile(x, 0.25)),
        q75: fin(stats::quantile(x, 0.75)),
        median_ci_low: fin(ci.low),
        median_ci_high: fin(ci.high),
        median_ci_method: Some(ci.method.to_string()),
        median_ci_confidence: s.confidence,
    }
}

fn pct(q: f64) -> String {
    crate::fmt::percent(q)
}

/// The quantile named for a claim on the good side with share `q`.
fn quantile_name(q: f64, dir: Direction) -> String {
    let level = match dir {
        Direction::Lower => q,
        Direction::Higher => 1.0 - q,
    };
    if (level - 0.5).abs() < 1e-12 {
        "median".into()
    } else {
        format!("{}-quantile", trim(level))
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One-sample evaluation of `x` (per-image values of `metric`) against `threshold`.
pub fn one_sample(
    x: &[f64],
    metric: &str,
    threshold: f64,
    dir: Direction,
    quantile: f64,
    test: TestChoice,
) -> Evaluation {
    let good = good_of(dir);
    let (sym, anti) = match dir {
        Direction::Lower => ("<", ">"),
        Direction::Higher => (">", "<"),
    };
    match test {
        TestChoice::Quantile => {
            let t = stats::quantile_test(x, threshold, quantile, good);
            let name = quantile_name(quantile, dir);
            let estimate = stats::quantile(
                x,
                match dir {
                    Direction::Lower => quantile,
                    Direction::Higher => 1.0 - quantile,
                },
            );
            let share = |q: f64| pct(q);
            Evaluation {
                n: x.len(),
                reference_n: None,
                test: "quantile-binomial",
                claim_pass: format!(
                    "{name} of {metric} {sym} {threshold} (more than {} of images have {metric} {sym} {threshold})",
                    share(quantile)
                ),
                claim_fail: format!(
                    "{name} of {metric} {anti} {threshold} (more than {} of images have {metric} {anti} {threshold})",
                    share(1.0 - quantile)
                ),
                quantile: Some(quantile),
                estimate,
                estimate_label: name,
                good: Some(t.good),
                bad: Some(t.bad),
                ties: Some(t.ties),
                p_pass: t.p_good,
                p_fail: t.p_bad,
                threshold,
                direction: dir,
                source: Source::Quantile {
                    x: x.to_vec(),
                    tau: threshold,
                    q: quantile,
                    good,
                },
                requirements: Vec::new(),
                looks: None,
            }
        }
        TestChoice::Wilcoxon => {
            let t = stats::walsh_test(x, threshold, good);
            Evaluation {
                n: x.len(),
                reference_n: None,
                test: "wilcoxon-signed-rank",
                claim_pass: format!(
                    "pseudo-median of {metric} {sym} {threshold} (Wilcoxon signed-rank; assumes a symmetric distribution)"
                ),
                claim_fail: format!("pseudo-median of {metric} {anti} {threshold}"),
                quantile: None,
                estimate: stats::hodges_lehmann(x),
                estimate_label: "pseudo-median (Hodges-Lehmann)".into(),
                good: Some(t.good),
                bad: Some(t.bad),
                ties: Some(t.ties),
                p_pass: t.p_good,
                p_fail: t.p_bad,
                threshold,
                direction: dir,
                source: Source::Walsh {
                    x: x.to_vec(),
                    tau: threshold,
                    good,
                },
                requirements: Vec::new(),
                looks: None,
            }
        }
    }
}

/// The anytime-valid quantile test of a sequential run: the same claims, counts and
/// estimate as the fixed-n quantile test, with the mixture-martingale p-values over the looks
/// taken (`x`: (arrival position, value) in arrival order; `looks`: the position counts after
/// which the run looked, each a look it actually took).
pub fn one_sample_anytime(
    x: &[(usize, f64)],
    looks: &[usize],
    metric: &str,
    threshold: f64,
    dir: Direction,
    quantile: f64,
) -> Evaluation {
    let values: Vec<f64> = x.iter().map(|p| p.1).collect();
    let mut e = one_sample(
        &values,
        metric,
        threshold,
        dir,
        quantile,
        TestChoice::Quantile,
    );
    let good = good_of(dir);
    let t = stats::replay(x, looks, threshold, quantile, good);
    e.test = "quantile-anytime";
    e.p_pass = t.p_good();
    e.p_fail = t.p_bad();
    e.looks = Some(looks.len());
    e.source = Source::Anytime {
        x: x.to_vec(),
        looks: looks.to_vec(),
        q: quantile,
        good,
    };
    e
}

/// Two-sample evaluation: the audited group `x` against `reference`, by the rank-biserial
/// effect r = 2 P(X > Y) + P(X = Y) - 1 (Higher: x tends to be larger by at least
/// `threshold`).
pub fn two_sample(
    x: &[f64],
    reference: &[f64],
    metric: &str,
    threshold: f64,
    dir: Direction,
) -> Evaluation {
    // Lower: x tends to be smaller, i.e. the effect of the reference over x is > threshold.
    let test = match dir {
        Direction::Higher => stats::effect_test(x, reference, threshold),
        Direction::Lower => stats::effect_test(reference, x, threshold),
    };
    let word = match dir {
        Direction::Higher => "higher",
        Direction::Lower => "lower",
    };
    Evaluation {
        n: x.len(),
        reference_n: Some(reference.len()),
        test: "hoeffding-relative-effect",
        claim_pass: format!(
            "{metric} {word} than in the reference group by a rank-biserial effect r > {threshold}"
        ),
        claim_fail: format!(
            "rank-biserial effect r < {threshold} ({metric} not {word} by that much)"
        ),
        quantile: None,
        estimate: test.r,
        estimate_label: "rank-biserial r".into(),
        good: None,
        bad: None,
        ties: None,
        p_pass: test.p_good,
        p_fail: test.p_bad,
        threshold,
        // r is oriented so that larger is good (see above).
        direction: Direction::Higher,
        source: Source::Effect { test },
        requirements: Vec::new(),
        looks: None,
    }
}

/// Exact binomial evaluation of `k` violating images among `n` against a rate `threshold`.
pub fn proportion(k: u64, n: u64, what: &str, threshold: f64, dir: Direction) -> Evaluation {
    let t = threshold.clamp(0.0, 1.0);
    let b = |kk: u64, p: f64| stats::binom_sf(kk, n, p);
    // P(Bin(n, t) <= k) and P(Bin(n, t) >= k).
    let below = 1.0 - b(k + 1, t);
    let above = b(k, t);
    let (p_pass, p_fail, sym, anti) = match dir {
        Direction::Lower => (below, above, "<", ">"),
        Direction::Higher => (above, below, ">", "<"),
    };
    let rate = k as f64 / n.max(1) as f64;
    Evaluation {
        n: n as usize,
        reference_n: None,
        test: "binomial",
        claim_pass: format!("share of images {what} {sym} {threshold}"),
        claim_fail: format!("share of images {what} {anti} {threshold}"),
        quantile: None,
        estimate: rate,
        estimate_label: "share of images".into(),
        good: Some(match dir {
            Direction::Lower => (n - k) as usize,
            Direction::Higher => k as usize,
        }),
        bad: Some(match dir {
            Direction::Lower => k as usize,
            Direction::Higher => (n - k) as usize,
        }),
        ties: Some(0),
        p_pass: p_pass.clamp(0.0, 1.0),
        p_fail: p_fail.clamp(0.0, 1.0),
        threshold,
        direction: dir,
        source: Source::Proportion {
            k,
            n,
            tau: t,
            good: good_of(dir),
        },
        requirements: Vec::new(),
        looks: None,
    }
}

/// The outcome of the decision for one evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: String,
    pub p_pass_adjusted: Option<f64>,
    pub p_fail_adjusted: Option<f64>,
    /// One-sided level at which the decisive claim (or, when undecided, both) was tested.
    pub level: Option<f64>,
    /// The decision's bounds on the estimate at `level` (one side for PASS and FAIL).
    pub bound_low: Option<f64>,
    pub bound_high: Option<f64>,
    /// INCONCLUSIVE: images that would likely decide it at the observed effect.
    pub images_to_decide: Option<f64>,
}

/// Holm over `p`: (adjusted p, rejected, level at which each hypothesis was tested; the
/// non-rejected ones carry the level where the procedure stopped).
pub fn holm_levels(p: &[f64], alpha: f64) -> (Vec<f64>, Vec<bool>, Vec<f64>) {
    let m = p.len();
    let adj = stats::holm(p);
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut rejected = vec![false; m];
    let mut level = vec![0.0; m];
    let mut stop: Option<f64> = None;
    for (r, &i) in idx.iter().enumerate() {
        let l = alpha / (m - r) as f64;
        match stop {
            None if p[i] <= l => {
                rejected[i] = true;
                level[i] = l;
            }
            None => {
                stop = Some(l);
                level[i] = l;
            }
            Some(s) => level[i] = s,
        }
    }
    (adj, rejected, level)
}

fn fmt_p(p: f64) -> String {
    crate::fmt::p(Some(p))
}

fn fmt_v(v: Option<f64>) -> String {
    crate::fmt::num(v)
}

/// Decides every evaluation under one error budget (see the module docs). `None` entries
/// are results without a test (not run, errors); they get no decision.
pub fn decide(evals: &[Option<&Evaluation>], s: &Settings) -> Vec<Option<Decision>> {
    // The family: both claims of every evaluation with enough images.
    let mut claims: Vec<(usize, bool, f64)> = Vec::new();
    for (i, e) in evals.iter().enumerate() {
        let Some(e) = e else { continue };
        if e.n >= s.min_n && e.reference_n.is_none_or(|r| r >= s.min_n) {
            claims.push((i, true, e.p_pass));
            claims.push((i, false, e.p_fail));
        }
    }
    let family = claims.len();
    let p: Vec<f64> = claims.iter().map(|c| c.2).collect();
    let (adj, rej, lev) = holm_levels(&p, s.alpha);
    let a_plan = s.alpha / family.max(2) as f64;
    let mut out: Vec<Option<Decision>> = evals
        .iter()
        .map(|e| {
            e.map(|e| {
                let n_min = e.n.min(e.reference_n.unwrap_or(e.n));
                Decision {
                    verdict: Verdict::Inconclusive,
                    reason: format!(
                        "n = {n_min} usable images, below the minimum of {}",
                        s.min_n
                    ),
                    p_pass_adjusted: None,
                    p_fail_adjusted: None,
                    level: None,
                    bound_low: None,
                    bound_high: None,
                    images_to_decide: Some(
                        e.source
                            .images_needed(a_plan, s.power)
                            .unwrap_or(0.0)
                            .max(s.min_n as f64)
                            .ceil(),
                    ),
                }
            })
        })
        .collect();
    // Per evaluation: (pass: adj, rejected, level), (fail: ...).
    let mut per: Vec<[Option<(f64, bool, f64)>; 2]> = vec![[None, None]; evals.len()];
    for (k, (i, pass, _)) in claims.iter().enumerate() {
        per[*i][usize::from(!*pass)] = Some((adj[k], rej[k], lev[k]));
    }
    for (i, e) in evals.iter().enumerate() {
        let (Some(e), [Some(pp), Some(pf)]) = (e, per[i]) else {
            continue;
        };
        let Some(d) = out[i].as_mut() else { continue };
        d.p_pass_adjusted = Some(pp.0);
        d.p_fail_adjusted = Some(pf.0);
        let upper_for_pass = e.direction == Direction::Lower;
        let place = |d: &mut Decision, pass: bool, v: Option<f64>| {
            // The PASS bound of a lower-is-better claim is an upper bound, and so on.
            if pass == upper_for_pass {
                d.bound_high = v;
            } else {
                d.bound_low = v;
            }
        };
        let label = &e.estimate_label;
        let est = fmt_v(fin(e.estimate));
        let conf = |l: f64| pct(1.0 - l);
        let side = |pass: bool| {
            if pass == upper_for_pass {
                "upper"
            } else {
                "lower"
            }
        };
        // A rejected claim decides: PASS before FAIL (both cannot be rejected, see the tests).
        let decided = [(true, pp, Verdict::Pass), (false, pf, Verdict::Fail)]
            .into_iter()
            .find(|(_, c, _)| c.1);
        if let Some((pass, (adj, _, level), verdict)) = decided {
            let b = e.source.bound(pass, level);
            place(d, pass, b);
            d.verdict = verdict;
            d.level = Some(level);
            d.images_to_decide = None;
            d.reason = format!(
                "{}: {label} {est}, one-sided {} {} bound {} (Holm level {}, adjusted p = {}){}",
                if pass { &e.claim_pass } else { &e.claim_fail },
                conf(level),
                side(pass),
                fmt_v(b),
                fmt_p(level),
                fmt_p(adj),
                match e.looks {
                    Some(k) => format!(
                        "; anytime-valid over {k} look(s), decided with {} images",
                        e.n
                    ),
                    None => String::new(),
                }
            );
            // A PASS that rests on evidence the audit could not show is not a PASS. (This
            // only ever turns a PASS into INCONCLUSIVE, so it adds no wrong verdict.)
            if let Some(r) = e
                .requirements
                .iter()
                .find(|r| r.p.is_nan() || r.p > s.alpha)
            {
                if pass {
                    d.verdict = Verdict::Inconclusive;
                    d.reason = format!(
                        "the claim held, but not shown: {} (p = {} > alpha = {}); {}",
                        r.what,
                        fmt_p(r.p),
                        s.alpha,
                        d.reason
                    );
                }
            }
        } else {
            // Both claims undecided at the level where Holm stopped.
            let l = pp.2.min(pf.2);
            place(d, true, e.source.bound(true, l));
            place(d, false, e.source.bound(false, l));
            d.verdict = Verdict::Inconclusive;
            d.level = Some(l);
            d.images_to_decide = e.source.images_needed(a_plan, s.power).map(|v| v.ceil());
            let more = match d.images_to_decide {
                _ if e.looks.is_some() => format!(
                    "; anytime-valid over {} look(s), still undecided with {} images (the cap: more images, --max-images, or --fixed-n for the more powerful fixed-n test)",
                    e.looks.unwrap_or(0),
                    e.n
                ),
                Some(v) if v > e.n as f64 => format!(
                    "; about {v:.0} images would likely decide it at the observed effect ({} power)",
                    pct(s.power)
                ),
                Some(_) => String::new(),
                None => "; the observed effect sits on the threshold, so more images are unlikely to decide it".into(),
            };
            d.reason = format!(
                "neither claim shown at level {}: {label} {est}, {} bounds [{}, {}] contain {}{more}",
                fmt_p(l),
                conf(l),
                fmt_v(d.bound_low),
                fmt_v(d.bound_high),
                e.threshold
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide1(e: &Evaluation, s: &Settings) -> Decision {
        decide(&[Some(e)], s).remove(0).unwrap()
    }

    #[test]
    fn clear_cases_get_the_right_verdict() {
        let s = Settings::default();
        let low: Vec<f64> = (0..50).map(|i| 0.1 + 0.001 * i as f64).collect();
        for test in [TestChoice::Quantile, TestChoice::Wilcoxon] {
            let e = one_sample(&low, "m", 0.5, Direction::Lower, 0.5, test);
            let d = decide1(&e, &s);
            assert_eq!(d.verdict, Verdict::Pass, "{test:?}: {}", d.reason);
            assert!(d.bound_high.unwrap() < 0.5);
            let e = one_sample(&low, "m", 0.5, Direction::Higher, 0.5, test);
            let d = decide1(&e, &s);
            assert_eq!(d.verdict, Verdict::Fail, "{}", d.reason);
            assert!(d.bound_high.unwrap() < 0.5, "{d:?}");
        }
        let e = one_sample(
            &low[..10],
            "m",
            0.5,
            Direction::Lower,
            0.5,
            TestChoice::Quantile,
        );
        assert_eq!(decide1(&e, &s).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn only_undecided_results_estimate_the_images_needed() {
        let s = Settings::default();
        let low: Vec<f64> = (0..50).map(|i| 0.1 + 0.001 * i as f64).collect();
        let e = one_sample(&low, "m", 0.5, Direction::Lower, 0.5, TestChoice::Quantile);
        let d = decide1(&e, &s);
        assert_eq!(d.verdict, Verdict::Pass);
        assert!(d.images_to_decide.is_none());
        assert!(d.reason.contains("upper bound"), "{}", d.reason);
        let e = one_sample(
            &low[..10],
            "m",
            0.5,
            Direction::Lower,
            0.5,
            TestChoice::Quantile,
        );
        assert!(decide1(&e, &s).images_to_decide.unwrap() >= 30.0);
    }

    #[test]
    fn holm_levels_follow_the_step_down() {
        // The algorithms reference's oracle: p = [0.01, 0.04, 0.03] at 0.05.
        let (adj, rej, lev) = holm_levels(&[0.01, 0.04, 0.03], 0.05);
        assert_eq!(rej, vec![true, false, false]);
        assert!((adj[0] - 0.03).abs() < 1e-12 && (adj[1] - 0.06).abs() < 1e-12);
        assert!((lev[0] - 0.05 / 3.0).abs() < 1e-15);
        assert!((lev[2] - 0.025).abs() < 1e-15 && (lev[1] - 0.025).abs() < 1e-15);
    }

    #[test]
    fn two_sample_fail_claims_share_the_error_budget() {
        // A two-sample FAIL used to be decided by its own 95% interval, outside the Holm
        // family; now its claim is adjusted with every other claim of the run.
        let s = Settings::default();
        let x: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let mut e = two_sample(&x, &x, "entropy", 0.3, Direction::Higher);
        e.p_fail = 0.02;
        e.p_pass = 1.0;
        assert_eq!(decide1(&e, &s).verdict, Verdict::Fail);
        let other = one_sample(&x, "m", 49.5, Direction::Lower, 0.5, TestChoice::Quantile);
        let d = decide(&[Some(&e), Some(&other)], &s);
        let d0 = d[0].as_ref().unwrap();
        assert_eq!(d0.verdict, Verdict::Inconclusive, "{}", d0.reason);
        assert!((d0.p_fail_adjusted.unwrap() - 0.08).abs() < 1e-12);
    }

    #[test]
    fn two_sample_pass_and_fail() {
        let s = Settings::default();
        let a: Vec<f64> = (0..60).map(|i| 0.8 + 0.001 * i as f64).collect();
        let b: Vec<f64> = (0..60).map(|i| 0.5 + 0.001 * i as f64).collect();
        let e = two_sample(&a, &b, "entropy", 0.3, Direction::Higher);
        let d = decide1(&e, &s);
        assert_eq!(d.verdict, Verdict::Pass, "{}", d.reason);
        assert!(d.bound_low.unwrap() > 0.3);
        let c: Vec<f64> = (0..400).map(|i| ((i * 37) % 400) as f64).collect();
        let dd: Vec<f64> = (0..400).map(|i| ((i * 53) % 400) as f64 + 0.5).collect();
        let e = two_sample(&c, &dd, "entropy", 0.3, Direction::Higher);
        let d = decide1(&e, &s);
        assert_eq!(d.verdict, Verdict::Fail, "{}", d.reason);
        assert!(d.bound_high.unwrap() < 0.3);
    }
}
