//! Gradient ⊙ Input (Shrikumar et al. 2016, arXiv:1605.01713), in model-input space,
//! so the result depends on the normalisation (recorded in every report).
use super::Ctx;
use crate::error::Result;
use tch::Tensor;

pub fn attribute(ctx: &Ctx, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    Ok(super::saliency::attribute(ctx, x, targets)? * x)
}
