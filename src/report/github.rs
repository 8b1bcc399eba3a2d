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
            "{}: {} passed, {} failed, {} inconclusive, {} errors, {} not run, {} ignored, {} advisory (exit {})",
            r.provenance.suite, c.pass, c.fail, c.inconclusive, c.error, c.not_run, c.ignored, c.advisory, r.exit_code
        ))
    ));
    o
}
