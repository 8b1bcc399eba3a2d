//! `xaudit calibrate`: thresholds from an accepted reference model and the model-blind
//! controls. The suite runs on the reference model with its own methods and with the
//! controls (`edge`, `fixed-random`, `random`); each audit × method gets the threshold
//! halfway between the reference's estimate (the quantity the audit's claim is about, the
//! worst over its variants) and the closest control estimate on the bad side, so the
//! reference sits on the good side and the model-blind floor on the bad side. Prerequisites
//! keep their thresholds. The result is a suite file whose every threshold carries its
//! rationale and the numbers behind it.
use crate::attribution::MethodKind;
use crate::audit::{Design, Direction};
use crate::check::{Outcome, Plan};
use crate::config::Config;
use crate::error::Result;
use crate::suite::{Gate, Suite};

/// Adds the controls to every audit of `suite`'s plan (also to audits whose method list is
/// fixed, such as the attacks), so each threshold can be placed against the model-blind floor.
pub fn plan(
    suite: &Suite,
    cfg: &Config,
    methods: &[MethodKind],
    seed: u64,
    today: &str,
) -> Result<Plan> {
    let mut plan = Plan::new(suite, cfg, methods, seed, today)?;
    for g in &mut plan.gates {
        if !g.methods.is_empty() {
            for c in MethodKind::controls() {
                if !g.methods.contains(&c) {
                    g.methods.push(c);
                }
            }
        }
    }
    for c in MethodKind::controls() {
        if !plan.methods.contains(&c) {
            plan.methods.push(c);
        }
    }
    Ok(plan)
}

/// The plan's methods that are not controls: the ones being calibrated.
fn reference_methods(plan: &Plan) -> Vec<MethodKind> {
    plan.methods
        .iter()
        .copied()
        .filter(|m| !m.is_control())
        .collect()
}

/// Facts about the reference run, for the rationales.
pub struct Context {
    pub model: String,
    pub model_sha256: String,
    pub images: usize,
    pub date: String,
    pub suite: String,
}

/// One calibrated threshold.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The suite entry it calibrates.
    pub entry: usize,
    pub code: String,
    pub name: String,
    pub method: String,
    pub metric: String,
    pub direction: Direction,
    pub previous: f64,
    pub threshold: f64,
    /// The reference method's estimate (worst over variants) and the controls' estimates.
    pub reference: f64,
    pub controls: Vec<(String, f64)>,
    /// The control the threshold was placed against, if any lay on the bad side.
    pub closest: Option<String>,
    pub rationale: String,
}

/// The metric's range, so a threshold never leaves it.
fn range(g: &Gate) -> (f64, f64) {
    if g.entry.design == Design::TwoSample {
        crate::suite::metric_range("rank-biserial")
    } else {
        crate::suite::metric_range(&g.metric)
    }
}

/// The worst estimate over a method's results of one entry (variants), if any.
fn worst(outcome: &Outcome, entry: usize, method: &str, dir: Direction) -> Option<f64> {
    let vals: Vec<f64> = outcome
        .audits
        .iter()
        .filter(|a| a.entry == entry && a.method == method)
        .filter_map(|a| a.claim.as_ref().and_then(|c| c.estimate))
        .collect();
    let f = |a: f64, b: f64| match dir {
        Direction::Lower => a.max(b),
        Direction::Higher => a.min(b),
    };
    vals.into_iter().reduce(f)
}

/// Thresholds for every non-prerequisite audit × reference method of `plan`.
pub fn thresholds(plan: &Plan, outcome: &Outcome, ctx: &Context) -> Vec<Entry> {
    let mut out = Vec::new();
    let reference = reference_methods(plan);
    for (gi, g) in plan.gates.iter().enumerate() {
        if g.prerequisite {
            continue;
        }
        let dir = g.direction;
        let controls: Vec<(String, f64)> = MethodKind::controls()
            .filter_map(|c| {
                worst_control(outcome, gi, c.name(), dir).map(|v| (c.name().to_string(), v))
            })
            .collect();
        for m in &reference {
            if !g.methods.is_empty() && !g.methods.contains(m) {
                continue;
            }
            let Some(r) = worst(outcome, gi, m.name(), dir) else {
                continue;
            };
            let bad = |v: f64| match dir {
                Direction::Lower => v > r,
                Direction::Higher => v < r,
            };
            let closest = controls
                .iter()
                .filter(|(_, v)| bad(*v))
                .min_by(|a, b| (a.1 - r).abs().total_cmp(&(b.1 - r).abs()));
            let (lo, hi) = range(g);
            let (threshold, how) = match closest {
                Some((name, c)) => (
                    0.5 * (r + c),
                    format!("halfway between the reference and the closest model-blind control on the bad side ({name})"),
                ),
                None => {
                    // No control does worse: leave a 10% margin beyond the reference.
                    let margin = 0.1 * r.abs().max(1e-6);
                    (
                        match dir {
                            Direction::Lower => r + margin,
                            Direction::Higher => r - margin,
                        },
                        "no model-blind control does worse than the reference, so the threshold only leaves a 10% margin beyond it; the model-dependence prerequisite is what rejects the controls here".to_string(),
                    )
                }
            };
            // Four decimals for the reader, unless that would touch the reference or a control.
            let rounded = (threshold * 1e4).round() / 1e4;
            let touches = rounded == r || controls.iter().any(|(_, c)| *c == rounded);
            let threshold = if touches { threshold } else { rounded }.clamp(lo, hi);
            let label = outcome
                .audits
                .iter()
                .find(|a| a.entry == gi && a.method == m.name())
                .and_then(|a| a.claim.as_ref().map(|c| c.estimate_label.clone()))
                .unwrap_or_else(|| "estimate".into());
            let ctl: Vec<String> = controls
                .iter()
                .map(|(n, v)| format!("{n} {}", crate::report::fmt::num(Some(*v))))
                .collect();
            let rationale = format!(
                "Calibrated by xaudit calibrate on {} (sha256 {}) with {} images on {} ({} suite): reference {} {label} {} (worst variant); model-blind controls: {}; threshold {} {how}",
                ctx.model,
                &ctx.model_sha256[..ctx.model_sha256.len().min(12)],
                ctx.images,
                ctx.date,
                ctx.suite,
                m.name(),
                crate::report::fmt::num(Some(r)),
                if ctl.is_empty() { "none measured".into() } else { ctl.join(", ") },
                crate::report::fmt::num(Some(threshold)),
            );
            out.push(Entry {
                entry: gi,
                code: g.entry.doc.code.into(),
                name: g.entry.doc.name.into(),
                method: m.name().into(),
                metric: g.metric.clone(),
                direction: dir,
                previous: g.threshold,
                threshold,
                reference: r,
                controls: controls.clone(),
                closest: closest.map(|c| c.0.clone()),
                rationale,
            });
        }
    }
    out
}

