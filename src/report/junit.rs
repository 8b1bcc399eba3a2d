//! JUnit XML (testsuites/testsuite/testcase) for CI test viewers: one testsuite per suite,
//! one testcase per audit × method (× variant); FAIL → failure, an audit that could not run
//! → error, NOT RUN and ignored → skipped, a gating INCONCLUSIVE → failure of type
//! `inconclusive`. Provenance travels as testsuite properties. quick-junit escapes text.
use super::{AuditResult, Report};
use crate::gate::Verdict;
use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

fn case_name(a: &AuditResult) -> String {
    let v = if a.variant.is_empty() {
        String::new()
    } else {
        format!(" [{}]", a.variant)
    };
    format!("{} {}{} / {}", a.code, a.name, v, a.method)
}

fn message(a: &AuditResult) -> String {
    format!("{}: {}", a.stats_line(), a.reason)
}

pub fn render(r: &Report) -> String {
    let mut rep = quick_junit::Report::new("xaudit");
    let mut suites: Vec<String> = r.audits.iter().map(|a| a.suite.clone()).collect();
    suites.dedup();
    suites.sort();
    suites.dedup();
    for s in suites {
        let mut ts = TestSuite::new(s.clone());
        let p = &r.provenance;
        for (k, v) in [
            ("xaudit_version", p.xaudit_version.clone()),
            ("libtorch_version", p.libtorch_version.clone()),
            ("device", p.device.clone()),
            ("threads", p.threads.to_string()),
            ("seed", r.seed.to_string()),
            ("model", r.model.path.clone()),
            ("model_sha256", r.model.sha256.clone()),
            ("suite_sha256", p.suite_sha256.clone()),
            ("data", p.data.clone()),
            ("data_count", p.data_count.to_string()),
            ("data_sha256", p.data_sha256.clone()),
            ("command_line", p.command_line.join(" ")),
            ("started", p.started.clone()),
            ("alpha", r.alpha.to_string()),
            ("multiplicity", r.multiplicity.clone()),
            ("decision_rule", r.decision_rule.clone()),
        ] {
            ts.add_property(Property::new(k, v));
        }
        for w in &r.warnings {
            ts.add_property(Property::new("warning", w.clone()));
        }
        if let Some(b) = &r.baseline {
            ts.add_property(Property::new("baseline", b.path.clone()));
        }
        for a in r.audits.iter().filter(|a| a.suite == s) {
            let status = if let Some(ig) = &a.ignored {
                let mut st = TestCaseStatus::skipped();
                st.set_message(format!("ignored ({}): {}", a.verdict.label(), ig.reason));
                st
            } else if a.advisory {
                let mut st = TestCaseStatus::skipped();
                st.set_message(format!("advisory ({}): {}", a.verdict.label(), message(a)));
                st
            } else {
                match a.verdict {
                    Verdict::Pass => TestCaseStatus::success(),
                    Verdict::Fail => {
                        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        st.set_message(message(a)).set_type("threshold");
                        st
                    }
                    Verdict::Inconclusive if r.fail_on_inconclusive || a.prerequisite => {
                        let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        st.set_message(message(a)).set_type("inconclusive");
                        st
                    }
                    Verdict::Inconclusive => {
                        let mut st = TestCaseStatus::skipped();
                        st.set_message(format!("inconclusive (not gating): {}", a.reason));
                        st
                    }
                    Verdict::Error => {
                        let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
                        st.set_message(a.reason.clone()).set_type("error");
                        st
                    }
                    Verdict::NotRun => {
                        let mut st = TestCaseStatus::skipped();
                        st.set_message(format!("not run: {}", a.reason));
                        st
                    }
                }
            };
            let mut tc = TestCase::new(case_name(a), status);
            tc.set_classname(format!("xaudit.{}.{}", a.suite, a.name));
            tc.set_time(Duration::from_secs_f64(a.duration_s.max(0.0)));
            let f = |v: Option<f64>| super::fmt::num(v);
            for (k, v) in [
                ("metric", a.metric.clone()),
                ("estimate", f(a.claim.as_ref().and_then(|c| c.estimate))),
                ("bound_low", f(a.bound_low)),
                ("bound_high", f(a.bound_high)),
                ("level", super::fmt::p(a.level)),
                ("threshold", super::fmt::threshold(a.threshold)),
                ("direction", format!("{:?}", a.direction).to_lowercase()),
                ("n", a.n.to_string()),
                ("excluded", a.excluded.to_string()),
                ("p_adjusted", super::fmt::p(a.decisive_p())),
                ("verdict", a.verdict.label().to_string()),
            ] {
                tc.add_property(Property::new(k, v));
            }
            tc.set_system_out(message(a));
            ts.add_test_case(tc);
            // The baseline comparison is its own test case: a regression fails it.
            if let Some(g) = &a.regression {
                let status = if g.verdict == Verdict::Fail && g.gated {
                    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    st.set_message(g.line()).set_type("regression");
                    st
                } else if g.verdict == Verdict::Fail {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(format!("not gated: {}", g.line()));
                    st
                } else {
                    TestCaseStatus::success()
                };
                let mut tc = TestCase::new(format!("{} vs baseline", case_name(a)), status);
                tc.set_classname(format!("xaudit.{}.{}.baseline", a.suite, a.name));
                for (k, v) in [
                    ("baseline", f(g.baseline_median)),
                    ("current", f(g.current_median)),
                    ("difference", super::fmt::signed(g.difference)),
                    ("bound_low", f(g.bound_low)),
                    ("bound_high", f(g.bound_high)),
                    ("bound_of", g.bound_of.clone()),
                    ("design", g.design.clone()),
                    ("max_regression", super::fmt::threshold(g.max_regression)),
                    ("regression", g.label().to_string()),
                ] {
                    tc.add_property(Property::new(k, v));
                }
                tc.set_system_out(format!("{}; {}", g.line(), g.reason));
                ts.add_test_case(tc);
            }
        }
        rep.add_test_suite(ts);
    }
    rep.to_string().unwrap_or_default()
}
