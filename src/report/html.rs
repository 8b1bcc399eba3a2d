//! The self-contained HTML compliance report: one file, inline CSS, inline SVG charts,
//! pictures as data URIs, no scripts and no external requests. Rendered with minijinja with
//! HTML auto-escaping, so every user-supplied string (paths, class names, reasons) is escaped;
//! only xaudit's own SVG charts are inserted raw.
use super::{table::order, AuditResult, Report};
use crate::gate::Verdict;
use serde::Serialize;

const TEMPLATE: &str = include_str!("templates/report.html");

fn f(v: Option<f64>) -> String {
    super::fmt::num(v)
}

fn p(v: Option<f64>) -> String {
    super::fmt::p(v)
}

fn vclass(a: &AuditResult) -> (String, String) {
    if a.ignored.is_some() {
        return ("IGNORED".into(), a.verdict_text());
    }
    (a.verdict.label().replace(' ', "-"), a.verdict_text())
}

fn is_png_data_uri(s: &str) -> bool {
    s.strip_prefix("data:image/png;base64,").is_some_and(|b| {
        b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=')
    })
}

#[derive(Serialize)]
struct Row {
    anchor: String,
    code: String,
    title: String,
    method: String,
    variant: String,
    metric: String,
    estimate: String,
    bound: String,
    confidence: String,
    claim_pass: String,
    claim_fail: String,
    counts: String,
    descriptive: String,
    threshold: String,
    n: usize,
    excluded: usize,
    excluded_reasons: Vec<String>,
    p: String,
    p_raw: String,
    p_adj: String,
    level: String,
    test: String,
    images_to_decide: Option<String>,
    sequential: Option<String>,
    vclass: String,
    vlabel: String,
    reason: String,
    note: Option<String>,
    role: String,
    rationale: String,
    ignored: Option<String>,
    params: String,
    secondary: Vec<String>,
    summary: Vec<String>,
    attack: Option<String>,
    histogram: Option<String>,
    curves: Vec<CurveView>,
    counterexamples: Vec<String>,
    examples: Vec<super::Example>,
    regression: Option<RegressionView>,
}

#[derive(Serialize)]
struct RegressionView {
    label: String,
    vclass: String,
    line: String,
    reason: String,
    baseline: String,
    current: String,
    difference: String,
    bound: String,
    design: String,
    claims: String,
    chart: Option<String>,
}

fn regression_view(a: &AuditResult, charts: bool) -> Option<RegressionView> {
    let g = a.regression.as_ref()?;
    let diffs: Vec<f64> = g.pairs.iter().map(|p| p.current - p.baseline).collect();
    Some(RegressionView {
        label: if g.verdict == Verdict::Fail && !g.gated {
            format!("{} (not gated)", g.label())
        } else {
            g.label().to_string()
        },
        vclass: match g.verdict {
            Verdict::Fail => "FAIL",
            Verdict::Pass => "PASS",
            _ => "INCONCLUSIVE",
        }
        .into(),
        line: g.line(),
        reason: g.reason.clone(),
        baseline: f(g.baseline_median),
        current: f(g.current_median),
        difference: format!(
            "{} {}",
            g.difference_label,
            super::fmt::signed(g.difference)
        ),
        bound: format!(
            "{} on the {} at {}",
            g.bound_text(),
            g.bound_of,
            g.level
                .map(|l| super::fmt::percent(1.0 - l))
                .unwrap_or_else(|| "–".into())
        ),
        design: format!("{}; {}", g.test, g.design_reason),
        claims: format!(
            "REGRESSED: {}. NOT WORSE: {}.",
            g.claim_regressed, g.claim_not_worse
        ),
        chart: (charts && !diffs.is_empty()).then(|| {
            super::plots::paired_differences(
                &diffs,
                g.worse == "higher",
                g.max_regression,
                &a.metric,
            )
        }),
    })
}

#[derive(Serialize)]
struct CurveView {
    svg: String,
    caption: String,
}

#[derive(Serialize)]
struct Group {
    code: String,
    name: String,
    title: String,
    what: String,
    why: String,
    how: String,
    pass: String,
    references: Vec<String>,
    results: Vec<Row>,
}

#[derive(Serialize)]
struct NotRun {
    code: String,
    name: String,
    method: String,
    status: String,
    reason: String,
}

