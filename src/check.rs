//! `xaudit check`: the pipeline, one way only:
//!
//! plan (suite + configuration + method parameters, validated) -> **measure** (each audit
//! turns model, data and method into per-image values, `crate::audit`) -> **evaluate** (typed
//! test results per claim, `crate::gate`) -> **decide** (one error budget, verdicts, ignores,
//! advisories, prerequisites, the exit code) -> report model (`crate::report`) -> renderers.
//! Nothing downstream calls back upstream.
use crate::attribution::config::MethodSet;
use crate::attribution::{Method, MethodKind};
use crate::audit::{Finding, RunCtx};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::gate::{self, Evaluation, Settings, Verdict};
use crate::report::{
    AuditDocView, AuditResult, Claim, Counts, Ignored, MetricSummary, Report, ReportInputs,
    SampleValue, SCHEMA_VERSION,
};
use crate::suite::{Gate, Suite};
use std::collections::BTreeMap;
use std::time::Instant;

/// What to run, validated.
pub struct Plan {
    pub gates: Vec<Gate>,
    /// Methods audited, in order.
    pub methods: Vec<MethodKind>,
    /// Their parameters (suite, then configuration).
    pub method_set: MethodSet,
    pub settings: Settings,
    pub fail_on_inconclusive: bool,
    pub fail_on_error: bool,
    pub ignores: Vec<crate::config::IgnoreEntry>,
    /// Today's date (YYYY-MM-DD) for ignore expiry.
    pub today: String,
    /// The previous run this one must not be worse than (`--baseline`, `[baseline]`).
    pub baseline: Option<crate::baseline::Baseline>,
}

impl Plan {
    /// Suite + configuration + command-line choices (`methods`: `--method`, may be empty).
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
                if let Some(t) = o.threshold {
                    let metric = if entry.design == crate::audit::Design::TwoSample {
                        "rank-biserial".to_string()
                    } else {
                        g.metric.clone()
                    };
                    crate::suite::check_threshold(
                        &metric,
                        t,
                        &format!("[audits.{key}] threshold"),
                        &origin,
                    )?;
                    g.threshold = t;
                }
                let test = o.test.unwrap_or(g.test);
                crate::suite::check_test(
                    entry,
                    test,
                    o.quantile,
                    &format!("[audits.{key}]"),
                    &origin,
                )?;
                g.test = test;
                if let Some(q) = o.quantile {
                    g.quantile = q;
                }
                if let Some(a) = o.advisory {
                    g.advisory = a;
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
            settings.min_n = n.max(1);
        }
        let mut method_set = suite.methods.clone();
        method_set.overlay(&MethodSet {
            kinds: Vec::new(),
            options: cfg.method_set.options.clone(),
        });
        let chosen = if !methods.is_empty() {
            methods.to_vec()
        } else if !cfg.method_set.kinds.is_empty() {
            cfg.method_set.kinds.clone()
        } else {
            suite.methods.kinds.clone()
        };
        Ok(Plan {
            gates,
            methods: chosen,
            method_set,
            settings,
            fail_on_inconclusive: cfg.fail_on_inconclusive.unwrap_or(true),
            fail_on_error: cfg.fail_on_error.unwrap_or(true),
            ignores: cfg.ignore.clone(),
            today: today.to_string(),
            baseline: None,
        })
    }

    /// Compares the run with the report at `path` (the command line's `--baseline`, else
    /// `[baseline] path`), with the configuration's allowed regressions.
    pub fn set_baseline(&mut self, path: &std::path::Path, cfg: &Config) -> Result<()> {
        let origin = cfg
            .origin
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "configuration".into());
        let mut max_regression = BTreeMap::new();
        for (key, o) in &cfg.audits {
            if let Some(m) = o.max_regression {
                let entry = crate::audit::lookup(key, &origin)?;
                max_regression.insert(entry.doc.code.to_string(), m);
            }
        }
        self.baseline = Some(crate::baseline::Baseline {
            path: path.display().to_string(),
            report: crate::baseline::read(path)?,
            max_regression,
            default_max_regression: cfg.baseline.max_regression.unwrap_or(0.0),
            test: cfg.baseline.test.unwrap_or_default(),
        });
        Ok(())
    }

    /// The method as audited (its configured parameters).
    pub fn method(&self, kind: MethodKind) -> Method {
        self.method_set.method(kind)
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

/// What measuring one (audit, method) job produced (serialised unfinished into a shard's
/// partial report).
#[derive(serde::Serialize, serde::Deserialize)]
pub enum Measure {
    Findings(Vec<Finding>),
    NotRun(String),
    Error(String),
}

/// One job's measurements.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Measured {
    pub gate: usize,
    pub method: MethodKind,
    pub measure: Measure,
    pub duration_s: f64,
    /// (forward, forward+backward) images through the model during this job.
    pub passes: (u64, u64),
    /// Sequential runs: how far the job went and why it stopped.
    #[serde(default)]
    pub stopping: Option<crate::report::Stopping>,
}

