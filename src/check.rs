//! `xaudit check`: runs a suite's audits for each method, turns findings into tested,
//! Holm-adjusted verdicts and a gating exit code. Measuring happens in `audit`, deciding in
//! `gate`; this module wires them and applies the configuration (overrides, ignores).
use crate::attribution::{MethodKind, MethodSpec};
use crate::audit::{Finding, RunCtx};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::gate::{self, Settings, Verdict};
use crate::report::{AuditResult, Counts, Ignored, MetricSummary, SampleValue};
use crate::suite::{Gate, Suite};
use std::collections::BTreeMap;
use std::time::Instant;

/// What to run.
pub struct Plan {
    pub gates: Vec<Gate>,
    pub methods: Vec<MethodKind>,
    pub settings: Settings,
    pub fail_on_inconclusive: bool,
    pub fail_on_error: bool,
    pub ignores: Vec<crate::config::IgnoreEntry>,
    /// Today's date (YYYY-MM-DD) for ignore expiry.
    pub today: String,
}

impl Plan {
    /// Suite + configuration + command-line choices.
    pub fn new(
        suite: &Suite,
        cfg: &Config,
        methods: &[MethodKind],
        seed: u64,
        today: &str,
    ) -> Result<Plan> {
        let origin = cfg
            .origin
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "configuration".into());
        let mut gates = suite.gates.clone();
        for (key, o) in &cfg.audits {
            let entry = crate::audit::lookup(key, &origin)?;
            let matching: Vec<&mut Gate> = gates
                .iter_mut()
                .filter(|g| g.entry.doc.code == entry.doc.code)
                .collect();
            if matching.is_empty() {
                return Err(Error::config(
                    &origin,
                    format!("[audits.{key}] overrides an audit that suite `{}` does not run", suite.name),
                    "remove the section, or use a suite that includes the audit (e.g. --suite full)",
                ));
            }
            crate::suite::check_params(entry, &o.params)?;
            for g in matching {
                if let Some(t) = o.threshold {
                    let metric = o.metric.clone().unwrap_or_else(|| g.metric.clone());
                    crate::suite::check_threshold(
                        &metric,
                        t,
                        &format!("[audits.{key}] threshold"),
                        &origin,
                    )?;
                    g.threshold = t;
                }
                if let Some(m) = &o.metric {
                    if !entry.doc.metrics.contains(&m.as_str()) {
                        return Err(Error::config(
                            &origin,
                            format!("[audits.{key}] {} has no metric `{m}`", entry.doc.name),
                            format!("its metrics are {}", entry.doc.metrics.join(", ")),
                        ));
                    }
                    g.metric = m.clone();
                }
                if let Some(r) = &o.rationale {
                    g.rationale = r.clone();
                }
                for (k, v) in &o.params {
                    g.params.insert(k.clone(), v.clone());
                }
            }
        }
        for ig in &cfg.ignore {
            crate::audit::lookup(&ig.audit, &origin)?;
            if let Some(d) = &ig.expires {
                if d.as_str() < today {
                    return Err(Error::config(
                        &origin,
                        format!("the ignore of `{}` expired on {d}", ig.audit),
                        "fix the finding, or renew the ignore with a new expires date and an up-to-date reason, or remove it",
                    ));
                }
            }
            if let Some(m) = &ig.method {
                crate::suite::method(m, &origin)?;
            }
        }
        let mut settings = Settings {
            seed,
            ..Settings::default()
        };
        if let Some(a) = cfg.alpha.or(suite.alpha) {
            settings.alpha = a;
        }
        if let Some(n) = cfg.min_n.or(suite.min_n) {
            settings.min_n = n;
        }
        Ok(Plan {
            gates,
            methods: methods.to_vec(),
            settings,
            fail_on_inconclusive: cfg.fail_on_inconclusive.unwrap_or(true),
            fail_on_error: cfg.fail_on_error.unwrap_or(true),
            ignores: cfg.ignore.clone(),
            today: today.to_string(),
        })
    }

    /// (gate, method) pairs in run order.
    pub fn jobs(&self) -> Vec<(usize, MethodKind)> {
        let mut out = Vec::new();
        for (gi, g) in self.gates.iter().enumerate() {
            let ms = if g.methods.is_empty() {
                &self.methods
            } else {
                &g.methods
            };
            for m in ms {
                // An explicit --method list narrows per-audit lists too.
                if g.methods.is_empty() || self.methods.contains(m) {
                    out.push((gi, *m));
                }
            }
        }
        out
    }
}

/// What a run produced, before rendering.
pub struct Outcome {
    pub audits: Vec<AuditResult>,
    pub counts: Counts,
    pub exit_code: i32,
    pub verdict: String,
}

