//! XA102 independent-randomization: one parameter group at a time (Adebayo et al.).
use super::cascading_randomization::{compare_params, d_dr, d_pct, finish, layer_stages, Target};
use super::compare;
use super::randomize::{self, Restore};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;
use serde::{Deserialize, Serialize};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA102",
    name: "independent-randomization",
    title: "Model parameter randomisation test, one layer at a time (Adebayo et al.)",
    what: "Whether the explanation reacts to each layer's weights: every parameter group is re-initialised on its own, the rest of the model staying trained, and the explanation must change.",
    why: "Cascading randomisation can be dominated by the first layers it reaches; randomising one layer at a time shows which layers an explanation ignores. A method insensitive to a layer cannot reveal what that layer learned.",
    how: "For each parameter group (module owning parameters, reverse registration order): restore the trained weights, re-initialise only that group with PyTorch's default initialisers (seeded), explain the class predicted by the modified model and compare with the original explanation (Spearman with abs on PAIR grayscale maps, Spearman without abs on PAIR diverging maps, SSIM on min-max masks). Every layer is reported (the curve, and per layer the median of each similarity and the number of images). The per-image gated value is the mean over the groups that hold weights (Quantus return_average_correlation): groups whose parameters are all one-dimensional (normalisation scales and shifts, e.g. BatchNorm or LayerNorm) are reported but left out of the mean, because re-initialising them to 1 and 0 is close to the identity after training and would pull the mean towards 1 whatever the method. Weights are restored bit-exactly afterwards (checked).",
    pass: "Default gate: the median of the per-image mean Spearman (abs) over weight layers is below 0.5 (exact binomial test of the median in the run's error budget; xaudit convention).",
    references: &[
        "Adebayo et al. Sanity Checks for Saliency Maps. NeurIPS 2018, arXiv:1810.03292 (independent randomization)",
        "Official code: github.com/adebayoj/sanity_checks_saliency",
        "Quantus MPRT layer_order=independent (Hedström et al. 2023, JMLR)",
    ],
    default_metric: "spearman-abs",
    default_direction: Direction::Lower,
    metrics: compare::METRICS,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    #[serde(default = "d_pct")]
    pub percentile: f64,
    #[serde(default = "d_dr")]
    pub ssim_data_range: f64,
    #[serde(default)]
    pub init: randomize::Init,
    #[serde(default)]
    pub target: Target,
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        compare::check(self.percentile, self.ssim_data_range)
    }
}

/// Whether a group holds only normalisation parameters (every tensor one-dimensional).
pub fn normalisation_only(g: &randomize::Group) -> bool {
    g.params.iter().all(|(_, p)| p.dim() <= 1)
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let cp = compare_params(p.percentile, p.ssim_data_range);
    compare::warm(run, m)?;
    let floor = compare::noise_floor(run, m, &cp)?;
    let groups = randomize::groups(run.model)?;
    let guard = Restore::new(run.model)?;
    // Pictures of the last stage: the gated value is the mean over stages, not that sweep's
    // similarity, so all of them.
    let (stages, pictures) = layer_stages(
        run,
        m,
        &cp,
        p.init,
        p.target,
        &groups,
        Some(&guard),
        &|g| format!("only {} randomised", g.name),
        compare::Keep::All,
    )?;
    let norm_only: Vec<bool> = groups.iter().rev().map(normalisation_only).collect();
    guard.finish()?;
    let mut f = Finding::new("");
    f.examples = pictures;
    f.summary(
        "layer_order",
        stages.iter().map(|s| s.0.clone()).collect::<Vec<_>>(),
    );
    let excluded: Vec<String> = stages
        .iter()
        .zip(&norm_only)
        .filter(|(_, n)| **n)
        .map(|(s, _)| s.0.clone())
        .collect();
    f.summary("left_out_of_the_mean_normalisation_only", &excluded);
    f.summary("weights_restored_bit_exact", true);
    super::run::keep_noise_floors(&mut f, "spearman-abs", &floor);
    // With only normalisation groups there is nothing else to average: use them all.
    let use_all = norm_only.iter().all(|n| *n);
    let counted: Vec<bool> = norm_only.iter().map(|n| use_all || !n).collect();
    let mean_over = move |st: &[compare::Sims], row: usize| {
        let mut acc = [0.0; 3];
        let k = counted.iter().filter(|c| **c).count().max(1) as f64;
        for (s, c) in st.iter().zip(&counted) {
            if *c {
                for (a, v) in acc.iter_mut().zip(s[row].1) {
                    *a += v / k;
                }
            }
        }
        acc
    };
    Ok(vec![finish(
        f,
        stages,
        mean_over,
        "randomised layer (alone)",
    )])
}

/// Per layer: the median similarities over images (from the curves' per-image rows).
fn finish_layers(f: &mut Finding) {
    let names: Vec<String> = f
        .summary
        .get("layer_order")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let norm_only: Vec<String> = f
        .summary
        .get("left_out_of_the_mean_normalisation_only")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let col = |f: &Finding, metric: &str, k: usize| -> Vec<f64> {
        f.kept
            .get(&format!("curve:{metric}"))
            .map(|m| {
                m.values()
                    .filter_map(|r| r.get(k + 1).copied().flatten())
                    .collect()
            })
            .unwrap_or_default()
    };
    let n = f.kept_count("curve:spearman-abs");
    let per_layer: Vec<serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let norm = norm_only.contains(name);
            serde_json::json!({
                "layer": name,
                "normalisation_only": norm,
                "in_gated_mean": !norm,
                "n": n,
                "median_spearman_abs": crate::stats::median(&col(f, "spearman-abs", k)),
                "median_spearman": crate::stats::median(&col(f, "spearman", k)),
                "median_ssim": crate::stats::median(&col(f, "ssim", k)),
            })
        })
        .collect();
    f.summary("per_layer", per_layer);
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "sanity",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: Some(finish_layers),
    shardable: true,
    clips: true,
};
