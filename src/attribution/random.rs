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
