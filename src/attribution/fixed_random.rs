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