/// Step 1: runs every (gate, method) job; `on_start` is told each job before it runs.
pub fn measure(
    run: &RunCtx,
    plan: &Plan,
    mut on_start: impl FnMut(&Gate, MethodKind),
) -> Result<Vec<Measured>> {
    let mut out = Vec::new();
    for (gi, kind) in plan.jobs() {
        on_start(&plan.gates[gi], kind);
        out.push(measure_job(run, plan, gi, kind)?);
    }
    Ok(out)
}

/// One (gate, method) job on the images `run` measures.
fn measure_job(run: &RunCtx, plan: &Plan, gi: usize, kind: MethodKind) -> Result<Measured> {
    let g = &plan.gates[gi];
    let method = plan.method(kind);
    let passes0 = run.passes();
    let start = Instant::now();
    let outcome = if run.model.clip.is_some() && !g.entry.clips {
        Err(Error::NotApplicable(format!(
            "{} does not measure video models yet: its perturbations or map geometry are those of single images",
            g.entry.doc.name
        )))
    } else if run.model.clip.is_some() && !kind.info().clips {
        Err(Error::NotApplicable(format!(
            "method {} does not run on video models",
            kind.name()
        )))
    } else if kind.needs_cam() {
        run.model
            .require_cam(kind.name())
            .map_err(|e| Error::NotApplicable(e.to_string()))
    } else {
        Ok(())
    }
    .and_then(|_| (g.entry.measure)(run, &method, &g.params))
    .and_then(|mut fs| {
        for f in &mut fs {
            partner_panels(run, &method, f)?;
        }
        Ok(fs)
    });
    let first = |s: String| s.lines().next().unwrap_or_default().to_string();
    let measure = match outcome {
        Ok(f) => Measure::Findings(f),
        Err(Error::NotApplicable(why)) => Measure::NotRun(first(why)),
        // Input and configuration errors stop the run (exit 2); they are not audit results.
        Err(
            e @ (Error::Config { .. }
            | Error::Data { .. }
            | Error::Image { .. }
            | Error::Interrupted),
        ) => return Err(e),
        Err(e) => Measure::Error(first(e.to_string())),
    };
    let passes1 = run.passes();
    Ok(Measured {
        gate: gi,
        method: kind,
        measure,
        duration_s: start.elapsed().as_secs_f64(),
        passes: (passes1.0 - passes0.0, passes1.1 - passes0.1),
        stopping: None,
    })
}

/// Embedding models with paired references: each example gets the other side of its pair,
/// the partner (view or partner image) and the method's map of it explained against the
/// image, beside the audit's own pictures (Sammani et al. 2022 show both images of a pair).
fn partner_panels(run: &RunCtx, method: &Method, f: &mut crate::audit::Finding) -> Result<()> {
    let Some(other) = run.partner_model else {
        return Ok(());
    };
    let idx: Vec<usize> = f
        .examples
        .iter()
        // Out-of-set inputs (named) are no data-set item and have no pair.
        .filter(|(i, p)| !p.is_empty() && !f.names.contains_key(i))
        .map(|(i, _)| *i)
        .collect();
    if idx.is_empty() {
        return Ok(());
    }
    let Some(refs) = run.model.embedding.as_ref() else {
        return Ok(());
    };
    let targets: Vec<i64> = idx.iter().map(|i| *i as i64).collect();
    let t = tch::Tensor::from_slice(&targets);
    let Some(x) = refs.partner_pixels(&t, run.model.device) else {
        return Ok(());
    };
    let ids: Vec<u64> = idx
        .iter()
        .map(|i| crate::audit::run::eval_id(*i, 0))
        .collect();
    let a = run.attribution(other, method, &x, &targets, &ids)?;
    let maps = crate::attribution::aggregate(&a.maps, method.aggregate);
    let what = match refs.reference {
        crate::embedding::Reference::View => "view",
        _ => "partner",
    };
    for (k, i) in idx.iter().enumerate() {
        let Some(panels) = f.examples.get_mut(i) else {
            continue;
        };
        panels.push(run.image_panel(&x.get(k as i64), &format!("the pair's {what}"))?);
        panels.push(crate::audit::run::map_panel(
            &maps.get(k as i64),
            &format!("{}'s map", what),
        )?);
    }
    Ok(())
}

/// The looks of a sequential run over `n` images, as image counts: the first once `min_n`
/// (at least 10) images are in, then each time the count has grown by half, and at the cap.
pub fn look_schedule(n: usize, min_n: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = min_n.max(10);
    while at < n {
        out.push(at);
        // x + x/2, rounded up: 10, 15, 23, 35, 53, 80, ...
        at = (3 * at).div_ceil(2);
    }
    out.push(n);
    out
}

/// Why a job cannot stop early (`None` when it can): only per-image audits tested with the
/// quantile test have an anytime-valid form here.
pub fn fixed_n_reason(g: &Gate) -> Option<String> {
    if !g.entry.shardable {
        return Some("the audit needs every image at once".into());
    }
    match g.entry.design {
        crate::audit::Design::TwoSample => {
            return Some("two-sample test (no sequential form yet)".into())
        }
        crate::audit::Design::Proportion => {
            return Some("proportion test over all images (no sequential form yet)".into())
        }
        crate::audit::Design::OneSample => {}
    }
    (g.test != gate::TestChoice::Quantile)
        .then(|| "Wilcoxon test (no sequential form yet; the quantile test has one)".into())
}

