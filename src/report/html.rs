//! The self-contained HTML compliance report: one file, inline CSS, inline SVG charts,
//! pictures as data URIs, no scripts and no external requests. Rendered with minijinja with
//! HTML auto-escaping, so every user-supplied string (paths, class names, reasons) is escaped;
//! only xaudit's own SVG charts are inserted raw.
use super::{table::order, AuditResult, Report};
use crate::gate::Verdict;
use serde::Serialize;

const TEMPLATE: &str = include_str!("templates/report.html");

fn f(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v:.3}"))
        .unwrap_or_else(|| "–".into())
}

fn p(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2e}")).unwrap_or_else(|| "–".into())
}

fn vclass(a: &AuditResult) -> (String, String) {
    if a.ignored.is_some() {
        return ("IGNORED".into(), format!("{} (ignored)", a.verdict.label()));
    }
    let l = a.verdict.label();
    (l.replace(' ', "-"), l.to_string())
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
    median: String,
    mean: String,
    q25: String,
    q75: String,
    ci_low: String,
    ci_high: String,
    ci_method: String,
    threshold: String,
    n: usize,
    excluded: usize,
    excluded_reasons: Vec<String>,
    p: String,
    p_raw: String,
    test: String,
    test_note: Option<String>,
    effect: String,
    vclass: String,
    vlabel: String,
    reason: String,
    rationale: String,
    ignored: Option<String>,
    params: String,
    secondary: Vec<String>,
    summary: Vec<String>,
    histogram: Option<String>,
    curves: Vec<CurveView>,
    counterexamples: Vec<String>,
    examples: Vec<super::Example>,
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
        median: f(a.median),
        mean: f(a.mean),
        q25: f(a.q25),
        q75: f(a.q75),
        ci_low: f(a.ci_low),
        ci_high: f(a.ci_high),
        ci_method: a.ci_method.clone().unwrap_or_default(),
        threshold: format!("{} {}", a.direction.symbol(), a.threshold),
        n: a.n,
        excluded: a.excluded,
        excluded_reasons: a
            .excluded_reasons
            .iter()
            .map(|(r, n)| format!("{n} × {r}"))
            .collect(),
        p: p(a.decisive_p()),
        p_raw: p(if a.verdict == Verdict::Fail {
            a.p_value_bad.or(a.p_value)
        } else {
            a.p_value
        }),
        test: match (&a.test, &a.test_method) {
            (Some(t), Some(m)) => format!("{t} ({m})"),
            _ => "–".into(),
        },
        test_note: a.test_note.clone(),
        effect: match a.effect_ci {
            Some((lo, hi)) => format!("{} [{:.3}, {:.3}]", f(a.effect_size), lo, hi),
            None => f(a.effect_size),
        },
        vclass: vc,
        vlabel: vl,
        reason: a.reason.clone(),
        rationale: if a.rationale.is_empty() {
            "xaudit default (algorithms.md F5)".into()
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
        histogram: (charts && !values.is_empty()).then(|| {
            let t = if a.direction == crate::audit::Direction::Different {
                f64::NAN
            } else {
                a.threshold
            };
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
                    ),
                    caption: format!(
                        "{} against {} (mean and median over images).",
                        c.y_label, c.x_label
                    ),
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
    let evaluated =
        |a: &AuditResult| !matches!(a.verdict, Verdict::NotRun) && (a.n > 0 || a.median.is_some());
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
            let doc = crate::audit::find(c).map(|e| e.doc);
            let results = r
                .audits
                .iter()
                .enumerate()
                .filter(|(_, a)| a.code == *c && evaluated(a))
                .map(|(i, a)| row(a, i, true))
                .collect();
            let first = r.audits.iter().find(|a| a.code == *c);
            Group {
                code: c.to_string(),
                name: first.map(|a| a.name.clone()).unwrap_or_default(),
                title: first.map(|a| a.title.clone()).unwrap_or_default(),
                what: doc.map(|d| d.what).unwrap_or_default().into(),
                why: doc.map(|d| d.why).unwrap_or_default().into(),
                how: doc.map(|d| d.how).unwrap_or_default().into(),
                pass: doc.map(|d| d.pass).unwrap_or_default().into(),
                references: doc
                    .map(|d| d.references.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default(),
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
        fail_on_inconclusive => r.fail_on_inconclusive,
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
