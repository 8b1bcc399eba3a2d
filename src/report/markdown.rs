//! Markdown for a pull-request comment or `$GITHUB_STEP_SUMMARY`: verdict, a summary table
//! with failures first, and what was not run. User text is escaped for tables and HTML.
use super::{table::order, Report};

/// Escapes text for a Markdown table cell (pipes, HTML, line breaks, emphasis).
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => o.push_str("\\|"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '`' | '*' | '_' | '[' | ']' | '\\' => {
                o.push('\\');
                o.push(c);
            }
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn f(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v:.3}"))
        .unwrap_or_else(|| "–".into())
}

pub fn render(r: &Report) -> String {
    let c = &r.counts;
    let icon = match r.exit_code {
        0 => "✅ PASSED",
        1 => "❌ FAILED",
        _ => "⚠️ ERROR",
    };
    let mut o = format!(
        "## xaudit {}: gate {icon} (exit {})\n\nModel `{}` (sha256 `{}`), suite **{}**, {} images, seed {}. {} passed, {} failed, {} inconclusive, {} errors, {} not run, {} ignored. Tests: one-sided Wilcoxon / sign / Mann-Whitney, Holm-adjusted at α = {}.\n\n",
        esc(&r.provenance.suite),
        r.exit_code,
        esc(&r.model.path),
        esc(&r.model.sha256.chars().take(12).collect::<String>()),
        esc(&r.provenance.suite),
        r.provenance.data_count,
        r.seed,
        c.pass, c.fail, c.inconclusive, c.error, c.not_run, c.ignored,
        r.alpha,
    );
    o.push_str("| verdict | audit | method | metric | median [95% CI] | threshold | n | adj. p |\n|---|---|---|---|---|---|---|---|\n");
    let mut rows: Vec<_> = r
        .audits
        .iter()
        .filter(|a| a.n > 0 || a.median.is_some())
        .collect();
    rows.sort_by_key(|a| {
        (
            order(a.verdict),
            a.code.clone(),
            a.method.clone(),
            a.variant.clone(),
        )
    });
    for a in rows {
        let name = if a.variant.is_empty() {
            a.name.clone()
        } else {
            format!("{} [{}]", a.name, a.variant)
        };
        let v = if a.ignored.is_some() {
            format!("{} (ignored)", a.verdict.label())
        } else {
            a.verdict.label().to_string()
        };
        o.push_str(&format!(
            "| {} | {} {} | {} | {} | {} [{}, {}] | {} {} | {} | {} |\n",
            v,
            esc(&a.code),
            esc(&name),
            esc(&a.method),
            esc(&a.metric),
            f(a.median),
            f(a.ci_low),
            f(a.ci_high),
            a.direction.symbol().replace('|', "\\|"),
            a.threshold,
            a.n,
            a.decisive_p()
                .map(|p| format!("{p:.2e}"))
                .unwrap_or_else(|| "–".into()),
        ));
    }
    let not_run: Vec<_> = r
        .audits
        .iter()
        .filter(|a| a.n == 0 && a.median.is_none())
        .collect();
    if !not_run.is_empty() {
        o.push_str("\n**Not evaluated**\n\n");
        for a in not_run {
            o.push_str(&format!(
                "- {} {} / {}: {} — {}\n",
                a.verdict.label(),
                esc(&a.code),
                esc(&a.method),
                esc(&a.name),
                esc(&a.reason)
            ));
        }
    }
    o.push_str("\nThresholds are xaudit conventions (see `xaudit docs CODE`), not paper values. Full evidence: report.html.\n");
    o
}
