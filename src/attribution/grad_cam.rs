//! Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391) on the model's exported `features`.
//!
//! `α_k = mean_ij ∂y^c/∂A^k_ij`, `L = ReLU(Σ_k α_k A^k)`, upsampled bilinearly to the input.
//! Video models: `features` are `[N,C',T',h,w]`, the mean runs over space and time (3D
//! Grad-CAM) and the map is upsampled trilinearly to `[T,H,W]`.
//! The features are recomputed as a detached leaf and fed to `head`: gradients w.r.t. a
//! tensor *returned* by a scripted method are undefined from the second call on under the
//! profiling executor (libtorch-tch.md §3.3).
use super::{leaf_grads, Ctx};
use crate::error::Result;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Upsample {
    /// Bilinear, align_corners = false (PyTorch/Captum `interpolate` default for bilinear).
    Bilinear,
    Nearest,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Apply ReLU to the weighted sum (the paper; Captum's `relu_attributions`).
    pub relu: bool,
    pub upsample: Upsample,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            relu: true,
            upsample: Upsample::Bilinear,
        }
    }
}

/// The low-resolution map `[B,1,h,w]` at the feature grid.
pub fn lowres(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let cam = weighted_features(ctx, "grad-cam", x, targets, |_, g| {
        g.mean_dim([2i64, 3].as_slice(), true, Kind::Float)
    })?;
    Ok(if p.relu { cam.relu() } else { cam })
}

/// `Σ_k w_k A^k` `[B,1,h,w]` with `A = features(x)` and channel weights `w = weights(A, g)`
/// `[B,K,1,1]` from `g = ∂score/∂A` (the gradient-weighted CAM family). The features are
/// recomputed as a detached leaf and fed to `head`.
pub fn weighted_features(
    ctx: &Ctx,
    method: &str,
    x: &Tensor,
    targets: &Tensor,
    weights: impl Fn(&Tensor, &Tensor) -> Tensor,
) -> Result<Tensor> {
    ctx.model.require_cam(method)?;
    let feats = ctx.model.features(x)?;
    let mut parts = Vec::new();
    let mut start = 0i64;
    super::for_chunks(x.size()[0] as usize, ctx.internal_batch, |r| {
        let f = feats.narrow(0, start, r.len() as i64);
        let t = targets.narrow(0, start, r.len() as i64);
        start += r.len() as i64;
        let g = leaf_grads(&f, &t, ctx.score, |leaf| ctx.model.head(leaf))?;
        parts.push((weights(&f, &g) * &f).sum_dim_intlist(1, true, Kind::Float));
        Ok(())
    })?;
    Ok(Tensor::cat(&parts, 0))
}

pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    Ok(upsample_in(
        ctx,
        &lowres(ctx, p, x, targets)?,
        x,
        p.upsample,
    ))
}

/// `upsample` for the model of `ctx`: a video model's map at its feature grid `[T',h,w]`
/// (a sheet `[B,1,h,T'·w]`) is upsampled trilinearly to the clip `[T,H,W]`, as 3D
/// Grad-CAM implementations interpolate, so no frame borrows from its neighbour.
pub fn upsample_in(ctx: &Ctx, cam: &Tensor, x: &Tensor, how: Upsample) -> Tensor {
    let Some(c) = ctx.model.clip else {
        return upsample(cam, x, how);
    };
    let tf = c.feature_frames.unwrap_or(c.frames);
    let lo = crate::clip::to_clip(cam, tf);
    let (h, w) = (x.size()[2], x.size()[3] / c.frames);
    let size = [c.frames, h, w];
    let up = match how {
        Upsample::Bilinear => lo.upsample_trilinear3d(size, false, None, None, None),
        Upsample::Nearest => lo.upsample_nearest3d(size, None, None, None),
    };
    crate::clip::to_sheet(&up)
}

/// A feature-grid map `[B,1,h,w]` brought to the input's resolution (shared by the CAM family).
pub fn upsample(cam: &Tensor, x: &Tensor, how: Upsample) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    match how {
        Upsample::Bilinear => cam.upsample_bilinear2d([h, w], false, None, None),
        Upsample::Nearest => cam.upsample_nearest2d([h, w], None, None),
    }
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "grad-cam",
    summary: "gradient-weighted class activation map on the `features` output",
    reference: "Selvaraju et al. 2017 (ICCV), arXiv:1610.02391",
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
