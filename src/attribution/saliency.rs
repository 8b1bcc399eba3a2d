//! Vanilla gradient (Simonyan, Vedaldi & Zisserman 2014, arXiv:1312.6034).
//! Returns the signed gradient `[B,C,H,W]`; the paper's map is `max_c |g|` (aggregate max-abs).
use super::{input_grads_logits, Ctx};
use crate::error::Result;
use tch::Tensor;

pub fn attribute(ctx: &Ctx, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    attribute_logits(ctx, x, targets).map(|(maps, _)| maps)
}

/// The gradients and the logits of the same pass (no separate prediction pass needed).
pub fn attribute_logits(ctx: &Ctx, x: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
    let mut parts = Vec::new();
    let mut logits = Vec::new();
    super::for_chunks(x.size()[0] as usize, ctx.internal_batch, |r| {
        let xs = x.narrow(0, r.start as i64, r.len() as i64);
        let ts = targets.narrow(0, r.start as i64, r.len() as i64);
        let (g, l) = input_grads_logits(ctx.model, &xs, &ts, ctx.score)?;
        parts.push(g);
        logits.push(l);
        Ok(())
    })?;
    Ok((Tensor::cat(&parts, 0), Tensor::cat(&logits, 0)))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "saliency",
    summary: "vanilla gradient of the score w.r.t. the input",
    reference: "Simonyan, Vedaldi & Zisserman 2014, arXiv:1312.6034",
    score: super::Score::Logit,
    aggregate: super::Aggregate::MaxAbs,
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