/// The usable (position, value) pairs of a finding's gated metric, in measurement order.
fn gated_values(g: &Gate, f: &Finding) -> Vec<(usize, f64)> {
    let col = f.metrics.get(&g.metric);
    f.index
        .iter()
        .enumerate()
        .filter(|(k, _)| f.excluded[*k].is_none())
        .filter_map(|(k, i)| {
            col.and_then(|c| c.get(k).copied().flatten())
                .filter(|v| v.is_finite())
                .map(|v| (*i, v))
        })
        .collect()
}

/// Whether every finding of a sequential job is decided at the stopping level `a_stop`: a
/// claim's anytime p-value at most `a_stop` with at least `min_n` usable images (a PASS also
/// needs its requirements, at alpha / the number of looks).
fn job_decided(plan: &Plan, m: &Measured, a_stop: f64) -> bool {
    let (Measure::Findings(fs), Some(stop)) = (&m.measure, &m.stopping) else {
        return false;
    };
    let g = &plan.gates[m.gate];
    let s = &plan.settings;
    !fs.is_empty()
        && fs.iter().all(|f| {
            let mut f = f.clone();
            crate::audit::finish(g.entry, &mut f);
            let x = gated_values(g, &f);
            if x.is_empty() {
                return false;
            }
            let e = gate::one_sample_anytime(
                &x,
                &stop.looks,
                &g.metric,
                g.threshold,
                g.direction,
                g.quantile,
            );
            let shown = f
                .requirements
                .iter()
                .all(|r| r.p.is_finite() && r.p * stop.planned_looks as f64 <= s.alpha);
            decided_at_look(&e, s.min_n, a_stop, shown)
        })
}

/// The per-look stopping level of a sequential run with `results` results: alpha over its
/// claim count (two per result), so a stop is also rejected by the final Holm step.
pub fn stopping_level(alpha: f64, results: usize) -> f64 {
    alpha / (2 * results).max(2) as f64
}

/// The stopping rule at one look: at least `min_n` usable images and either claim's
/// anytime p-value at most `a_stop` (a PASS also needs its precondition `shown`).
pub fn decided_at_look(e: &gate::Evaluation, min_n: usize, a_stop: f64, shown: bool) -> bool {
    e.n >= min_n && ((e.p_pass <= a_stop && shown) || e.p_fail <= a_stop)
}

/// Step 1 of a sequential run: the images are measured in blocks between looks (in the
/// order of `run.data`, which the caller shuffled), every job that can stop early stops as
/// soon as it is decided at alpha / (the run's claim count) (Bonferroni, so every such stop
/// survives the final Holm step), and the others measure every image once. Clean
/// predictions and maps are computed only for the blocks some job still measures.
pub fn measure_sequential(
    run: &mut RunCtx,
    plan: &Plan,
    mut on_start: impl FnMut(&Gate, MethodKind, std::ops::Range<usize>),
) -> Result<Vec<Measured>> {
    let n = run.data.len();
    let schedule = look_schedule(n, plan.settings.min_n);
    let jobs = plan.jobs();
    let mut out: Vec<Option<Measured>> = jobs.iter().map(|_| None).collect();
    let mut active = vec![true; jobs.len()];
    let mut a_stop = None;
    let mut start = 0;
    for &end in &schedule {
        for (j, &(gi, kind)) in jobs.iter().enumerate() {
            if !active[j] {
                continue;
            }
            let g = &plan.gates[gi];
            let why = fixed_n_reason(g);
            let window = if why.is_some() { 0..n } else { start..end };
            run.window = Some(window.clone());
            on_start(g, kind, window.clone());
            let mut m = measure_job(run, plan, gi, kind)?;
            m.stopping = Some(crate::report::Stopping {
                looks: if why.is_some() {
                    Vec::new()
                } else {
                    out[j]
                        .as_ref()
                        .and_then(|p| p.stopping.as_ref())
                        .map(|s| s.looks.clone())
                        .unwrap_or_default()
                        .into_iter()
                        .chain([end])
                        .collect()
                },
                planned_looks: schedule.len(),
                images: window.end,
                available: n,
                stopped: match &why {
                    Some(w) => format!("fixed-n: {w}"),
                    None => "cap".into(),
                },
            });
            let stopping = m.stopping.clone();
            let joined = match out[j].take() {
                None => m,
                Some(prev) => crate::shard::join_job(vec![prev, m])?,
            };
            out[j] = Some(Measured { stopping, ..joined });
            let done = why.is_some()
                || !matches!(
                    out[j].as_ref().map(|m| &m.measure),
                    Some(Measure::Findings(_))
                );
            if done {
                active[j] = false;
            }
        }
        run.window = None;
        // The run's claims (two per result), known once every job has measured a block.
        let a = *a_stop.get_or_insert_with(|| {
            let results: usize = out
                .iter()
                .flatten()
                .map(|m| match &m.measure {
                    Measure::Findings(fs) => fs.len(),
                    _ => 0,
                })
                .sum();
            stopping_level(plan.settings.alpha, results)
        });
        for j in 0..jobs.len() {
            if !active[j] {
                continue;
            }
            let Some(m) = out[j].as_mut() else { continue };
            if end >= n {
                active[j] = false;
            } else if job_decided(plan, m, a) {
                active[j] = false;
                if let Some(s) = m.stopping.as_mut() {
                    s.stopped = "decided".into();
                }
            }
        }
        if !active.iter().any(|&a| a) {
            break;
        }
        start = end;
    }
    Ok(out.into_iter().flatten().collect())
}