fn row(a: &AuditResult, k: usize, charts: bool) -> Row {
    let (vc, vl) = vclass(a);
    let values: Vec<f64> = a.per_sample.iter().filter_map(|s| s.value).collect();
    let curve_thr = (a.curves.first().map(|c| c.name.as_str()) == Some(a.metric.as_str()))
        .then_some(a.threshold);
    let c = a.claim.as_ref();
    Row {
        anchor: format!("r{k}"),
        code: a.code.clone(),
        title: if a.variant.is_empty() {
            a.name.clone()
        } else {
            format!("{} [{}]", a.name, a.variant)
        },
        method: a.method.clone(),
        variant: a.variant.clone(),
        metric: a.metric.clone(),
        estimate: a.estimate_text(),
        bound: a.bound_text(),
        confidence: a.confidence_text(),
        claim_pass: c.map(|c| c.pass.clone()).unwrap_or_default(),
        claim_fail: c.map(|c| c.fail.clone()).unwrap_or_default(),
        counts: match c {
            Some(c) => match (c.good, c.bad, c.ties) {
                (Some(g), Some(b), Some(t)) => {
                    format!("{g} on the good side, {b} on the bad side, {t} equal to the threshold")
                }
                _ => "–".into(),
            },
            None => "–".into(),
        },
        descriptive: match &a.descriptive {
            Some(d) => format!(
                "median {} (descriptive {} {} interval [{}, {}]), mean {}, IQR {}–{}",
                f(d.median),
                super::fmt::percent(d.median_ci_confidence),
                d.median_ci_method.clone().unwrap_or_default(),
                f(d.median_ci_low),
                f(d.median_ci_high),
                f(d.mean),
                f(d.q25),
                f(d.q75)
            ),
            None => "–".into(),
        },
        threshold: format!(
            "{} {}",
            a.direction.symbol(),
            super::fmt::threshold(a.threshold)
        ),
        n: a.n,
        excluded: a.excluded,
        excluded_reasons: a
            .excluded_reasons
            .iter()
            .map(|(r, n)| format!("{n} × {r}"))
            .collect(),
        p: p(a.decisive_p()),
        p_raw: match c {
            Some(c) => format!("PASS {} / FAIL {}", p(Some(c.p_pass)), p(Some(c.p_fail))),
            None => "–".into(),
        },
        p_adj: format!(
            "PASS {} / FAIL {}",
            p(a.p_pass_adjusted),
            p(a.p_fail_adjusted)
        ),
        level: p(a.level),
        test: c.map(|c| c.test.clone()).unwrap_or_else(|| "–".into()),
        images_to_decide: a.images_to_decide.map(|v| format!("{v:.0}")),
        sequential: a.sequential.as_ref().map(|s| s.describe()),
        vclass: vc,
        vlabel: vl,
        reason: a.reason.clone(),
        note: a.note.clone(),
        role: if a.prerequisite {
            "prerequisite (must PASS)".into()
        } else if a.advisory {
            "advisory (reported, not gating)".into()
        } else {
            "gating".into()
        },
        rationale: if a.rationale.is_empty() {
            "xaudit default convention (see the audit's pass criterion)".into()
        } else {
            a.rationale.clone()
        },
        ignored: a.ignored.as_ref().map(|i| match &i.expires {
            Some(d) => format!("{} (until {d})", i.reason),
            None => i.reason.clone(),
        }),
        params: serde_json::to_string(&a.params).unwrap_or_default(),
        secondary: a
            .secondary
            .iter()
            .map(|(k, s)| format!("{k} {}", f(s.median)))
            .collect(),
        summary: a.summary.iter().map(|(k, v)| format!("{k}: {v}")).collect(),
        attack: a.attack_text(),
        histogram: (charts && !values.is_empty()).then(|| {
            // Two-sample thresholds are effect sizes, not values of the metric.
            let two_sample = c.is_some_and(|c| c.test == "hoeffding-relative-effect");
            let t = if two_sample { f64::NAN } else { a.threshold };
            super::plots::histogram(&values, t, &a.metric)
        }),
        curves: if charts {
            a.curves
                .iter()
                .map(|c| CurveView {
                    svg: super::plots::curve(
                        &c.x,
                        &c.mean,
                        &c.median,
                        &c.x_label,
                        &c.y_label,
                        curve_thr.filter(|_| c.name == a.metric),
                        super::plots::Extra {
                            reference: c.reference.as_deref().zip(c.reference_label.as_deref()),
                            band: (!c.q25.is_empty()).then_some((c.q25.as_slice(), c.q75.as_slice())),
                        },
                    ),
                    caption: match &c.reference_label {
                        Some(r) => format!(
                            "{} against {} (mean, median and the band of the middle half of images), with the {r}'s mean.",
                            c.y_label, c.x_label
                        ),
                        None => format!(
                            "{} against {} (mean, median and the band of the middle half of images).",
                            c.y_label, c.x_label
                        ),
                    },
                })
                .collect()
        } else {
            Vec::new()
        },
        // Only xaudit's own base64 PNG data URIs may be inserted unescaped.
        counterexamples: a
            .summary
            .get("counterexamples")
            .and_then(|v| v.as_array())
            .map(|v| {
                v.iter()
                    .map(|c| {
                        let s =
                            |k: &str| c.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
                        let n = |k: &str| c.get(k).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
                        format!(
                            "{}: {} — {} {:.3} < {} (shrunk in {} steps from: {} operation(s))",
                            s("path"),
                            s("description"),
                            s("similarity_metric"),
                            n("similarity"),
                            n("min_similarity"),
                            n("shrink_steps"),
                            c.get("original_program")
                                .and_then(|p| p.as_array())
                                .map(|p| p.len())
                                .unwrap_or(0)
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        examples: a
            .examples
            .iter()
            .cloned()
            .map(|mut e| {
                for p in &mut e.panels {
                    if !is_png_data_uri(&p.png) {
                        p.png = String::new();
                    }
                }
                e
            })
            .collect(),
        regression: regression_view(a, charts),
    }
}

pub fn render(r: &Report) -> String {
    let mut env = minijinja::Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    if env.add_template("report.html", TEMPLATE).is_err() {
        return "<!DOCTYPE html><p>template error</p>".into();
    }
    let mut idx: Vec<usize> = (0..r.audits.len()).collect();
    idx.sort_by_key(|&i| {
        let a = &r.audits[i];
        (
            order(a.verdict),
            a.code.clone(),
            a.method.clone(),
            a.variant.clone(),
        )
    });
    let evaluated = |a: &AuditResult| !matches!(a.verdict, Verdict::NotRun) && a.claim.is_some();
    let rows: Vec<Row> = idx
        .iter()
        .filter(|&&i| evaluated(&r.audits[i]))
        .map(|&i| row(&r.audits[i], i, false))
        .collect();
    let mut codes: Vec<&str> = r
        .audits
        .iter()
        .filter(|a| evaluated(a))
        .map(|a| a.code.as_str())
        .collect();
    codes.sort();
    codes.dedup();
    let groups: Vec<Group> = codes
        .iter()
        .map(|c| {
            let doc = r.docs.get(*c);
            let results = r
                .audits
                .iter()
                .enumerate()
                .filter(|(_, a)| a.code == *c && evaluated(a))
                .map(|(i, a)| row(a, i, true))
                .collect();
            let first = r.audits.iter().find(|a| a.code == *c);
            let text = |g: fn(&super::AuditDocView) -> &String| {
                doc.map(|d| g(d).clone()).unwrap_or_default()
            };
            Group {
                code: c.to_string(),
                name: first.map(|a| a.name.clone()).unwrap_or_default(),
                title: first.map(|a| a.title.clone()).unwrap_or_default(),
                what: text(|d| &d.what),
                why: text(|d| &d.why),
                how: text(|d| &d.how),
                pass: text(|d| &d.pass),
                references: doc.map(|d| d.references.clone()).unwrap_or_default(),
                results,
            }
        })
        .collect();
    let not_run: Vec<NotRun> = r
        .audits
        .iter()
        .filter(|a| !evaluated(a) || a.ignored.is_some())
        .map(|a| NotRun {
            code: a.code.clone(),
            name: a.name.clone(),
            method: a.method.clone(),
            status: if a.ignored.is_some() {
                format!("{} (ignored)", a.verdict.label())
            } else {
                a.verdict.label().into()
            },
            reason: a
                .ignored
                .as_ref()
                .map(|i| i.reason.clone())
                .unwrap_or_else(|| a.reason.clone()),
        })
        .collect();
    let (banner, banner_class) = match r.exit_code {
        0 => ("PASSED", "PASS"),
        1 => ("FAILED", "FAIL"),
        _ => ("ERROR", "ERROR"),
    };
    let p = &r.provenance;
    let ctx = minijinja::context! {
        schema_version => r.schema_version,
        model => r.model,
        prov => p,
        banner => banner,
        banner_class => banner_class,
        exit_code => r.exit_code,
        alpha => r.alpha,
        min_n => r.min_n,
        multiplicity => r.multiplicity,
        decision_rule => r.decision_rule,
        family_size => r.family_size,
        methods => r
            .methods
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap_or_default()))
            .collect::<Vec<(String, String)>>(),
        notes => r
            .audits
            .iter()
            .filter_map(|a| a.note.clone())
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect::<Vec<String>>(),
        fail_on_inconclusive => r.fail_on_inconclusive,
        warnings => r.warnings,
        baseline => r.baseline,
        counts => r.counts,
        seed => r.seed,
        rows => rows,
        groups => groups,
        not_run => not_run,
        command_line => p.command_line.join(" "),
        config => match (&p.config, &p.config_sha256) {
            (Some(c), Some(h)) => format!("{c} (sha256 {h})"),
            (Some(c), None) => c.clone(),
            _ => "none (defaults and flags)".into(),
        },
        extra_inputs => format!(
            "{} / {}",
            p.random_label_model.as_deref().unwrap_or("–"),
            p.out_of_set.as_deref().unwrap_or("–")
        ),
    };
    env.get_template("report.html")
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| {
            format!(
                "<!DOCTYPE html><p>report rendering failed: {}</p>",
                super::markdown::esc(&e.to_string())
            )
        })
}
