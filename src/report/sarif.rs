//! SARIF 2.1.0 for code-scanning dashboards. Rules carry each audit's documentation;
//! every result carries its level and a message with the statistic, CI and threshold;
//! passed audits are recorded with kind `pass`, audits not run with `notApplicable`,
//! ignored ones with an external suppression and its reason. The document is built as
//! JSON, then round-tripped through serde-sarif's schema-generated types so a field the
//! schema does not know fails here rather than in a viewer.
use super::{AuditResult, Report};
use crate::gate::Verdict;
use serde_json::{json, Value};

pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

fn kind_level(a: &AuditResult, fail_on_inconclusive: bool) -> (&'static str, &'static str) {
    match a.verdict {
        Verdict::Pass => ("pass", "none"),
        Verdict::Fail if a.gated => ("fail", "error"),
        Verdict::Fail => ("fail", "warning"),
        Verdict::Error => ("fail", "error"),
        Verdict::Inconclusive if a.gated && (fail_on_inconclusive || a.prerequisite) => {
            ("fail", "error")
        }
        Verdict::Inconclusive => ("review", "none"),
        Verdict::NotRun => ("notApplicable", "none"),
    }
}

/// A path as a SARIF `uri-reference`: unreserved characters and `/` kept, the rest
/// percent-encoded (spaces, `#`, `%`, non-ASCII...).
pub fn uri(path: &str) -> String {
    let mut o = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn num(v: Option<f64>) -> Value {
    v.filter(|v| v.is_finite())
        .map(Value::from)
        .unwrap_or(Value::Null)
}

pub fn render(r: &Report) -> String {
    let mut codes: Vec<&str> = r.audits.iter().map(|a| a.code.as_str()).collect();
    codes.sort();
    codes.dedup();
    let rules: Vec<Value> = codes
        .iter()
        .map(|c| match r.docs.get(*c) {
            Some(d) => json!({
                "id": d.code,
                "name": d.name,
                "shortDescription": { "text": d.title },
                "fullDescription": { "text": d.what },
                "help": { "text": d.text },
                "properties": { "tags": ["explainability", d.family] }
            }),
            None => json!({ "id": c }),
        })
        .collect();
    let results: Vec<Value> = r
        .audits
        .iter()
        .map(|a| {
            let (kind, level) = kind_level(a, r.fail_on_inconclusive);
            let text = format!(
                "{} {}{} / {}: {} — {}. {}",
                a.code,
                a.name,
                if a.variant.is_empty() { String::new() } else { format!(" [{}]", a.variant) },
                a.method,
                a.verdict_text(),
                a.stats_line(),
                a.reason
            );
            let mut res = json!({
                "ruleId": a.code,
                "ruleIndex": codes.iter().position(|c| *c == a.code).unwrap_or(0),
                "kind": kind,
                "level": level,
                "message": { "text": text },
                "locations": [{ "physicalLocation": { "artifactLocation": { "uri": uri(&r.model.path) } } }],
                "properties": {
                    "method": a.method,
                    "variant": a.variant,
                    "metric": a.metric,
                    "estimate": num(a.claim.as_ref().and_then(|c| c.estimate)),
                    "estimate_label": a.claim.as_ref().map(|c| c.estimate_label.clone()),
                    "bound_low": num(a.bound_low),
                    "bound_high": num(a.bound_high),
                    "level": num(a.level),
                    "threshold": a.threshold,
                    "n": a.n,
                    "excluded": a.excluded,
                    "p_adjusted": num(a.decisive_p()),
                    "verdict": a.verdict.label(),
                    "gated": a.gated,
                    "advisory": a.advisory,
                }
            });
            if let Some(ig) = &a.ignored {
                res["suppressions"] = json!([{ "kind": "external", "justification": ig.reason }]);
            }
            if let Some(g) = &a.regression {
                res["properties"]["regression"] = json!(g.label());
            }
            res
        })
        .collect();
    // A regression against the baseline is a finding of its own.
    let regressions = r.audits.iter().filter_map(|a| {
        let g = a.regression.as_ref().filter(|g| g.verdict == Verdict::Fail)?;
        Some(json!({
            "ruleId": a.code,
            "ruleIndex": codes.iter().position(|c| *c == a.code).unwrap_or(0),
            "kind": "fail",
            "level": if g.gated { "error" } else { "warning" },
            "message": { "text": format!("{} {} / {} vs baseline: {}. {}", a.code, a.name, a.method, g.line(), g.reason) },
            "locations": [{ "physicalLocation": { "artifactLocation": { "uri": uri(&r.model.path) } } }],
            "properties": {
                "method": a.method,
                "variant": a.variant,
                "metric": a.metric,
                "baseline": num(g.baseline_median),
                "current": num(g.current_median),
                "difference": num(g.difference),
                "bound_low": num(g.bound_low),
                "bound_high": num(g.bound_high),
                "bound_of": g.bound_of,
                "design": g.design,
                "max_regression": g.max_regression,
                "p_adjusted": num(g.p_regressed_adjusted),
                "verdict": g.label(),
                "gated": g.gated,
            }
        }))
    });
    let results: Vec<Value> = results.into_iter().chain(regressions).collect();
    let notifications: Vec<Value> = r
        .warnings
        .iter()
        .map(|w| json!({ "level": "warning", "message": { "text": w } }))
        .collect();
    let p = &r.provenance;
    let doc = json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "xaudit",
                "version": p.xaudit_version,
                "rules": rules
            }},
            "invocations": [{
                "executionSuccessful": r.exit_code != 2,
                "exitCode": r.exit_code,
                "commandLine": p.command_line.join(" "),
                "toolExecutionNotifications": notifications,
                "properties": {
                    "libtorch_version": p.libtorch_version,
                    "device": p.device,
                    "threads": p.threads,
                    "seed": r.seed,
                    "decision_rule": r.decision_rule,
                    "model_sha256": r.model.sha256,
                    "suite": p.suite,
                    "suite_sha256": p.suite_sha256,
                    "data_count": p.data_count,
                    "data_sha256": p.data_sha256,
                }
            }],
            "results": results
        }]
    });
    let checked: Result<serde_sarif::sarif::Sarif, _> = serde_json::from_value(doc.clone());
    let out = match checked {
        Ok(s) => serde_json::to_value(&s).unwrap_or(doc),
        Err(_) => doc,
    };
    serde_json::to_string_pretty(&out).unwrap_or_default() + "\n"
}