/// One result after step 2: its report fields and its typed test (none for results that
/// were not run, errors, or had no usable image).
pub struct Evaluated {
    pub result: AuditResult,
    pub evaluation: Option<Evaluation>,
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
        entry: 0,
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
        threshold: g.threshold,
        direction: g.direction,
        rationale: g.rationale.clone(),
        claim: None,
        descriptive: None,
        verdict,
        reason,
        p_pass_adjusted: None,
        p_fail_adjusted: None,
        level: None,
        bound_low: None,
        bound_high: None,
        images_to_decide: None,
        gated: !g.advisory,
        advisory: g.advisory,
        prerequisite: g.prerequisite,
        ignored: None,
        note: None,
        per_sample: Vec::new(),
        reference: None,
        secondary: BTreeMap::new(),
        curves: Vec::new(),
        summary: BTreeMap::new(),
        params: serde_json::to_value(&g.params).unwrap_or_default(),
        duration_s: 0.0,
        examples: Vec::new(),
        regression: None,
        sequential: None,
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
    let higher_good = r.direction == crate::audit::Direction::Higher;
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

/// The finishing part of step 1, once every image is in (after a single run's
/// measurement, or after the shards are merged): aggregates over images.
pub fn finish(plan: &Plan, measured: &mut [Measured]) {
    for m in measured {
        if let Measure::Findings(fs) = &mut m.measure {
            for f in fs {
                crate::audit::finish(plan.gates[m.gate].entry, f);
            }
        }
    }
}

fn image_path(images: &[crate::report::ImageRecord], i: usize) -> Option<String> {
    images.get(i).map(|it| it.path.clone())
}

/// Step 2 for one finding: per-image values, exclusions, secondary metrics and the typed
/// test of the gated metric.
fn evaluate_finding(
    images: &[crate::report::ImageRecord],
    g: &Gate,
    method: &str,
    mut f: Finding,
    settings: &Settings,
    stopping: Option<&crate::report::Stopping>,
) -> Evaluated {
    let mut r = empty_result(g, method, Verdict::Inconclusive, String::new());
    r.variant = f.variant.clone();
    r.sequential = stopping.cloned();
    // A sequential job's values are tested with the anytime form over the looks it took; its
    // preconditions were checked at every look, so at alpha / (the looks the run allows).
    let anytime = stopping.filter(|s| !s.looks.is_empty());
    if let Some(s) = anytime {
        for q in &mut f.requirements {
            q.p = (q.p * s.planned_looks as f64).min(1.0);
            q.what = format!("{} (Bonferroni over {} looks)", q.what, s.planned_looks);
        }
    }
    let ordered = gated_values(g, &f);
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
            path: image_path(images, *i).unwrap_or_else(|| format!("generated #{i}")),
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
    let value_of: BTreeMap<usize, f64> = r
        .per_sample
        .iter()
        .filter_map(|s| s.value.map(|v| (s.index, v)))
        .collect();
    for (title, shown) in &f.galleries {
        for (i, panels) in shown {
            r.examples.push(crate::report::Example {
                role: title.clone(),
                index: *i,
                path: image_path(images, *i).unwrap_or_default(),
                value: value_of.get(i).copied().unwrap_or(f64::NAN),
                panels: panels
                    .iter()
                    .map(|p| crate::report::PanelImage {
                        label: p.label.clone(),
                        png: crate::render::panel::data_uri(p),
                    })
                    .collect(),
            });
        }
    }
    r.curves = f.curves.clone();
    r.summary = f.summary.clone();
    // Keyed by what the result is, never by its position in the run: adding an audit to a
    // suite does not change another audit's numbers.
    let seed = crate::rng::derive(
        settings.seed,
        &[g.entry.doc.code, method, &r.variant, "bootstrap"],
    );
    let evaluation = match g.entry.design {
        crate::audit::Design::Proportion => match f.counts {
            Some((k, n)) if n > 0 => {
                r.n = n as usize;
                let what = if g.metric == "violated" {
                    "with a violation".to_string()
                } else {
                    format!("with {}", g.metric)
                };
                Some(gate::proportion(k, n, &what, g.threshold, g.direction))
            }
            _ => None,
        },
        crate::audit::Design::TwoSample => {
            let reference = f.reference.get(&g.metric).cloned().unwrap_or_default();
            r.reference = Some(MetricSummary {
                n: reference.len(),
                median: finite(crate::stats::median(&reference)),
                mean: finite(crate::stats::mean(&reference)),
            });
            (!x.is_empty() && !reference.is_empty())
                .then(|| gate::two_sample(&x, &reference, &g.metric, g.threshold, g.direction))
        }
        crate::audit::Design::OneSample => (!x.is_empty()).then(|| match anytime {
            Some(s) => gate::one_sample_anytime(
                &ordered,
                &s.looks,
                &g.metric,
                g.threshold,
                g.direction,
                g.quantile,
            ),
            None => gate::one_sample(&x, &g.metric, g.threshold, g.direction, g.quantile, g.test),
        }),
    };
    if !x.is_empty() && g.entry.design != crate::audit::Design::Proportion {
        r.descriptive = Some(gate::describe(&x, settings, seed));
    }
    let mut evaluation = evaluation;
    if let Some(e) = evaluation.as_mut() {
        e.requirements = f.requirements.clone();
    }
    match &evaluation {
        Some(e) => {
            r.claim = Some(Claim {
                test: e.test.into(),
                pass: e.claim_pass.clone(),
                fail: e.claim_fail.clone(),
                quantile: e.quantile,
                estimate: finite(e.estimate),
                estimate_label: e.estimate_label.clone(),
                good: e.good,
                bad: e.bad,
                ties: e.ties,
                p_pass: e.p_pass,
                p_fail: e.p_fail,
            })
        }
        None => r.reason = "no usable image".into(),
    }
    Evaluated {
        result: r,
        evaluation,
    }
}

/// Step 2: the typed test results of every measured (and finished) job.
pub fn evaluate(
    images: &[crate::report::ImageRecord],
    plan: &Plan,
    measured: Vec<Measured>,
) -> Vec<Evaluated> {
    let mut out = Vec::new();
    // A gate left without any method is reported, never silently dropped.
    let jobs = plan.jobs();
    for (gi, g) in plan.gates.iter().enumerate() {
        if !jobs.iter().any(|(j, _)| *j == gi) {
            let listed: Vec<&str> = g.methods.iter().map(|m| m.name()).collect();
            let mut result = empty_result(
                g,
                "-",
                Verdict::NotRun,
                format!(
                    "none of the selected methods is in this audit's list ({})",
                    listed.join(", ")
                ),
            );
            result.entry = gi;
            out.push(Evaluated {
                result,
                evaluation: None,
            });
        }
    }
    for m in measured {
        let g = &plan.gates[m.gate];
        let name = m.method.name();
        let mut produced = match m.measure {
            Measure::Findings(fs) => fs
                .into_iter()
                .map(|f| evaluate_finding(images, g, name, f, &plan.settings, m.stopping.as_ref()))
                .collect(),
            Measure::NotRun(why) => vec![Evaluated {
                result: empty_result(g, name, Verdict::NotRun, why),
                evaluation: None,
            }],
            Measure::Error(why) => vec![Evaluated {
                result: empty_result(g, name, Verdict::Error, why),
                evaluation: None,
            }],
        };
        for e in &mut produced {
            let r = &mut e.result;
            r.entry = m.gate;
            r.duration_s = m.duration_s;
            // Engine accounting (images through the model, shared caches included once, in the
            // job that filled them): `make bench` divides these by the model's ceiling.
            r.summary
                .insert("model_forward_images".into(), m.passes.0.into());
            r.summary
                .insert("model_backward_images".into(), m.passes.1.into());
        }
        out.extend(produced);
    }
    out
}

/// What a run decided.
pub struct Outcome {
    pub audits: Vec<AuditResult>,
    pub counts: Counts,
    pub exit_code: i32,
    /// `pass`, `fail` or `error`.
    pub verdict: String,
    /// Claims in the run's error budget (two per decided result and per baseline comparison).
    pub family_size: usize,
    /// Every input image with its file hash.
    pub images: Vec<crate::report::ImageRecord>,
    /// Baseline comparison: results without a counterpart (and why), results compared.
    pub unmatched: Vec<String>,
    pub compared: usize,
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

/// Step 3: one error budget over every claim, then ignores, advisories, prerequisites and
/// the exit code.
pub fn decide(
    evaluated: Vec<Evaluated>,
    plan: &Plan,
    images: Vec<crate::report::ImageRecord>,
) -> Outcome {
    let s = &plan.settings;
    // Baseline comparisons add their two claims to the same family.
    let mut unmatched = Vec::new();
    let mut regressions: Vec<Option<crate::baseline::Prepared>> = Vec::new();
    for e in &evaluated {
        let r = &e.result;
        let prepared = match (&plan.baseline, &e.evaluation) {
            (Some(b), Some(_)) => {
                let key = crate::baseline::key(r);
                match b
                    .report
                    .audits
                    .iter()
                    .find(|x| crate::baseline::key(x) == key)
                {
                    None => {
                        unmatched.push(format!(
                            "{} {} ({}{}): not in the baseline",
                            r.code,
                            r.name,
                            r.method,
                            if r.variant.is_empty() {
                                String::new()
                            } else {
                                format!(", {}", r.variant)
                            }
                        ));
                        None
                    }
                    Some(base) => {
                        let p = crate::baseline::prepare(
                            r,
                            &images,
                            base,
                            &b.report.images,
                            b.allowed(&r.code),
                            b.test,
                            s.min_n,
                        );
                        if p.is_none() {
                            unmatched.push(format!(
                                "{} {} ({}): {}",
                                r.code,
                                r.name,
                                r.method,
                                if base.metric != r.metric {
                                    format!(
                                        "metric {} in the baseline, {} now",
                                        base.metric, r.metric
                                    )
                                } else {
                                    "no usable value in the baseline".into()
                                }
                            ));
                        }
                        p
                    }
                }
            }
            _ => None,
        };
        regressions.push(prepared);
    }
    let compared = regressions.iter().flatten().count();
    let mut evals: Vec<Option<&Evaluation>> =
        evaluated.iter().map(|e| e.evaluation.as_ref()).collect();
    evals.extend(
        regressions
            .iter()
            .map(|p| p.as_ref().map(|p| &p.evaluation)),
    );
    let mut decisions = gate::decide(&evals, s);
    let family_size = evals
        .iter()
        .flatten()
        .filter(|e| e.n >= s.min_n && e.reference_n.is_none_or(|r| r >= s.min_n))
        .count()
        * 2;
    let regression_decisions = decisions.split_off(evaluated.len());
    let mut results: Vec<AuditResult> = Vec::with_capacity(evaluated.len());
    for ((e, d), (p, rd)) in evaluated
        .into_iter()
        .zip(decisions)
        .zip(regressions.into_iter().zip(regression_decisions))
    {
        let mut r = e.result;
        r.regression = p.map(|p| p.decided(rd));
        if let Some(d) = d {
            r.verdict = d.verdict;
            r.reason = d.reason;
            r.p_pass_adjusted = d.p_pass_adjusted;
            r.p_fail_adjusted = d.p_fail_adjusted;
            r.level = d.level;
            r.bound_low = d.bound_low;
            r.bound_high = d.bound_high;
            r.images_to_decide = d.images_to_decide;
        }
        results.push(r);
    }
    // A method whose prerequisite did not PASS gets no credit for its other passes.
    let mut uncredited: BTreeMap<String, String> = BTreeMap::new();
    for r in results.iter().filter(|r| r.prerequisite) {
        if matches!(
            r.verdict,
            Verdict::Fail | Verdict::Inconclusive | Verdict::Error
        ) {
            uncredited.entry(r.method.clone()).or_insert_with(|| {
                format!(
                    "{} {} is {}: {}'s explanations are not shown to depend on the model, so passing this audit says nothing about the model (a stable map that ignores the model passes stability audits trivially)",
                    r.code,
                    r.name,
                    r.verdict.label(),
                    r.method
                )
            });
        }
    }
    let mut counts = Counts::default();
    let mut exit = 0;
    for r in &mut results {
        if !r.prerequisite && r.verdict == Verdict::Pass {
            r.note = uncredited.get(&r.method).cloned();
        }
        if let Some(ig) = ignore_for(plan, &r.code, &r.name, &r.method) {
            r.ignored = Some(Ignored {
                reason: ig.reason.clone(),
                expires: ig.expires.clone(),
            });
            r.gated = false;
            counts.ignored += 1;
        }
        if r.advisory {
            r.gated = false;
            counts.advisory += 1;
        }
        match r.verdict {
            Verdict::Pass => counts.pass += 1,
            Verdict::Fail => counts.fail += 1,
            Verdict::Inconclusive => counts.inconclusive += 1,
            Verdict::Error => counts.error += 1,
            Verdict::NotRun => counts.not_run += 1,
        }
        if let Some(g) = r.regression.as_mut() {
            g.gated = r.gated && g.verdict == Verdict::Fail;
            if g.verdict == Verdict::Fail {
                counts.regressed += 1;
            }
        }
        if !r.gated {
            continue;
        }
        if r.regression.as_ref().is_some_and(|g| g.gated) {
            exit = exit.max(1);
        }
        let code = match r.verdict {
            Verdict::Fail => 1,
            // A prerequisite must be shown to hold.
            Verdict::Inconclusive if plan.fail_on_inconclusive || r.prerequisite => 1,
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
        family_size,
        images,
        unmatched,
        compared,
    }
}

/// The pre-flight tallies (`preflight_counts`), kept apart from the warning so shards can
/// add theirs up.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Preflight {
    pub labelled: usize,
    pub hits: usize,
    /// Hits under the other class-folder rule, when there is one (its name).
    pub alternative: Option<String>,
    pub alt_hits: usize,
    pub classes: std::collections::BTreeSet<i64>,
}

impl Preflight {
    /// The tallies of disjoint image sets together.
    pub fn add(&mut self, o: &Preflight) {
        self.labelled += o.labelled;
        self.hits += o.hits;
        self.alt_hits += o.alt_hits;
        self.classes.extend(o.classes.iter().copied());
        if self.alternative.is_none() {
            self.alternative = o.alternative.clone();
        }
    }
}

/// Before the run: the model's accuracy on the given labels (the clean predictions are
/// cached for the audits), over the images this process measures.
pub fn preflight_counts(
    run: &RunCtx,
    alternative: Option<&(crate::data::LabelRule, Vec<Option<i64>>)>,
) -> Result<Preflight> {
    let mut p = Preflight {
        alternative: alternative.map(|(rule, _)| rule.name().to_string()),
        ..Preflight::default()
    };
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        for (j, i) in b.indices.clone().enumerate() {
            if let Some(l) = b.labels[j] {
                p.labelled += 1;
                p.classes.insert(l);
                p.hits += usize::from(clean[j].pred == l);
            }
            if let Some((_, alt)) = alternative {
                p.alt_hits += usize::from(alt.get(i).copied().flatten() == Some(clean[j].pred));
            }
        }
        Ok(())
    })?;
    Ok(p)
}

