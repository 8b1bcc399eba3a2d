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

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "gradient-x-input",
    summary: "input ⊙ gradient",
    reference: "Shrikumar et al. 2016, arXiv:1605.01713",
    score: super::Score::Logit,
    aggregate: super::Aggregate::SumAbs,
    needs: super::Needs::Gradients,
    stochastic: false,
    control: false,
    clips: true,
    cost: "1 forward + 1 backward",
};

/// No parameters.
pub type Params = super::NoParams;

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    _p: &Params,
    x: &tch::Tensor,
    targets: &tch::Tensor,
    _ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    use super::Attribution;
    attribute_logits(ctx, x, targets).map(Attribution::with_logits)
}
