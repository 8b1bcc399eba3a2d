//! Interaction-CAM (Sammani, Joukovsky and Deligiannis 2022, "Visualizing and Understanding
//! Contrastive Learning", arXiv:2206.09753; official code `fawazsammani/explain-cl`,
//! `methods.py::get_interactioncam`), for embedding models.
//!
//! A contrastive model's similarity of two images depends on what the two feature maps share.
//! Interaction-CAM weights image 1's feature channels by the product of both images' channel
//! summaries, then by the positive part of the similarity's gradient at each position:
//!
//! `L = Σ_c (A¹_c · s¹_c · s²_c) ⊙ ReLU(∂cos/∂A¹_c)`, with `s_c` the channel summary of a
//! feature map (spatial mean, max, or attention pooling) and `cos` the cosine similarity of
//! the two embeddings (xaudit: the score, cosine / temperature).
//!
//! Image 2 is the reference of the explained target: the image's second view (view
//! references) or a class prototype, whose summary is the mean over the class's support
//! images. As in the official code the map is not rectified after the sum; xaudit upsamples
//! it bilinearly to the input as for Grad-CAM. Deviation: the code's optional
//! `grad_interact` (channel weights from both images' gradients) needs image 2's gradients,
//! which fixed references do not have, and is not offered.
use super::grad_cam::{upsample, Upsample};
use super::{leaf_grads, Ctx};
use crate::embedding::Reduction;
use crate::error::{Error, Result};
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Channel summary of each feature map (the official code's `reduction`).
    pub reduction: Reduction,
    pub upsample: Upsample,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            reduction: Reduction::Mean,
            upsample: Upsample::Bilinear,
        }
    }
}

impl super::Validate for Params {}

/// The map `[B,1,h,w]` at the feature grid.
pub fn lowres(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let model = ctx.model;
    model.require_cam(INFO.name)?;
    let refs = super::references(model, INFO.name)?;
    let feats = model.features(x)?.to_kind(Kind::Float);
    let theirs = refs
        .feature_summary(p.reduction, &targets.to_device(feats.device()))
        .ok_or_else(|| {
            Error::method(
                INFO.name,
                "the references were built without feature maps",
                "export `features`/`head` from the model (docs/model-contract.md)",
            )
        })?;
    let mut parts = Vec::new();
    let mut start = 0i64;
    super::for_chunks(x.size()[0] as usize, ctx.internal_batch, |r| {
        let n = r.len() as i64;
        let f = feats.narrow(0, start, n);
        let t = targets.narrow(0, start, n);
        let other = theirs.narrow(0, start, n);
        start += n;
        let g = leaf_grads(&f, &t, ctx.score, |leaf| model.head(leaf))?;
        let ours = &crate::embedding::summaries(&f)[p.reduction.index()];
        let joint = (ours * other).unsqueeze(-1).unsqueeze(-1);
        parts.push((&f * joint * g.relu()).sum_dim_intlist(1, true, Kind::Float));
        Ok(())
    })?;
    Ok(Tensor::cat(&parts, 0))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "interaction-cam",
    summary: "for embedding models: feature channels weighted by what both images of the pair share and by the similarity's positive gradient",
    reference: "Sammani, Joukovsky & Deligiannis 2022, arXiv:2206.09753 (code: fawazsammani/explain-cl)",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::FeaturesAndGradients,
    stochastic: false,
    control: false,
    clips: false,
    cost: "1 forward + 1 backward through `head`",
};

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    p: &Params,
    x: &tch::Tensor,
    targets: &tch::Tensor,
    _ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    let cam = lowres(ctx, p, x, targets)?;
    Ok(super::Attribution::plain(upsample(&cam, x, p.upsample)))
}
