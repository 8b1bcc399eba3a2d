//! Control explainer: Sobel edge magnitude of the input's channel mean. It ignores the model,
//! so a sanity audit must flag it (Adebayo et al. 2018 show edge detectors mimic saliency maps).
use tch::{Kind, Tensor};

/// `[B,C,H,W]` → `[B,1,H,W]`, reflect-padded like scipy.ndimage.sobel's default.
pub fn attribute(x: &Tensor) -> Tensor {
    squared(x).sqrt()
}

/// The same map for differentiation: sqrt has an infinite slope at 0 (flat regions), so the
/// squared magnitude is kept away from 0 where the gradient would otherwise be NaN; the
/// values differ from `attribute` by at most 1e-10 there.
pub fn attribute_differentiable(x: &Tensor) -> Tensor {
    squared(x).clamp_min(1e-20).sqrt()
}

/// gx² + gy² of the Sobel filters.
fn squared(x: &Tensor) -> Tensor {
    let dev = x.device();
    let grey = x
        .to_kind(Kind::Float)
        .mean_dim([1i64].as_slice(), true, Kind::Float);
    let (h, w) = (grey.size()[2], grey.size()[3]);
    // Reflect padding needs at least 2 pixels per side; tiny inputs fall back to replicate.
    let padded = if h >= 2 && w >= 2 {
        grey.reflection_pad2d([1, 1, 1, 1])
    } else {
        grey.replication_pad2d([1, 1, 1, 1])
    };
    let kx = Tensor::from_slice(&[-1f32, 0., 1., -2., 0., 2., -1., 0., 1.])
        .view([1, 1, 3, 3])
        .to_device(dev);
    let ky = Tensor::from_slice(&[-1f32, -2., -1., 0., 0., 0., 1., 2., 1.])
        .view([1, 1, 3, 3])
        .to_device(dev);
    let gx = padded.conv2d(&kx, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
    let gy = padded.conv2d(&ky, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
    gx.square() + gy.square()
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "edge",
    summary: "control: Sobel edge magnitude of the input, model-independent",
    reference: "Adebayo et al. 2018 (NeurIPS), arXiv:1810.03292",
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
/// Video models: each frame's own edges (no edge at the seams between frames).
pub fn explain(
    ctx: &super::Ctx,
    _p: &Params,
    x: &tch::Tensor,
    _targets: &tch::Tensor,
    _ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    use super::Attribution;
    Ok(Attribution::plain(match ctx.model.clip {
        Some(c) => crate::clip::per_frame(x, c.frames, attribute),
        None => attribute(x),
    }))
}
