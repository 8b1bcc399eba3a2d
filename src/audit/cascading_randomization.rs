//! XA101 cascading-randomization: Adebayo et al.'s cascading model parameter randomisation.
use super::compare::{self, CompareParams};
use super::randomize::{self, Restore};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;
use serde::{Deserialize, Serialize};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA101",
    name: "cascading-randomization",
    title: "Model parameter randomisation test, cascading (Adebayo et al.)",
    what: "Whether the explanation depends on what the model learned: parameters are re-initialised layer by layer from the output back to the input, and the explanation must change.",
    why: "An explanation that looks the same for a trained and a randomly initialised network is a property of the input (edges, textures) or of the method, not of the model. Adebayo et al. showed that Guided Backprop and Guided Grad-CAM pass this visual inspection while ignoring the weights; reviewers cannot tell by eye. The robustness, salience and fuzz suites run this audit (mode = \"full-only\") as their model-dependence prerequisite: a stable explanation that ignores the model (an edge detector, a fixed map) must not pass a suite.",
    how: "Parameter groups are the modules that own parameters (named_parameters), in reverse registration order. Stage i re-initialises groups 1..i with PyTorch's default initialisers by shape (U(+-1/sqrt(fan_in)) for weights and biases, 1/0 for normalisation weights/biases; BatchNorm running statistics are kept, as in the official code), seeded by --seed (init = \"torch\" instead draws exactly as PyTorch's reset_parameters does under torch.manual_seed(seed + 1) before each layer, Quantus MPRT's procedure, so --seed 42 reproduces Quantus' weights). At each stage the explanation of the class predicted by the randomised model (target = \"original\": the trained model's prediction, as Quantus explains the given labels) is compared with the original explanation: Spearman rank correlation with absolute values on PAIR's grayscale map (sum over channels of |a|, 99th-percentile clip; percentile = 100 turns the clip off, Quantus' Spearman on |a|), Spearman without absolute values on PAIR's diverging map, and SSIM on the min-max normalised mask (Gaussian window sigma 1.5, K1 0.01, K2 0.03, data range 1; 2 reproduces the paper's numbers). The per-layer curve is recorded; the gated value is the fully randomised stage. mode = \"full-only\" randomises every group at once (the same weights as the cascade's last stage) and explains once: the gated value at one explanation per image. Stochastic methods share their Monte Carlo draws between the trained and the randomised model, and their noise floor (the same similarity between two clean explanations with different seeds) is reported. The trained weights are restored bit-exactly afterwards (checked), also when the audit fails midway.",
    pass: "Default gate: the median Spearman (abs) between the original and the fully randomised explanation is below 0.5 (exact binomial test of the median in the run's error budget; xaudit convention, the paper gives no number). As a suite prerequisite the audit must PASS: INCONCLUSIVE fails the gate too.",
    references: &[
        "Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim. Sanity Checks for Saliency Maps. NeurIPS 2018, arXiv:1810.03292",
        "Official code: github.com/adebayoj/sanity_checks_saliency (cascading randomization notebook)",
        "Binder et al. Shortcomings of Top-Down Randomization-Based Sanity Checks. CVPR 2023, arXiv:2211.12486",
    ],
    default_metric: "spearman-abs",
    default_direction: Direction::Lower,
    metrics: compare::METRICS,
};

/// Which stages are explained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every stage of the cascade (the layer curve).
    #[default]
    Cascade,
    /// Only the fully randomised model: one explanation per image.
    FullOnly,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    #[serde(default = "d_pct")]
    pub percentile: f64,
    #[serde(default = "d_dr")]
    pub ssim_data_range: f64,
    /// How randomised weights are drawn.
    #[serde(default)]
    pub init: randomize::Init,
    /// Which class the randomised model explains.
    #[serde(default)]
    pub target: Target,
    /// Every stage, or only the fully randomised model.
    #[serde(default)]
    pub mode: Mode,
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        compare::check(self.percentile, self.ssim_data_range)
    }
}

/// The class explained after randomisation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The class the randomised model predicts (Adebayo et al.'s code).
    #[default]
    Randomized,
    /// The class the trained model predicted (Quantus MPRT explains the given labels).
    Original,
}

impl Target {
    /// Picks the explained class from (image, trained prediction, randomised prediction).
    pub fn pick(self) -> impl Fn(usize, i64, i64) -> i64 {
        move |_, trained, randomized| match self {
            Target::Randomized => randomized,
            Target::Original => trained,
        }
    }
}
pub fn d_pct() -> f64 {
    99.0
}
pub fn d_dr() -> f64 {
    1.0
}

/// Similarity settings from the two shared parameters.
pub fn compare_params(percentile: f64, ssim_data_range: f64) -> CompareParams {
    CompareParams {
        percentile,
        ssim_data_range,
    }
}

