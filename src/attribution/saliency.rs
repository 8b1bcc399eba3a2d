//! Vanilla gradient (Simonyan, Vedaldi & Zisserman 2014, arXiv:1312.6034).
//! Returns the signed gradient `[B,C,H,W]`; the paper's map is `max_c |g|` (aggregate max-abs).
use super::{input_grads, Ctx};
use crate::error::Result;
use tch::Tensor;

pub fn attribute(ctx: &Ctx, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let mut parts = Vec::new();
    super::for_chunks(x.size()[0] as usize, ctx.internal_batch, |r| {
        let xs = x.narrow(0, r.start as i64, r.len() as i64);
        let ts = targets.narrow(0, r.start as i64, r.len() as i64);
        parts.push(input_grads(ctx.model, &xs, &ts, ctx.score)?);
        Ok(())
    })?;
    Ok(Tensor::cat(&parts, 0))
}
