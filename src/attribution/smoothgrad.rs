//! SmoothGrad (Smilkov et al. 2017, arXiv:1706.03825): the gradient averaged over n noisy
//! copies `x + ε`, `ε ~ N(0, σ²)`, `σ = noise_level · (max x − min x)` over the whole image.
//! Defaults follow the paper and Adebayo et al.: 0.15, n = 50, magnitude = false (PAIR's
//! code uses n = 25, magnitude = true: `samples = 25`, `magnitude = true`).
use super::{accumulate_runs, image_of, input_grads, Ctx};
use crate::error::Result;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    pub samples: usize,
    pub noise_level: f64,
    /// Average squared gradients (SmoothGrad², PAIR `magnitude=True`).
    pub magnitude: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            samples: 50,
            noise_level: 0.15,
            magnitude: false,
        }
    }
}

/// Standard-normal noise for sample `k` of the image of evaluation `id`: depends only on
/// (seed, image, k). Every evaluation of one image (clean, perturbed, on a randomised model)
/// uses the same draws (common random numbers), so audits compare the model's response, not
/// two independent Monte Carlo estimates.
pub fn unit_noise(seed: u64, id: u64, k: u64, numel: usize) -> Vec<f32> {
    let mut rng = crate::rng::stream(seed, "smoothgrad", image_of(id), k);
    (0..numel)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect()
}

pub fn attribute(
    ctx: &Ctx,
    p: &Params,
    x: &Tensor,
    targets: &Tensor,
    ids: &[u64],
) -> Result<Tensor> {
    let size = x.size();
    let (b, n) = (size[0] as usize, p.samples.max(1));
    let numel = (size[1] * size[2] * size[3]) as usize;
    let dev = x.device();
    let dims = [1i64, 2, 3].as_slice();
    let sigma = (x.amax(dims, false) - x.amin(dims, false)) * p.noise_level; // [B]
    let mut acc = x.zeros_like();
    super::for_chunks(b * n, ctx.internal_batch, |r| {
        let owner: Vec<usize> = r.clone().map(|s| s / n).collect();
        let mut noise = Vec::with_capacity(r.len() * numel);
        for s in r.clone() {
            noise.extend(unit_noise(ctx.seed, ids[s / n], (s % n) as u64, numel));
        }
        let img =
            Tensor::from_slice(&owner.iter().map(|&i| i as i64).collect::<Vec<_>>()).to_device(dev);
        let noise = Tensor::from_slice(&noise)
            .view([r.len() as i64, size[1], size[2], size[3]])
            .to_device(dev);
        let xs = x.index_select(0, &img) + noise * sigma.index_select(0, &img).view([-1, 1, 1, 1]);
        let g = input_grads(ctx.model, &xs, &targets.index_select(0, &img), ctx.score)?;
        let g = if p.magnitude { g.square() } else { g };
        accumulate_runs(&mut acc, &owner, &g.to_kind(Kind::Float));
        Ok(())
    })?;
    Ok(acc / n as f64)
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "smoothgrad",
    summary: "gradients averaged over Gaussian-noised copies",
    reference: "Smilkov et al. 2017, arXiv:1706.03825",
    score: super::Score::Logit,
    aggregate: super::Aggregate::MaxAbs,
    needs: super::Needs::Gradients,
    stochastic: true,
    control: false,
    clips: true,
    cost: "samples forward + backward passes",
};

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.samples == 0 {
            return Err("samples must be >= 1".into());
        }
        if !(self.noise_level.is_finite() && self.noise_level > 0.0 && self.noise_level <= 1.0) {
            return Err("noise-level is sigma as a fraction of the image's value range: give a value in (0, 1] (paper: 0.15)".into());
        }
        Ok(())
    }
}

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    p: &Params,
    x: &tch::Tensor,
    targets: &tch::Tensor,
    ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    use super::Attribution;
    attribute(ctx, p, x, targets, ids).map(Attribution::plain)
}