/// One sweep per parameter group, from the output back to the input: `reset` (independent
/// randomisation) restores the trained weights first; each stage re-initialises its group,
/// explains and compares. Pictures are kept of the last stage only (`last`).
#[allow(clippy::too_many_arguments)]
pub fn layer_stages(
    run: &RunCtx,
    m: &Method,
    cp: &CompareParams,
    p_init: randomize::Init,
    target: Target,
    groups: &[randomize::Group],
    reset: Option<&Restore>,
    label: &dyn Fn(&randomize::Group) -> String,
    last: compare::Keep,
) -> Result<(Vec<(String, compare::Sims)>, compare::Pictures)> {
    let mut stages = Vec::new();
    let mut pictures = compare::Pictures::new();
    for (k, (gi, g)) in groups.iter().enumerate().rev().enumerate() {
        if let Some(r) = reset {
            r.restore()?;
        }
        randomize::reinit_with(p_init, g, run.seed, gi)?;
        // The other stages' pictures would be discarded.
        let keep = if k + 1 == groups.len() {
            last
        } else {
            compare::Keep::None
        };
        let (sims, pics) = compare::sweep_pictures(
            run,
            m,
            run.model,
            cp,
            1 + k as u64,
            &label(g),
            target.pick(),
            keep,
        )?;
        stages.push((g.name.clone(), sims));
        pictures = pics;
    }
    Ok((stages, pictures))
}

/// Records per-image similarities per stage as curves, and `gated(stages, row)` as the
/// finding's per-image values.
pub fn finish(
    mut f: Finding,
    stages: Vec<(String, compare::Sims)>,
    gated: impl Fn(&[compare::Sims], usize) -> [f64; 3],
    x_label: &str,
) -> Finding {
    let Some((_, last)) = stages.last() else {
        return f;
    };
    let per_stage: Vec<compare::Sims> = stages.iter().map(|s| s.1.clone()).collect();
    for (row, (i, _)) in last.iter().enumerate() {
        let v = gated(&per_stage, row);
        let named: Vec<(&str, f64)> = compare::METRICS.iter().copied().zip(v).collect();
        f.push(*i, &named, None);
    }
    // The curves are built when every image is in (one row per image: 1 for the original,
    // then each stage).
    for (m, name) in compare::METRICS.iter().enumerate() {
        let mut x = vec!["original".to_string()];
        x.extend(stages.iter().map(|(s, _)| s.clone()));
        f.defer_curve(name, x_label, name, x);
        for (row, (i, _)) in last.iter().enumerate() {
            let mut v = vec![1.0];
            v.extend(stages.iter().map(|(_, s)| s[row].1[m]));
            f.keep(&format!("curve:{name}"), *i, &v);
        }
    }
    f
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let cp = compare_params(p.percentile, p.ssim_data_range);
    compare::warm(run, m)?;
    let floor = compare::noise_floor(run, m, &cp)?;
    let groups = randomize::groups(run.model)?;
    let guard = Restore::new(run.model)?;
    let label = "fully randomised model";
    let (stages, pictures) = match p.mode {
        Mode::Cascade => layer_stages(
            run,
            m,
            &cp,
            p.init,
            p.target,
            &groups,
            None,
            &|_| label.to_string(),
            compare::Keep::Candidates,
        )?,
        Mode::FullOnly => {
            // The same draws as the cascade's last stage (each group keyed by its index).
            for (gi, g) in groups.iter().enumerate().rev() {
                randomize::reinit_with(p.init, g, run.seed, gi)?;
            }
            let (sims, pics) = compare::sweep_pictures(
                run,
                m,
                run.model,
                &cp,
                groups.len() as u64,
                label,
                p.target.pick(),
                compare::Keep::Candidates,
            )?;
            (vec![("all layers".to_string(), sims)], pics)
        }
    };
    guard.finish()?;
    let mut f = Finding::new("");
    f.examples = pictures;
    f.summary(
        "layer_order",
        groups
            .iter()
            .rev()
            .map(|g| g.name.clone())
            .collect::<Vec<_>>(),
    );
    f.summary(
        "groups",
        groups.iter().map(randomize::describe).collect::<Vec<_>>(),
    );
    f.summary("weights_restored_bit_exact", true);
    f.summary("init", p.init);
    f.summary("target", p.target);
    f.summary("mode", p.mode);
    super::run::keep_noise_floors(&mut f, "spearman-abs", &floor);
    let f = finish(
        f,
        stages,
        |st, row| st.last().map(|s| s[row].1).unwrap_or([f64::NAN; 3]),
        "randomised up to layer (output first)",
    );
    Ok(vec![if p.mode == Mode::FullOnly {
        Finding {
            deferred_curves: Vec::new(),
            ..f
        }
    } else {
        f
    }])
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "sanity",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: None,
    shardable: true,
    clips: true,
};
