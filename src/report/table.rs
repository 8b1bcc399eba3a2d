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
    #[tabled(rename = "median [95% CI]")]
    value: String,
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

fn fmt(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.3}"),
        _ => "-".into(),
    }
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
            value: match a.median {
                Some(m) if m.is_finite() => format!(
                    "{} {} [{}, {}]",
                    clean(&a.metric),
                    fmt(Some(m)),
                    fmt(a.ci_low),
                    fmt(a.ci_high)
                ),
                _ => "-".into(),
            },
            threshold: format!("{} {}", a.direction.symbol(), a.threshold),
            n: if a.excluded > 0 {
                format!("{} (-{})", a.n, a.excluded)
            } else {
                a.n.to_string()
            },
            p: a.decisive_p()
                .map(|p| format!("{p:.2e}"))
                .unwrap_or_else(|| "-".into()),
            verdict: match &a.ignored {
                Some(_) => format!("{} (ignored)", a.verdict.label()),
                None => a.verdict.label().to_string(),
            },
        })
        .collect();
    let mut t = Table::new(rows);
    t.with(Style::rounded());
    let c = &r.counts;
    format!(
        "{t}\n{suite}: {} passed, {} failed, {} inconclusive, {} errors, {} not run, {} ignored — gate {} (exit {})\n",
        c.pass,
        c.fail,
        c.inconclusive,
        c.error,
        c.not_run,
        c.ignored,
        if r.exit_code == 0 { "PASSED" } else if r.exit_code == 1 { "FAILED" } else { "ERROR" },
        r.exit_code,
        suite = clean(&r.provenance.suite),
    )
}
