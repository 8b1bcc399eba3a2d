//! GitHub Actions workflow commands: one `::error` annotation per gating failure,
//! `::warning` for non-gating INCONCLUSIVE and ignored failures, then a `::notice` summary.
//! Data and property values are escaped as the runner requires (%, CR, LF; plus `:` and
//! `,` in properties).
use super::Report;
use crate::gate::Verdict;

fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn prop(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    for w in &r.warnings {
        o.push_str(&format!("::warning title=xaudit input::{}\n", data(w)));
    }
    for a in &r.audits {
        if let Some(g) = a.regression.as_ref().filter(|g| g.verdict == Verdict::Fail) {
            o.push_str(&format!(
                "::{} file={},title={}::{}\n",
                if g.gated { "error" } else { "warning" },
                prop(&r.model.path),
                prop(&format!("{} {} ({}) vs baseline", a.code, a.name, a.method)),
                data(&format!("{}; {}", g.line(), g.reason))
            ));
        }
    }
    for a in &r.audits {
        let level = match (a.verdict, a.gated) {
            (Verdict::Fail | Verdict::Error, true) => "error",
            (Verdict::Inconclusive, true) if r.fail_on_inconclusive || a.prerequisite => "error",
            (Verdict::Fail | Verdict::Inconclusive | Verdict::Error, _) => "warning",
            _ => continue,
        };
        let title = format!("{} {} ({})", a.code, a.name, a.method);
        let msg = format!(
            "{}{}: {}; {}",
            a.verdict_text(),
            if a.variant.is_empty() {
                String::new()
            } else {
                format!(" [{}]", a.variant)
            },
            a.stats_line(),
            a.reason
        );
        o.push_str(&format!(
            "::{level} file={},title={}::{}\n",
            prop(&r.model.path),
            prop(&title),
            data(&msg)
        ));
    }
    let c = &r.counts;
    o.push_str(&format!(
        "::notice title=xaudit::{}\n",
        data(&format!(
            "{}: {} passed, {} failed, {} inconclusive, {} errors, {} not run, {} ignored, {} advisory{} (exit {})",
            r.provenance.suite, c.pass, c.fail, c.inconclusive, c.error, c.not_run, c.ignored, c.advisory,
            if r.baseline.is_some() { format!(", {} regressed against the baseline", c.regressed) } else { String::new() },
            r.exit_code
        ))
    ));
    o
}
