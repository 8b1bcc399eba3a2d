//! Control explainer: a seeded uniform noise map per image, independent of model and input.
use super::Ctx;
use rand::Rng;
use tch::Tensor;

pub fn attribute(ctx: &Ctx, x: &Tensor, ids: &[u64]) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    let n = (h * w) as usize;
    let mut v = Vec::with_capacity(ids.len() * n);
    for &id in ids {
        let mut rng = crate::rng::stream(ctx.seed, "random-explainer", id, 0);
        v.extend((0..n).map(|_| rng.random::<f32>()));
    }
    Tensor::from_slice(&v)
        .view([ids.len() as i64, 1, h, w])
        .to_device(x.device())
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "random",
    summary: "control: seeded uniform noise map",
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