/// A control's best estimate over variants (the one closest to passing).
fn worst_control(outcome: &Outcome, entry: usize, method: &str, dir: Direction) -> Option<f64> {
    // The control's most favourable variant is the one a threshold must still reject.
    let flip = match dir {
        Direction::Lower => Direction::Higher,
        Direction::Higher => Direction::Lower,
    };
    worst(outcome, entry, method, flip)
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The calibrated suite as TOML: the prerequisites unchanged, one entry per audit × method
/// with its threshold and rationale, the methods and their parameters.
pub fn suite_toml(plan: &Plan, entries: &[Entry], ctx: &Context) -> String {
    let reference = reference_methods(plan);
    let mut o = format!(
        "# Written by `xaudit calibrate` from suite `{}` on {} ({} images, model sha256 {}).\n# Every threshold sits between the reference model and the model-blind controls; the\n# rationale of each entry gives the numbers. Review before committing.\nname = {}\ndescription = {}\n",
        ctx.suite,
        ctx.date,
        ctx.images,
        ctx.model_sha256,
        toml_str(&format!("{}-calibrated", ctx.suite)),
        toml_str(&format!("{} with thresholds calibrated on {}", ctx.suite, ctx.model)),
    );
    if (plan.settings.alpha - 0.05).abs() > 0.0 {
        o.push_str(&format!("alpha = {}\n", plan.settings.alpha));
    }
    // Methods, with the parameters they were calibrated with.
    let opts: Vec<(MethodKind, String)> = reference
        .iter()
        .map(|k| {
            let t = plan
                .method_set
                .options_of(*k)
                .map(|o| toml::to_string(o).unwrap_or_default())
                .unwrap_or_default();
            (*k, t)
        })
        .collect();
    let mut body = String::new();
    for (gi, g) in plan.gates.iter().enumerate() {
        let mut head = |threshold: f64, methods: Option<&str>, rationale: &str| {
            body.push_str(&format!(
                "\n[[audit]]\nid = {}\nmetric = {}\nthreshold = {}\ndirection = {}\n",
                toml_str(g.entry.doc.name),
                toml_str(&g.metric),
                threshold,
                toml_str(match g.direction {
                    Direction::Lower => "lower",
                    Direction::Higher => "higher",
                })
            ));
            if g.entry.design == Design::OneSample {
                if g.test == crate::gate::TestChoice::Wilcoxon {
                    body.push_str("test = \"wilcoxon\"\n");
                } else if g.quantile != 0.5 {
                    body.push_str(&format!("quantile = {}\n", g.quantile));
                }
            }
            if g.prerequisite {
                body.push_str("prerequisite = true\n");
            }
            if let Some(m) = methods {
                body.push_str(&format!("methods = [{}]\n", toml_str(m)));
            } else if !g.methods.is_empty() {
                let ms: Vec<String> = g
                    .methods
                    .iter()
                    .filter(|m| !m.is_control())
                    .map(|m| toml_str(m.name()))
                    .collect();
                body.push_str(&format!("methods = [{}]\n", ms.join(", ")));
            }
            body.push_str(&format!("rationale = {}\n", toml_str(rationale)));
            if !g.params.is_empty() {
                let p = toml::Value::Table(g.params.clone()).to_string();
                body.push_str(&format!("params = {p}\n"));
            }
        };
        if g.prerequisite {
            head(g.threshold, None, &g.rationale);
            continue;
        }
        for e in entries.iter().filter(|e| e.entry == gi) {
            head(e.threshold, Some(&e.method), &e.rationale);
        }
    }
    let plain = opts.iter().all(|(_, t)| t.trim().is_empty());
    if plain {
        let names: Vec<String> = reference.iter().map(|k| toml_str(k.name())).collect();
        o.push_str(&format!("methods = [{}]\n", names.join(", ")));
        o.push_str(&body);
    } else {
        o.push_str(&body);
        for (k, t) in &opts {
            o.push_str(&format!("\n[methods.{}]\n{}", k.name(), t));
        }
    }
    o
}
