//! XA005 local-lipschitz: Alvarez-Melis & Jaakkola's local Lipschitz estimate.
use super::sampling::{self, Noise};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;
use serde::{Deserialize, Serialize};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA005",
    name: "local-lipschitz",
    title: "Local Lipschitz estimate of the explanation (Alvarez-Melis & Jaakkola)",
    what: "The largest ratio between how much the explanation changes and how much the input changes, over random neighbours of the image that keep the prediction.",
    why: "Robust interpretability asks that similar inputs get similar explanations. A large local Lipschitz constant shows that the explanation function amplifies small input differences, so explanations of nearby inputs cannot be compared.",
    how: "Sampling estimate of L(x) = max_{x'} ||Phi(x) - Phi(x')||_2 / ||x - x'||_2 (the paper's sampling variant; Quantus LocalLipschitzEstimate defaults): N samples x' = clip(x + delta) (clip = false: x + delta unclamped, as Quantus does), delta ~ N(0, sigma^2) per element, sigma in 0-255 pixel units (default 25.5 = 0.1 of the range) divided by 255*std_c per channel. Phi is the raw [C,H,W] attribution of the clean predicted class; ||x - x'|| is measured in the model's input space. Samples whose prediction changes are excluded and counted.",
    pass: "The scale of the estimate depends on the model, the method and the input space, so there is no meaningful default threshold: the built-in suites run this audit as advisory (reported, not gating) with a placeholder of 1.0. Calibrate it with `xaudit calibrate`, which places the threshold between an accepted reference model and the model-blind controls; the calibrated suite then gates on the median (exact binomial test in the run's error budget).",
    references: &[
        "Alvarez-Melis, Jaakkola. On the Robustness of Interpretability Methods. ICML WHI 2018, arXiv:1806.08049",
        "Alvarez-Melis, Jaakkola. Towards Robust Interpretability with Self-Explaining Neural Networks. NeurIPS 2018, arXiv:1806.07538",
        "Quantus LocalLipschitzEstimate (Hedström et al. 2023, JMLR)",
    ],
    default_metric: "local-lipschitz",
    default_direction: Direction::Lower,
    metrics: &["local-lipschitz", "kept-samples"],
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Gaussian σ in 0-255 pixel units.
    #[serde(default = "d_s")]
    pub sigma: f64,
    /// Samples per image (Quantus 200).
    #[serde(default = "d_n")]
    pub samples: usize,
    /// Clamp x' to the valid pixel range (false: Quantus, which adds the noise unclamped).
    #[serde(default = "d_clip")]
    pub clip: bool,
    /// Exclude images where fewer than this share of the samples kept the prediction.
    #[serde(default = "d_kept")]
    pub min_kept_fraction: f64,
}

fn d_kept() -> f64 {
    0.5
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if !super::positive(self.sigma) || self.samples == 0 {
            return Err("sigma must be > 0 pixel units and samples >= 1".into());
        }
        if !(0.0..=1.0).contains(&self.min_kept_fraction) {
            return Err("min-kept-fraction must be in [0, 1]".into());
        }
        Ok(())
    }
}
fn d_s() -> f64 {
    25.5
}
fn d_clip() -> bool {
    true
}
fn d_n() -> usize {
    200
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let mut f = sampling::run(
        run,
        m,
        sampling::Draws {
            n: p.samples,
            clip: p.clip,
            noise: Noise::Gaussian { pixels: p.sigma },
            min_kept_fraction: p.min_kept_fraction,
        },
        "local-lipschitz",
        "local-lipschitz",
        |s| if s.input > 0.0 { s.diff / s.input } else { 0.0 },
    )?;
    f.summary("sigma_pixels", p.sigma);
    Ok(vec![f])
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "robustness",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: Some(super::sampling::finish),
    shardable: true,
    clips: true,
};
