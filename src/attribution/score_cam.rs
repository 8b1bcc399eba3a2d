//! Score-CAM (Wang et al. 2020, CVPR-W, arXiv:1910.01279): gradient-free channel weights from
//! the score of the input masked by each upsampled, min-max normalised feature channel
//! (`x ⊙ H^k`, in model space, so a masked pixel takes the data set's mean colour).
//! One forward pass per feature channel: K masked inputs per image, batched.
//!
//! Two modes, both in the Score-CAM authors' orbit and measurably different:
//! * `channel-softmax` (default; pytorch-grad-cam 1.5.7, which the official README endorses):
//!   masks upsampled with `align_corners = true`, min-max with `+1e-8`, scores are the
//!   explained score (logit by default), weights are their softmax across channels, and
//!   `L = ReLU(Σ_k w_k A^k)` at the feature grid, then upsampled like Grad-CAM.
//! * `official` (haofanwang/Score-CAM): masks upsampled with `align_corners = false`, constant
//!   channels skipped, weights are the scores themselves (the official code uses the class
//!   probability: set `score = "softmax"`), summed over the *upsampled* activations, then ReLU.
//!
//! The paper's baseline term `f(X_b)` is 0 in both codes and here.
use super::grad_cam::{upsample, Upsample};
use super::{target_score, Ctx};
use crate::error::Result;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// pytorch-grad-cam: softmax of the scores across channels, low-resolution weighting.
    ChannelSoftmax,
    /// haofanwang/Score-CAM: raw scores weight the upsampled activations.
    Official,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    pub mode: Mode,
    /// How the `channel-softmax` map is brought to the input (the `official` map is built there).
    pub upsample: Upsample,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            mode: Mode::ChannelSoftmax,
            upsample: Upsample::Bilinear,
        }
    }
}

/// Scores `[B,K]` of the inputs masked by each channel, plus the upsampled activations.
fn channel_scores(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    ctx.model.require_cam("score-cam")?;
    let size = x.size();
    let (b, h, w) = (size[0], size[2], size[3]);
    let feats = ctx.model.features(x)?;
    let k = feats.size()[1];
    let align = p.mode == Mode::ChannelSoftmax;
    let up = feats.upsample_bilinear2d([h, w], align, None, None);
    let dims = [2i64, 3].as_slice();
    let (mn, mx) = (up.amin(dims, true), up.amax(dims, true));
    let masks = match p.mode {
        Mode::ChannelSoftmax => (&up - &mn) / ((&mx - &mn) + 1e-8),
        // A constant channel is skipped by the official code: its score weight is zeroed below.
        Mode::Official => {
            let range = &mx - &mn;
            let safe = range.where_self(&range.gt(0.0), &range.ones_like());
            (&up - &mn) / safe
        }
    };
    let logits = super::masked_logits(ctx, x, &masks)?;
    let t = targets.view([b, 1]).expand([b, k], false);
    let mut s =
        target_score(&logits.view([b * k, -1]), &t.reshape([b * k]), ctx.score).view([b, k]);
    if p.mode == Mode::Official {
        let live = (&mx - &mn).view([b, k]).gt(0.0).to_kind(Kind::Float);
        s *= live;
    }
    Ok((s, if align { feats } else { up }))
}

/// The map before upsampling: `[B,1,h,w]` for `channel-softmax`, `[B,1,H,W]` for `official`.
pub fn raw(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let (s, acts) = channel_scores(ctx, p, x, targets)?;
    let w = match p.mode {
        Mode::ChannelSoftmax => s.softmax(-1, Kind::Float),
        Mode::Official => s,
    };
    let (b, k) = (w.size()[0], w.size()[1]);
    Ok((w.view([b, k, 1, 1]) * acts)
        .sum_dim_intlist(1, true, Kind::Float)
        .relu())
}

pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let cam = raw(ctx, p, x, targets)?;
    Ok(match p.mode {
        Mode::ChannelSoftmax => upsample(&cam, x, p.upsample),
        Mode::Official => cam,
    })
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "score-cam",
    summary: "feature channels weighted by the score of the input they mask, gradient-free",
    reference: "Wang et al. 2020 (CVPR-W), arXiv:1910.01279",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Features,
    stochastic: false,
    control: false,
    clips: false,
    cost: "1 + K forward passes (K feature channels)",
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
