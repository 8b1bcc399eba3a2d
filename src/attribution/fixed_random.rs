//! Control explainer: one seeded uniform noise map per image. It is keyed by the seed and the
//! image's position only, so it ignores the model, the explained class, the input's content
//! and every perturbation: it is perfectly "stable" and perfectly meaningless. A suite that
//! lets it pass cannot tell a robust explanation from one that says nothing about the model.
use super::{image_of, Ctx};
use rand::Rng;
use tch::Tensor;

pub fn attribute(ctx: &Ctx, x: &Tensor, ids: &[u64]) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    let n = (h * w) as usize;
    let mut v = Vec::with_capacity(ids.len() * n);
    for &id in ids {
        let mut rng = crate::rng::stream(ctx.seed, "fixed-random-explainer", image_of(id), 0);
        v.extend((0..n).map(|_| rng.random::<f32>()));
    }
    Tensor::from_slice(&v)
        .view([ids.len() as i64, 1, h, w])
        .to_device(x.device())
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "fixed-random",
    summary: "control: one seeded noise map per image that never moves",
    reference: "xaudit control",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Nothing,
    stochastic: false,
    control: true,
    clips: true,
    cost: "none",
};

/// No parameters.
pub type Params = super::NoParams;

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    _p: &Params,
    x: &tch::Tensor,
    _targets: &tch::Tensor,
    ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    use super::Attribution;
    Ok(Attribution::plain(attribute(ctx, x, ids)))
}