fn ignore_for<'a>(
    plan: &'a Plan,
    code: &str,
    name: &str,
    method: &str,
) -> Option<&'a crate::config::IgnoreEntry> {
    plan.ignores.iter().find(|ig| {
        (ig.audit.eq_ignore_ascii_case(code) || ig.audit.eq_ignore_ascii_case(name))
            && ig
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && ig
                .expires
                .as_deref()
                .is_none_or(|d| d >= plan.today.as_str())
    })
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn summarise(v: &[Option<f64>]) -> MetricSummary {
    let f: Vec<f64> = v
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    MetricSummary {
        n: f.len(),
        median: finite(crate::stats::median(&f)),
        mean: finite(crate::stats::mean(&f)),
    }
}

fn empty_result(g: &Gate, method: &str, verdict: Verdict, reason: String) -> AuditResult {
    AuditResult {
        code: g.entry.doc.code.into(),
        name: g.entry.doc.name.into(),
        title: g.entry.doc.title.into(),
        suite: g.suite.clone(),
        method: method.into(),
        variant: String::new(),
        metric: g.metric.clone(),
        n: 0,
        excluded: 0,
        excluded_reasons: BTreeMap::new(),
        median: None,
        mean: None,
        q25: None,
        q75: None,
        ci_low: None,
        ci_high: None,
        ci_method: None,
        threshold: g.threshold,
        direction: g.direction,
        rationale: g.rationale.clone(),
        test: None,
        test_method: None,
        test_note: None,
        statistic: None,
        effect_size: None,
        effect_ci: None,
        p_value: None,
        p_adjusted: None,
        p_value_bad: None,
        p_adjusted_bad: None,
        verdict,
        reason,
        gated: true,
        ignored: None,
        per_sample: Vec::new(),
        reference: None,
        secondary: BTreeMap::new(),
        curves: Vec::new(),
        summary: BTreeMap::new(),
        params: serde_json::to_value(&g.params).unwrap_or_default(),
        duration_s: 0.0,
        examples: Vec::new(),
    }
}

/// The `k` best and `k` worst images by the gated value, with their pictures as PNGs.
fn pick_examples(
    r: &AuditResult,
    pics: &BTreeMap<usize, Vec<crate::audit::Panel>>,
    k: usize,
) -> Vec<crate::report::Example> {
    let mut v: Vec<(usize, f64, &str)> = r
        .per_sample
        .iter()
        .filter_map(|s| s.value.map(|v| (s.index, v, s.path.as_str())))
        .filter(|(i, _, _)| pics.contains_key(i))
        .collect();
    // Good end first; ties by data-set position so the choice is deterministic.
    let higher_good = !matches!(r.direction, crate::audit::Direction::Lower);
    v.sort_by(|a, b| {
        let o = a.1.total_cmp(&b.1);
        (if higher_good { o.reverse() } else { o }).then(a.0.cmp(&b.0))
    });
    let k = k.min(v.len() / 2).max(usize::from(v.len() == 1));
    let mut out = Vec::new();
    let mut add = |role: &str, (i, val, path): (usize, f64, &str)| {
        out.push(crate::report::Example {
            role: role.into(),
            index: i,
            path: path.to_string(),
            value: val,
            panels: pics[&i]
                .iter()
                .map(|p| crate::report::PanelImage {
                    label: p.label.clone(),
                    png: crate::render::panel::data_uri(p),
                })
                .collect(),
        });
    };
    for e in v.iter().take(k) {
        add("best", *e);
    }
    for e in v.iter().rev().take(k) {
        add("worst", *e);
    }
    out
}