/// Near-chance accuracy almost always means labels that do not match the model's class
/// indices, which silently excludes every image from the audits that skip misclassified
/// ones; the warning names the cause and, when the class folders are named by integers, the
/// accuracy under the other folder rule.
pub fn preflight_warnings(p: &Preflight) -> Vec<String> {
    let (labelled, hits, classes) = (p.labelled, p.hits, p.classes.len());
    if labelled < 10 || classes < 2 {
        return Vec::new();
    }
    let acc = hits as f64 / labelled as f64;
    let chance = 1.0 / classes as f64;
    if acc >= (2.0 * chance).min(0.5) {
        return Vec::new();
    }
    let mut w = format!(
        "the model's accuracy on the given labels is {} ({hits} of {labelled} labelled images; chance with {classes} classes is {}): the labels probably do not match the model's class indices, and audits that skip misclassified images will exclude most images",
        crate::fmt::percent(acc),
        crate::fmt::percent(chance)
    );
    if let Some(rule) = &p.alternative {
        w.push_str(&format!(
            "; with [model] labels = \"{rule}\" the accuracy would be {}",
            crate::fmt::percent(p.alt_hits as f64 / labelled as f64)
        ));
    } else {
        w.push_str("; check the CSV labels or the class folders against the model's logit order ([model] class_names, labels = \"folder-index\" | \"folder-name\")");
    }
    vec![w]
}

