//! Terminal rendering: one row per gated result, failures first, then the verdict line.
use super::Report;
use tabled::settings::Style;
use tabled::{Table, Tabled};

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "code")]
    code: String,
    #[tabled(rename = "audit")]
    audit: String,
    #[tabled(rename = "method")]
    method: String,
    #[tabled(rename = "estimate")]
    value: String,
    #[tabled(rename = "decision bound")]
    bound: String,
    #[tabled(rename = "threshold")]
    threshold: String,
    #[tabled(rename = "n")]
    n: String,
    #[tabled(rename = "adj. p")]
    p: String,
    #[tabled(rename = "verdict")]
    verdict: String,
}

/// User text for the terminal: control characters (ANSI escapes, line breaks) shown as `?`
/// so a class name or path cannot rewrite the screen.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Sort key: failures first, then errors, inconclusive, not run, pass.
pub fn order(v: crate::gate::Verdict) -> u8 {
    use crate::gate::Verdict::*;
    match v {
        Fail => 0,
        Error => 1,
        Inconclusive => 2,
        NotRun => 3,
        Pass => 4,
    }
}

#[derive(Tabled)]
struct DeltaRow {
    #[tabled(rename = "code")]
    code: String,
    #[tabled(rename = "audit")]
    audit: String,
    #[tabled(rename = "method")]
    method: String,
    #[tabled(rename = "baseline")]
    baseline: String,
    #[tabled(rename = "current")]
    current: String,
    #[tabled(rename = "difference")]
    difference: String,
    #[tabled(rename = "decision bound")]
    bound: String,
    #[tabled(rename = "design")]
    design: String,
    #[tabled(rename = "regression")]
    verdict: String,
}

/// The baseline comparison: one row per compared result, then what differs between the runs.
fn baseline(r: &Report, audits: &[&super::AuditResult]) -> String {
    let Some(b) = &r.baseline else {
        return String::new();
    };
    let rows: Vec<DeltaRow> = audits
        .iter()
        .filter_map(|a| a.regression.as_ref().map(|g| (a, g)))
        .map(|(a, g)| DeltaRow {
            code: clean(&a.code),
            audit: clean(&if a.variant.is_empty() {
                a.name.clone()
            } else {
                format!("{} [{}]", a.name, a.variant)
            }),
            method: clean(&a.method),
            baseline: super::fmt::num(g.baseline_median),
            current: super::fmt::num(g.current_median),
            difference: super::fmt::signed(g.difference),
            bound: if g.level.is_some() {
                format!(
                    "{} {}",
                    g.bound_text(),
                    g.level
                        .map(|l| super::fmt::percent(1.0 - l))
                        .unwrap_or_default()
                )
            } else {
                "-".into()
            },
            design: format!(
                "{} (n = {})",
                g.design,
                if g.paired_n > 0 {
                    g.paired_n
                } else {
                    g.current_n
                }
            ),
            verdict: if g.verdict == crate::gate::Verdict::Fail && !g.gated {
                format!("{} (not gated)", g.label())
            } else {
                g.label().to_string()
            },
        })
        .collect();
    let mut out = format!(
        "against baseline {} ({} results compared, {} regressed; allowed regression {} unless an audit sets its own; worse = the metric's bad direction):\n",
        clean(&b.path),
        b.compared,
        b.regressed,
        super::fmt::threshold(b.max_regression)
    );
    if !rows.is_empty() {
        let mut t = Table::new(rows);
        t.with(Style::rounded());
        out.push_str(&format!("{t}\n"));
    }
    for d in &b.differences {
        out.push_str(&format!("differs from the baseline: {}\n", clean(d)));
    }
    for u in &b.unmatched {
        out.push_str(&format!("not compared: {}\n", clean(u)));
    }
    out
}

pub fn render(r: &Report) -> String {
    let mut audits: Vec<&super::AuditResult> = r.audits.iter().collect();
    audits.sort_by_key(|a| {
        (
            order(a.verdict),
            a.code.clone(),
            a.method.clone(),
            a.variant.clone(),
        )
    });
    let rows: Vec<Row> = audits
        .iter()
        .map(|a| Row {
            code: clean(&a.code),
            audit: clean(&if a.variant.is_empty() {
                a.name.clone()
            } else {
                format!("{} [{}]", a.name, a.variant)
            }),
            method: clean(&a.method),
            value: format!("{} {}", clean(&a.metric), clean(&a.estimate_text())),
            bound: if a.level.is_some() {
                format!("{} {}", a.bound_text(), a.confidence_text())
            } else {
                "-".into()
            },
            threshold: format!(
                "{} {}",
                a.direction.symbol(),
                super::fmt::threshold(a.threshold)
            ),
            n: if a.excluded > 0 {
                format!("{} (-{})", a.n, a.excluded)
            } else {
                a.n.to_string()
            },
            p: super::fmt::p(a.decisive_p()),
            verdict: a.verdict_text(),
        })
        .collect();
    let mut t = Table::new(rows);
    t.with(Style::rounded());
    let c = &r.counts;
    let notes: String = r
        .audits
        .iter()
        .filter_map(|a| a.note.as_ref().map(|n| (a.method.clone(), n.clone())))
        .collect::<std::collections::BTreeMap<String, String>>()
        .values()
        .map(|n| format!("note: {}\n", clean(n)))
        .collect();
    let warnings: String = r
        .warnings
        .iter()
        .map(|w| format!("warning: {}\n", clean(w)))
        .collect();
    let regressed = if r.baseline.is_some() {
        format!(", {} regressed", c.regressed)
    } else {
        String::new()
    };
    format!(
        "{warnings}{t}\n{notes}{excluded}{base}{suite}: {} passed, {} failed, {} inconclusive, {} errors, {} not run, {} ignored, {} advisory{regressed} — gate {} (exit {})\n",
        c.pass,
        c.fail,
        c.inconclusive,
        c.error,
        c.not_run,
        c.ignored,
        c.advisory,
        if r.exit_code == 0 { "PASSED" } else if r.exit_code == 1 { "FAILED" } else { "ERROR" },
        r.exit_code,
        excluded = exclusions(&audits),
        base = baseline(r, &audits),
        suite = clean(&r.provenance.suite),
    )
}

/// Why images were left out, per result: the count of each reason (the `n` column only says
/// how many).
fn exclusions(audits: &[&super::AuditResult]) -> String {
    audits
        .iter()
        .filter(|a| a.excluded > 0)
        .map(|a| {
            let reasons: Vec<String> = a
                .excluded_reasons
                .iter()
                .map(|(why, k)| format!("{k} {}", clean(why)))
                .collect();
            format!(
                "excluded from {} {} ({}): {}\n",
                clean(&a.code),
                clean(&a.name),
                clean(&a.method),
                reasons.join("; ")
            )
        })
        .collect()
}