/// Builds the tested (not yet adjusted) result of one finding.
fn tested(
    run: &RunCtx,
    g: &Gate,
    method: &str,
    f: Finding,
    settings: &Settings,
    seed: u64,
) -> AuditResult {
    let mut r = empty_result(g, method, Verdict::Inconclusive, String::new());
    r.variant = f.variant.clone();
    let col = f
        .metrics
        .get(&g.metric)
        .cloned()
        .unwrap_or_else(|| vec![None; f.index.len()]);
    for (k, i) in f.index.iter().enumerate() {
        let mut excluded = f.excluded[k].clone();
        let v = col.get(k).copied().flatten();
        if excluded.is_none() && !v.is_some_and(f64::is_finite) {
            excluded = Some("non-finite value".into());
        }
        if let Some(e) = &excluded {
            *r.excluded_reasons.entry(e.clone()).or_default() += 1;
        }
        r.per_sample.push(SampleValue {
            index: *i,
            path: run
                .data
                .items
                .get(*i)
                .map(|it| it.path.display().to_string())
                .unwrap_or_else(|| format!("generated #{i}")),
            value: if excluded.is_none() { v } else { None },
            excluded,
        });
    }
    let x: Vec<f64> = r.per_sample.iter().filter_map(|s| s.value).collect();
    r.n = x.len();
    r.excluded = r.per_sample.len() - r.n;
    for (name, c) in &f.metrics {
        if *name != g.metric {
            r.secondary.insert(name.clone(), summarise(c));
        }
    }
    for s in &mut r.per_sample {
        if let Some(n) = f.names.get(&s.index) {
            s.path = n.clone();
        }
    }
    r.examples = pick_examples(&r, &f.examples, 2);
    r.curves = f.curves;
    r.summary = f.summary;
    let t = if g.entry.design == crate::audit::Design::Proportion {
        let (k, n) = f.counts.unwrap_or((0, 0));
        if n == 0 {
            None
        } else {
            Some(gate::proportion(k, n, g.threshold, g.direction, settings))
        }
    } else if g.entry.design == crate::audit::Design::TwoSample {
        let reference = f.reference.get(&g.metric).cloned().unwrap_or_default();
        r.reference = Some(MetricSummary {
            n: reference.len(),
            median: finite(crate::stats::median(&reference)),
            mean: finite(crate::stats::mean(&reference)),
        });
        if x.is_empty() || reference.is_empty() {
            None
        } else {
            Some(gate::two_sample(&x, &reference, settings, seed))
        }
    } else if x.is_empty() {
        None
    } else {
        Some(gate::one_sample(
            &x,
            g.threshold,
            g.direction,
            settings,
            seed,
        ))
    };
    if let Some(t) = t {
        if g.entry.design == crate::audit::Design::Proportion {
            // The unit is a case (image x program), not an image.
            r.n = t.n;
        }
        r.median = finite(t.median);
        r.mean = finite(t.mean);
        r.q25 = finite(t.q25);
        r.q75 = finite(t.q75);
        r.ci_low = finite(t.ci_low);
        r.ci_high = finite(t.ci_high);
        r.ci_method = Some(t.ci_method.clone());
        r.test = Some(t.test.clone());
        r.test_method = Some(t.test_method.clone());
        r.test_note = t.test_note.clone();
        r.statistic = finite(t.statistic);
        r.effect_size = finite(t.effect_size);
        r.effect_ci = t.effect_ci.filter(|(a, b)| a.is_finite() && b.is_finite());
        r.p_value = Some(t.p_good);
        r.p_value_bad = Some(t.p_bad).filter(|p| p.is_finite());
    } else {
        r.reason = "no usable image".into();
    }
    r
}

/// Runs every (gate, method) job; `on_start` is told each job before it runs.
pub fn run(
    run: &RunCtx,
    plan: &Plan,
    mut on_start: impl FnMut(&Gate, MethodKind),
    mut on_done: impl FnMut(&AuditResult),
) -> Result<Outcome> {
    let mut results: Vec<AuditResult> = Vec::new();
    let jobs = plan.jobs();
    // A gate left without any method is reported, never silently dropped.
    for (gi, g) in plan.gates.iter().enumerate() {
        if !jobs.iter().any(|(j, _)| *j == gi) {
            let listed: Vec<&str> = g.methods.iter().map(|m| m.name()).collect();
            results.push(empty_result(
                g,
                "-",
                Verdict::NotRun,
                format!(
                    "none of the selected methods is in this audit's list ({})",
                    listed.join(", ")
                ),
            ));
        }
    }
    for (job, (gi, kind)) in jobs.into_iter().enumerate() {
        let g = &plan.gates[gi];
        on_start(g, kind);
        let method = MethodSpec::with_defaults(kind);
        let passes0 = run.passes();
        let start = Instant::now();
        let outcome = if kind == MethodKind::GradCam {
            run.model
                .require_cam("grad-cam")
                .map_err(|e| Error::NotApplicable(e.to_string()))
        } else {
            Ok(())
        }
        .and_then(|_| (g.entry.measure)(run, &method, &g.params));
        let dt = start.elapsed().as_secs_f64();
        let mut produced = match outcome {
            Ok(findings) => findings
                .into_iter()
                .enumerate()
                .map(|(k, f)| {
                    let seed = crate::rng::tag(g.entry.doc.code)
                        ^ plan.settings.seed.wrapping_add((job * 1000 + k) as u64);
                    tested(run, g, kind.name(), f, &plan.settings, seed)
                })
                .collect::<Vec<_>>(),
            Err(Error::NotApplicable(why)) => {
                let first = why.lines().next().unwrap_or_default().to_string();
                vec![empty_result(g, kind.name(), Verdict::NotRun, first)]
            }
            // Input and configuration errors stop the run (exit 2); they are not audit results.
            Err(
                e @ (Error::Config { .. }
                | Error::Data { .. }
                | Error::Image { .. }
                | Error::Interrupted),
            ) => return Err(e),
            Err(e) => vec![empty_result(
                g,
                kind.name(),
                Verdict::Error,
                e.to_string().lines().next().unwrap_or_default().to_string(),
            )],
        };
        let passes1 = run.passes();
        for r in &mut produced {
            r.duration_s = dt;
            // Engine accounting (images through the model, shared caches included once, in the
            // job that filled them): `make bench` divides these by the model's ceiling.
            r.summary.insert(
                "model_forward_images".into(),
                (passes1.0 - passes0.0).into(),
            );
            r.summary.insert(
                "model_backward_images".into(),
                (passes1.1 - passes0.1).into(),
            );
            on_done(r);
        }
        results.extend(produced);
    }
    Ok(finish(results, plan))
}