/// Both pre-flight steps on the images this process measures.
pub fn preflight(
    run: &RunCtx,
    alternative: Option<&(crate::data::LabelRule, Vec<Option<i64>>)>,
) -> Result<Vec<String>> {
    Ok(preflight_warnings(&preflight_counts(run, alternative)?))
}

/// Steps 1-3 in order; `on_start` is told each job before it runs.
pub fn run(run: &RunCtx, plan: &Plan, on_start: impl FnMut(&Gate, MethodKind)) -> Result<Outcome> {
    let mut measured = measure(run, plan, on_start)?;
    finish(plan, &mut measured);
    let images = run.data.manifest()?;
    Ok(decide(evaluate(&images, plan, measured), plan, images))
}

/// Steps 1-3 of a sequential run (see [`measure_sequential`]); `run.data` must already be
/// in the run's seeded order and `plan.settings.sequential` set.
pub fn run_sequential(
    run: &mut RunCtx,
    plan: &Plan,
    on_start: impl FnMut(&Gate, MethodKind, std::ops::Range<usize>),
) -> Result<Outcome> {
    let mut measured = measure_sequential(run, plan, on_start)?;
    finish(plan, &mut measured);
    let images = run.data.manifest()?;
    Ok(decide(evaluate(&images, plan, measured), plan, images))
}

