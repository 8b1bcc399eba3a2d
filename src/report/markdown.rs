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

pub fn render(r: &Report) -> String {
    let c = &r.counts;
    let icon = match r.exit_code {
        0 => "✅ PASSED",
        1 => "❌ FAILED",
        _ => "⚠️ ERROR",
    };
    let mut o = format!(
        "## xaudit {}: gate {icon} (exit {})\n\nModel `{}` (sha256 `{}`), suite **{}**, {} images, seed {}. {} passed, {} failed, {} inconclusive, {} errors, {} not run, {} ignored, {} advisory{}. One error budget: the probability of any wrong PASS or FAIL in this run is at most α = {} (Holm over {} claims).\n\n",
        esc(&r.provenance.suite),
        r.exit_code,
        esc(&r.model.path),
        esc(&r.model.sha256.chars().take(12).collect::<String>()),
        esc(&r.provenance.suite),
        r.provenance.data_count,
        r.seed,
        c.pass, c.fail, c.inconclusive, c.error, c.not_run, c.ignored, c.advisory,
        if r.baseline.is_some() { format!(", {} regressed against the baseline", c.regressed) } else { String::new() },
        r.alpha,
        r.family_size,
    );
    for w in &r.warnings {
        o.push_str(&format!("> ⚠️ **Warning.** {}\n\n", esc(w)));
    }
    o.push_str("| verdict | audit | method | metric | estimate | decision bound | threshold | n | adj. p |\n|---|---|---|---|---|---|---|---|---|\n");
    let mut rows: Vec<_> = r.audits.iter().filter(|a| a.claim.is_some()).collect();
    rows.sort_by_key(|a| {
        (
            order(a.verdict),
            a.code.clone(),
            a.method.clone(),
            a.variant.clone(),
        )
    });
    for a in &rows {
        let name = if a.variant.is_empty() {
            a.name.clone()
        } else {
            format!("{} [{}]", a.name, a.variant)
        };
        o.push_str(&format!(
            "| {} | {} {} | {} | {} | {} | {} {} | {} {} | {} | {} |\n",
            a.verdict_text(),
            esc(&a.code),
            esc(&name),
            esc(&a.method),
            esc(&a.metric),
            esc(&a.estimate_text()),
            a.bound_text(),
            a.confidence_text(),
            a.direction.symbol(),
            super::fmt::threshold(a.threshold),
            a.n,
            super::fmt::p(a.decisive_p()),
        ));
    }
    if let Some(b) = &r.baseline {
        o.push_str(&format!(
            "\n**Against baseline** `{}` ({} results compared, **{} regressed**; allowed regression {} unless an audit sets its own)\n\n| regression | audit | method | baseline | current | difference | decision bound | design |\n|---|---|---|---|---|---|---|---|\n",
            esc(&b.path),
            b.compared,
            b.regressed,
            super::fmt::threshold(b.max_regression)
        ));
        for a in &rows {
            let Some(g) = &a.regression else { continue };
            o.push_str(&format!(
                "| {}{} | {} {} | {} | {} | {} | {} {} | {} {} | {} |\n",
                g.label(),
                if g.verdict == crate::gate::Verdict::Fail && !g.gated {
                    " (not gated)"
                } else {
                    ""
                },
                esc(&a.code),
                esc(&a.name),
                esc(&a.method),
                super::fmt::num(g.baseline_median),
                super::fmt::num(g.current_median),
                esc(&g.difference_label),
                super::fmt::signed(g.difference),
                g.bound_text(),
                g.level
                    .map(|l| super::fmt::percent(1.0 - l))
                    .unwrap_or_default(),
                esc(&g.design_reason),
            ));
        }
        for d in &b.differences {
            o.push_str(&format!("\n- differs from the baseline: {}", esc(d)));
        }
        for u in &b.unmatched {
            o.push_str(&format!("\n- not compared: {}", esc(u)));
        }
        o.push('\n');
    }
    let attacks: Vec<_> = rows
        .iter()
        .filter_map(|a| a.attack_text().map(|t| (a, t)))
        .collect();
    if !attacks.is_empty() {
        o.push_str("\n**Attacks**\n\n");
        for (a, t) in attacks {
            o.push_str(&format!(
                "- {} / {}: {}\n",
                esc(&a.code),
                esc(&a.method),
                esc(&t)
            ));
        }
    }
    let excluded: Vec<_> = r.audits.iter().filter(|a| a.excluded > 0).collect();
    if !excluded.is_empty() {
        o.push_str("\n**Excluded images**\n\n");
        for a in excluded {
            let reasons: Vec<String> = a
                .excluded_reasons
                .iter()
                .map(|(why, k)| format!("{k} {}", esc(why)))
                .collect();
            o.push_str(&format!(
                "- {} / {}: {}\n",
                esc(&a.code),
                esc(&a.method),
                reasons.join("; ")
            ));
        }
    }
    let sequential: Vec<_> = r
        .audits
        .iter()
        .filter_map(|a| a.sequential.as_ref().map(|s| (a, s)))
        .collect();
    if !sequential.is_empty() {
        o.push_str("\n**Images used (sequential run)**\n\n");
        for (a, s) in sequential {
            o.push_str(&format!(
                "- {} / {}{}: {}\n",
                esc(&a.code),
                esc(&a.method),
                if a.variant.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", esc(&a.variant))
                },
                esc(&s.describe())
            ));
        }
    }
    let notes: std::collections::BTreeSet<&String> =
        r.audits.iter().filter_map(|a| a.note.as_ref()).collect();
    for n in notes {
        o.push_str(&format!("\n> **Not credited.** {}\n", esc(n)));
    }
    let not_run: Vec<_> = r.audits.iter().filter(|a| a.claim.is_none()).collect();
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
    o.push_str(&format!(
        "\n**Decision rule.** {}\n\nThresholds are xaudit conventions (see `xaudit docs CODE`), not paper values. Full evidence: report.html.\n",
        esc(&r.decision_rule)
    ));
    o
}
