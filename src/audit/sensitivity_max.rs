//! XA004 sensitivity-max: Yeh et al.'s max-sensitivity, Monte Carlo in the L∞ ball.
use super::sampling::{self, Noise};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;
use serde::{Deserialize, Serialize};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA004",
    name: "sensitivity-max",
    title: "Max-sensitivity of the explanation to small input noise (Yeh et al.)",
    what: "How much the explanation can change, relative to its own size, when the input moves anywhere inside an L-infinity ball of radius r and the prediction stays the same.",
    why: "A faithful explanation of a smooth decision should not jump when the input barely changes. High max-sensitivity means two indistinguishable inputs receive very different explanations, which makes any single explanation shown to a reviewer arbitrary.",
    how: "Official estimator (chihkuanyeh/saliency_evaluation): N samples delta ~ U[-r, r]^d (seeded per image and sample), x' = clip(x + delta) to the valid pixel range (clip = false: x + delta unclamped, as Quantus does); the explanation of the clean predicted class is recomputed at x' and compared with the original as ||Phi(x) - Phi(x')||_2 / ||Phi(x)||_2 on the raw [C,H,W] attribution; the per-image value is the maximum over samples. r is given in 0-255 pixel units and divided by 255*std_c per channel. Default r = 8: an imperceptible change on natural images, the budget of the attribution attacks (Ghorbani et al. use eps = 8/255 and call eps < 16 imperceptible); Yeh et al.'s MNIST setting, 0.2 of the range, is r = 51 and is visible noise on natural images. Samples whose prediction changes are excluded and counted (Quantus return_nan_when_prediction_changes); an image where fewer than min-kept-fraction of the samples kept the prediction is excluded and counted, because a maximum over a few surviving samples is biased low. For stochastic methods (SmoothGrad, RISE) the clean and perturbed explanations share their Monte Carlo draws, and the method's own noise floor (relative L2 between two clean explanations with different seeds) is reported beside the result.",
    pass: "Default gate: the median max-sensitivity is below 0.5 (exact binomial test of the median in the run's error budget; xaudit convention).",
    references: &[
        "Yeh, Hsieh, Suggala, Inouye, Ravikumar. On the (In)fidelity and Sensitivity of Explanations. NeurIPS 2019, arXiv:1901.09392",
        "Official code: github.com/chihkuanyeh/saliency_evaluation (infid_sen_utils.py)",
        "Quantus MaxSensitivity (Hedström et al. 2023, JMLR)",
    ],
    default_metric: "max-sensitivity",
    default_direction: Direction::Lower,
    metrics: &["max-sensitivity", "kept-samples"],
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// L∞ radius r in 0-255 pixel units.
    #[serde(default = "d_r")]
    pub radius: f64,
    /// Monte-Carlo samples per image (Yeh 50, Quantus 200).
    #[serde(default = "d_n")]
    pub samples: usize,
    /// Clamp x' to the valid pixel range (false: Quantus, which adds the noise unclamped).
    #[serde(default = "d_clip")]
    pub clip: bool,
    /// Exclude images where fewer than this share of the samples kept the prediction.
    #[serde(default = "d_kept")]
    pub min_kept_fraction: f64,
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if !(self.radius > 0.0 && self.radius <= 255.0) || self.samples == 0 {
            return Err("radius must be in (0, 255] pixel units and samples >= 1".into());
        }
        if !(0.0..=1.0).contains(&self.min_kept_fraction) {
            return Err("min-kept-fraction must be in [0, 1]".into());
        }
        Ok(())
    }
}
fn d_r() -> f64 {
    8.0
}
fn d_kept() -> f64 {
    0.5
}
fn d_clip() -> bool {
    true
}
fn d_n() -> usize {
    50
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let mut f = sampling::run(
        run,
        m,
        sampling::Draws {
            n: p.samples,
            clip: p.clip,
            noise: Noise::UniformLinf { pixels: p.radius },
            min_kept_fraction: p.min_kept_fraction,
        },
        "sensitivity-max",
        "max-sensitivity",
        |s| s.diff / s.base.max(1e-12),
    )?;
    f.summary("radius_pixels", p.radius);
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