/// Step 4: the report model of a decided run (built in the library, so tests need no
/// binary); every renderer reads only this.
pub fn report(plan: &Plan, outcome: Outcome, inputs: ReportInputs) -> Report {
    let mut docs = BTreeMap::new();
    for a in &outcome.audits {
        if let Some(e) = crate::audit::find(&a.code) {
            docs.entry(a.code.clone())
                .or_insert_with(|| AuditDocView::of(e));
        }
    }
    let methods = plan
        .methods
        .iter()
        .map(|k| {
            (
                k.name().to_string(),
                serde_json::to_value(plan.method(*k)).unwrap_or_default(),
            )
        })
        .collect();
    let mut decision_rule = gate::decision_rule(&plan.settings);
    if let Some(b) = &plan.baseline {
        decision_rule.push_str(&format!(
            " Baseline {}: each result also present there adds two claims about the per-image \
             worsening against it (images matched by file sha256; {}), REGRESSED (worse by more \
             than the allowed regression, default {}) and NOT WORSE, to the same Holm family; a \
             gated result that REGRESSED fails the gate. Runs on different images are compared \
             as two independent groups (Hoeffding bound on the rank-biserial effect of the \
             shifted values).",
            b.path,
            match b.test {
                gate::TestChoice::Quantile => "exact sign test of the median difference",
                gate::TestChoice::Wilcoxon =>
                    "Wilcoxon signed-rank test of the pseudo-median difference",
            },
            b.default_max_regression
        ));
    }
    let mut warnings = inputs.warnings;
    warnings.extend(exclusion_warnings(&outcome.audits));
    let mut report = Report {
        schema_version: SCHEMA_VERSION.into(),
        sequential: plan.settings.sequential,
        verdict: outcome.verdict.clone(),
        exit_code: inputs.exit_code,
        seed: plan.settings.seed,
        alpha: plan.settings.alpha,
        min_n: plan.settings.min_n,
        fail_on_inconclusive: plan.fail_on_inconclusive,
        fail_on_error: plan.fail_on_error,
        multiplicity: "holm over both claims of every result (one family)".into(),
        decision_rule,
        family_size: outcome.family_size,
        methods,
        docs,
        model: inputs.model,
        provenance: inputs.provenance,
        counts: outcome.counts,
        warnings,
        baseline: None,
        audits: outcome.audits,
        images: outcome.images,
    };
    if let Some(b) = &plan.baseline {
        report.baseline = Some(crate::report::BaselineInfo {
            path: b.path.clone(),
            schema_version: b.report.schema_version.clone(),
            xaudit_version: b.report.provenance.xaudit_version.clone(),
            model_sha256: b.report.model.sha256.clone(),
            data_sha256: b.report.provenance.data_sha256.clone(),
            started: b.report.provenance.started.clone(),
            max_regression: b.default_max_regression,
            differences: crate::baseline::differences(&b.report, &report),
            unmatched: outcome.unmatched,
            compared: outcome.compared,
            regressed: report.counts.regressed,
        });
    }
    report
}

