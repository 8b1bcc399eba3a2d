//! Grad-CAM++ (Chattopadhay et al. 2018, WACV, arXiv:1710.11063) on the model's `features`.
//!
//! With `g = ∂S^c/∂A^k_ij` and the paper's exponential score `Y = exp(S)`, whose factors cancel
//! in `α` (eq. 19): `α_ij = g² / (2 g² + Σ_ab A_ab · g³)`, `w_k = Σ_ij α_ij ReLU(g_ij)`,
//! `L = ReLU(Σ_k w_k A^k)`, upsampled to the input. The per-image factor `exp(S)` of the
//! weights is dropped (it does not change the normalised map), as pytorch-grad-cam does.
//!
//! Two variants, which differ only in how `α` is guarded and scaled:
//! * `paper` (default; pytorch-grad-cam 1.5.7): `+1e-6` in the denominator and `α = 0` where
//!   `g = 0`.
//! * `official-code` (adityac94/Grad_CAM_plus_plus, TF1): a zero denominator is replaced by 1,
//!   and `α` is divided by its sum over each channel, a step that is not in the paper.
use super::grad_cam::{upsample_in, weighted_features, Upsample};
use super::Ctx;
use crate::error::Result;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// The paper's equations as pytorch-grad-cam implements them.
    Paper,
    /// The authors' TF1 code: α normalised per channel.
    OfficialCode,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    pub variant: Variant,
    pub upsample: Upsample,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            variant: Variant::Paper,
            upsample: Upsample::Bilinear,
        }
    }
}

/// Channel weights `w` `[B,K,1,1]` from features `a` and gradients `g` `[B,K,h,w]`.
pub fn weights(a: &Tensor, g: &Tensor, variant: Variant) -> Tensor {
    let spatial = [2i64, 3].as_slice();
    let g2 = g.square();
    let g3 = &g2 * g;
    let sum_a = a.sum_dim_intlist(spatial, true, Kind::Float);
    let denom = &g2 * 2.0 + sum_a * g3;
    let alpha = match variant {
        Variant::Paper => {
            let alpha = g2 / (denom + 1e-6);
            alpha.where_self(&g.ne(0.0), &alpha.zeros_like())
        }
        Variant::OfficialCode => {
            let safe = denom.where_self(&denom.ne(0.0), &denom.ones_like());
            let alpha = g2 / safe;
            let total = alpha.sum_dim_intlist(spatial, true, Kind::Float);
            let total = total.where_self(&total.ne(0.0), &total.ones_like());
            alpha / total
        }
    };
    (alpha * g.relu()).sum_dim_intlist(spatial, true, Kind::Float)
}

/// The low-resolution map `[B,1,h,w]` at the feature grid, after the ReLU.
pub fn lowres(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let cam = weighted_features(ctx, "grad-cam-plus-plus", x, targets, |a, g| {
        weights(a, g, p.variant)
    })?;
    Ok(cam.relu())
}

pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    Ok(upsample_in(
        ctx,
        &lowres(ctx, p, x, targets)?,
        x,
        p.upsample,
    ))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "grad-cam-plus-plus",
    summary: "Grad-CAM with pixel-weighted positive gradients",
    reference: "Chattopadhay et al. 2018 (WACV), arXiv:1710.11063",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::FeaturesAndGradients,
    stochastic: false,
    control: false,
    clips: true,
    cost: "1 forward + 1 backward through `head`",
};

impl super::Validate for Params {}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_code_alphas_sum_to_one_per_channel() {
        // One channel, 2x2, gradient 1 everywhere and A summing to 2: α = 1/(2+2) = 1/4 each
        // (paper; Σα = 1 already), so both variants give w = Σ α ReLU(g) = 1.
        let a = Tensor::from_slice(&[0.5f32, 0.5, 0.5, 0.5]).view([1, 1, 2, 2]);
        let g = Tensor::ones([1, 1, 2, 2], (Kind::Float, tch::Device::Cpu));
        for v in [Variant::Paper, Variant::OfficialCode] {
            let w = weights(&a, &g, v).double_value(&[0, 0, 0, 0]);
            assert!((w - 1.0).abs() < 1e-5, "{v:?}: {w}");
        }
        // Doubling A halves the paper's α but not the normalised one.
        let a2 = &a * 2.0;
        let wp = weights(&a2, &g, Variant::Paper).double_value(&[0, 0, 0, 0]);
        let wo = weights(&a2, &g, Variant::OfficialCode).double_value(&[0, 0, 0, 0]);
        assert!((wp - 4.0 / 6.0).abs() < 1e-5, "{wp}");
        assert!((wo - 1.0).abs() < 1e-5, "{wo}");
    }
}