/// Holm adjustment over every tested result, verdicts, ignores and the exit code.
pub fn finish(mut results: Vec<AuditResult>, plan: &Plan) -> Outcome {
    let s = &plan.settings;
    let tested: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.p_value.is_some())
        .map(|(i, _)| i)
        .collect();
    let good: Vec<f64> = tested
        .iter()
        .map(|&i| results[i].p_value.unwrap_or(1.0))
        .collect();
    let adj_good = crate::stats::holm(&good);
    let bad_idx: Vec<usize> = tested
        .iter()
        .copied()
        .filter(|&i| results[i].p_value_bad.is_some())
        .collect();
    let bad: Vec<f64> = bad_idx
        .iter()
        .map(|&i| results[i].p_value_bad.unwrap_or(1.0))
        .collect();
    let adj_bad = crate::stats::holm(&bad);
    for (k, &i) in tested.iter().enumerate() {
        results[i].p_adjusted = Some(adj_good[k]);
    }
    for (k, &i) in bad_idx.iter().enumerate() {
        results[i].p_adjusted_bad = Some(adj_bad[k]);
    }
    let mut counts = Counts::default();
    let mut exit = 0;
    for r in &mut results {
        if r.p_value.is_some() {
            let t = gate::Tested {
                n: r.n,
                median: r.median.unwrap_or(f64::NAN),
                mean: r.mean.unwrap_or(f64::NAN),
                q25: f64::NAN,
                q75: f64::NAN,
                ci_low: r.ci_low.unwrap_or(f64::NAN),
                ci_high: r.ci_high.unwrap_or(f64::NAN),
                ci_method: String::new(),
                test: String::new(),
                test_method: String::new(),
                test_note: None,
                statistic: f64::NAN,
                effect_size: r.effect_size.unwrap_or(f64::NAN),
                p_good: r.p_value.unwrap_or(1.0),
                p_bad: r.p_value_bad.unwrap_or(1.0),
                effect_ci: r.effect_ci,
            };
            let (v, why) = gate::verdict(
                &t,
                r.p_adjusted.unwrap_or(1.0),
                r.p_adjusted_bad.unwrap_or(1.0),
                r.threshold,
                r.direction,
                s,
                r.reference.as_ref().map(|m| m.n),
            );
            r.verdict = v;
            r.reason = why;
        } else if r.verdict == Verdict::Inconclusive && r.reason.is_empty() {
            r.reason = "no usable image".into();
        }
        if let Some(ig) = ignore_for(plan, &r.code, &r.name, &r.method) {
            r.ignored = Some(Ignored {
                reason: ig.reason.clone(),
                expires: ig.expires.clone(),
            });
            r.gated = false;
            counts.ignored += 1;
        }
        match r.verdict {
            Verdict::Pass => counts.pass += 1,
            Verdict::Fail => counts.fail += 1,
            Verdict::Inconclusive => counts.inconclusive += 1,
            Verdict::Error => counts.error += 1,
            Verdict::NotRun => counts.not_run += 1,
        }
        if !r.gated {
            continue;
        }
        let code = match r.verdict {
            Verdict::Fail => 1,
            Verdict::Inconclusive if plan.fail_on_inconclusive => 1,
            Verdict::Error if plan.fail_on_error => 2,
            _ => 0,
        };
        exit = exit.max(code);
    }
    let verdict = match exit {
        0 => "pass",
        1 => "fail",
        _ => "error",
    };
    Outcome {
        audits: results,
        counts,
        exit_code: exit,
        verdict: verdict.into(),
    }
}