/// A warning for every exclusion reason that removed most images of some result: the
/// verdicts of those results rest on few images, and the usual cause is named.
pub fn exclusion_warnings(results: &[AuditResult]) -> Vec<String> {
    let mut by_reason: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in results {
        let total = r.per_sample.len();
        for (reason, k) in &r.excluded_reasons {
            if total > 0 && 2 * k > total {
                by_reason
                    .entry(reason)
                    .or_default()
                    .push(format!("{} {} ({k} of {total})", r.code, r.method));
            }
        }
    }
    by_reason
        .into_iter()
        .map(|(reason, rs)| {
            let cause = if reason.contains("misclassified") {
                "the labels probably do not match the model's class indices (check [model] labels and class_names, and the accuracy on the given labels)"
            } else if reason.contains("label") || reason.contains("class") {
                "the perturbation budget probably changes the prediction of most images (lower epsilon)"
            } else if reason.contains("non-finite") {
                "the model or method produces NaN or infinite values on these inputs (check the preprocessing)"
            } else {
                "see the audit's documentation (xaudit docs CODE)"
            };
            format!(
                "most images were excluded as `{reason}` in {} result(s): {}; likely cause: {cause}",
                rs.len(),
                rs.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_start_at_min_n_and_grow_by_half_up_to_the_cap() {
        assert_eq!(look_schedule(120, 30), vec![30, 45, 68, 102, 120]);
        assert_eq!(look_schedule(40, 30), vec![30, 40]);
        assert_eq!(look_schedule(30, 30), vec![30]);
        assert_eq!(look_schedule(12, 30), vec![12]);
        assert_eq!(look_schedule(20, 5), vec![10, 15, 20]);
        // About log_1.5(cap / min_n) looks: 20 for 50000 images.
        assert_eq!(look_schedule(50_000, 30).len(), 20);
    }

    #[test]
    fn most_images_excluded_for_one_reason_is_a_warning_naming_the_cause() {
        let mut r: AuditResult = serde_json::from_value(serde_json::json!({
            "code": "XA001", "name": "attack-top-k", "title": "t", "suite": "s",
            "method": "saliency", "variant": "", "metric": "m", "n": 0, "excluded": 0,
            "excluded_reasons": {}, "threshold": 0.5, "direction": "higher", "rationale": "",
            "claim": null, "descriptive": null, "verdict": "inconclusive", "reason": "",
            "p_pass_adjusted": null, "p_fail_adjusted": null, "level": null,
            "bound_low": null, "bound_high": null, "images_to_decide": null, "gated": true,
            "advisory": false, "prerequisite": false, "ignored": null, "note": null,
            "per_sample": [], "reference": null, "secondary": {}, "curves": [],
            "summary": {}, "params": {}, "duration_s": 0.0
        }))
        .unwrap();
        r.per_sample = (0..10)
            .map(|i| SampleValue {
                index: i,
                path: format!("{i}.png"),
                value: None,
                excluded: Some("misclassified before the attack".into()),
            })
            .collect();
        r.excluded_reasons
            .insert("misclassified before the attack".into(), 9);
        let w = exclusion_warnings(std::slice::from_ref(&r));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("9 of 10") && w[0].contains("labels"),
            "{}",
            w[0]
        );
        // Half or fewer: no warning.
        r.excluded_reasons
            .insert("misclassified before the attack".into(), 5);
        assert!(exclusion_warnings(&[r]).is_empty());
    }
}
