//! Gradient ⊙ Input (Shrikumar et al. 2016, arXiv:1605.01713), in model-input space,
//! so the result depends on the normalisation (recorded in every report).
use super::Ctx;
use crate::error::Result;
use tch::Tensor;

pub fn attribute(ctx: &Ctx, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    attribute_logits(ctx, x, targets).map(|(maps, _)| maps)
}

/// The attribution and the logits of the same pass.
pub fn attribute_logits(ctx: &Ctx, x: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    let (g, logits) = super::saliency::attribute_logits(ctx, x, targets)?;
    Ok((g * x, logits))
}
