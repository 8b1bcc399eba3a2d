//! SIDU, Similarity Difference and Uniqueness (Muddamsetty et al., Pattern Recognition 2022,
//! arXiv:2101.10710), as the official code computes it (satyamahesh84/SIDU_XAI_CODE,
//! `SIDU_XAI.py`). Gradient-free; needs the model's `features`.
//!
//! 1. Each feature channel `F_k` becomes a binary mask `[F_k > threshold]` (code: 0.1), resized
//!    to the input with skimage's bilinear `resize(order=1, mode='reflect')`.
//! 2. `P = p(x)` and `P_k = p(x ⊙ M_k)` are the model's full output vectors (softmax by
//!    default, as the official Keras models output; model space, as the code masks the
//!    preprocessed input).
//! 3. Similarity difference `SD_k = exp(−(P^c − P_k^c)² / (2σ²))`, σ = 0.25.
//! 4. Uniqueness `U_k = Σ_j ‖P_k − P_j‖₂`, min-max normalised over k (`+1e-13`), a code choice
//!    (`normalize-uniqueness`).
//! 5. `S^c = Σ_k SD_k U_k M_k / (K · 0.5)`, the code's RISE-inherited scale.
//!
//! One deviation: the code resizes to `8·⌈H/8⌉` (equal to H for 224-pixel inputs, and a shape
//! error otherwise); xaudit resizes to H×W directly, which is the same map where the code runs.
use super::{target_score, Ctx};
use crate::error::Result;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Activation threshold that turns a feature channel into a binary mask.
    pub threshold: f64,
    /// Width of the similarity kernel on score differences.
    pub sigma: f64,
    /// Min-max normalise the uniqueness across masks (official code; not in the paper).
    pub normalize_uniqueness: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            threshold: 0.1,
            sigma: 0.25,
            normalize_uniqueness: true,
        }
    }
}

/// The explained output vectors: softmax probabilities or logits, as `ctx.score` says.
fn outputs(logits: &Tensor, ctx: &Ctx) -> Tensor {
    match ctx.score {
        super::Score::Logit => logits.shallow_clone(),
        super::Score::Softmax => logits.softmax(-1, Kind::Float),
    }
}

/// Returns `[B,1,H,W]`.
pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    ctx.model.require_cam("sidu")?;
    let size = x.size();
    let (b, h, w) = (size[0], size[2], size[3]);
    let feats = ctx.model.features(x)?;
    let fs = feats.size();
    let (k, fh, fw) = (fs[1], fs[2], fs[3]);
    let dev = x.device();
    let binary = feats.gt(p.threshold).to_kind(Kind::Float);
    let ry = super::rise::resize_matrix(fh as usize, h as usize).to_device(dev);
    let rx = super::rise::resize_matrix(fw as usize, w as usize).to_device(dev);
    // [B,K,fh,fw] → [B,K,H,W]: R_y · B_k · R_xᵀ.
    let masks = ry.matmul(&binary).matmul(&rx.tr());
    let p_org = outputs(&ctx.model.logits(x)?.to_kind(Kind::Float), ctx);
    let p_k = outputs(&super::masked_logits(ctx, x, &masks)?, ctx);
    let classes = p_k.size()[2];
    let t = targets.view([b, 1]).expand([b, k], false).reshape([b * k]);
    let s_k = target_score(&p_k.view([b * k, classes]), &t, super::Score::Logit).view([b, k]);
    let s_org = target_score(&p_org, targets, super::Score::Logit).view([b, 1]);
    let sd = ((s_org - s_k).square() / (-2.0 * p.sigma * p.sigma)).exp();
    // Donot-use-mm mode: exact Euclidean distances, as scipy's cdist.
    let mut u = Tensor::cdist(&p_k, &p_k, 2.0, Some(2)).sum_dim_intlist(2, false, Kind::Float);
    if p.normalize_uniqueness {
        let mn = u.amin([1i64].as_slice(), true);
        let mx = u.amax([1i64].as_slice(), true);
        u = (&u - &mn) / (mx - mn + 1e-13);
    }
    let weights = (sd * u).view([b, 1, k]);
    let sal = weights.matmul(&masks.view([b, k, h * w])) / (k as f64 * 0.5);
    Ok(sal.view([b, 1, h, w]))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "sidu",
    summary: "feature-channel masks weighted by score similarity and uniqueness, gradient-free",
    reference: "Muddamsetty et al. 2022 (Pattern Recognition 127), arXiv:2101.10710",
    score: super::Score::Softmax,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Features,
    stochastic: false,
    control: false,
    clips: false,
    cost: "2 + K forward passes (K feature channels)",
};

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if !self.threshold.is_finite() {
            return Err("give a finite activation threshold (official code: 0.1)".into());
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err("sigma is the width of the similarity kernel: give a value > 0 (official code: 0.25)".into());
        }
        Ok(())
    }
}

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    p: &Params,
    x: &tch::Tensor,
    targets: &tch::Tensor,
    _ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    use super::Attribution;
    attribute(ctx, p, x, targets).map(Attribution::plain)
}
