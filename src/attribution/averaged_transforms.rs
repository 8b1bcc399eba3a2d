//! Averaged transforms (Sammani, Joukovsky and Deligiannis 2022, "Visualizing and
//! Understanding Contrastive Learning", arXiv:2206.09753; official code
//! `fawazsammani/explain-cl`, `methods.py::create_mixed_images` and `averaged_transforms`;
//! the notebook calls it "integrated transform"), for embedding models whose images are
//! paired with a second view or a partner image.
//!
//! A contrastive encoder is trained to map an image and its augmented view together. This
//! method asks which pixels of the image carry that agreement along the whole way from the
//! image to its view: it mixes the two, `m_j = λ_j x₁ + (1 − λ_j) x₂` for
//! `λ_j = 1 − j/steps`, j = 1..steps−1 (the code's `np.arange(1, 0, -step)` without its
//! first element, so the last mix is 0.1·x₁ + 0.9·x₂), adds Gaussian noise to every mix but
//! the last, and averages the gradient of the image's similarity to each mix:
//!
//! `A = x₁ ⊙ mean_j ∇_{x₁} cos(f(x₁), f(m_j))`, channels reduced by max |·| (the code's
//! `torch.max(abs, dim=1)`, xaudit's default aggregate `max-abs`).
//!
//! The mixes' embeddings are held fixed (the code detaches them); since the cosine is
//! linear in the unit embedding of the other side, the mean of the gradients is the gradient
//! of the similarity to the mean unit embedding of the mixes, which xaudit takes in one
//! backward pass. Noise: σ = `noise` / (max(x₁) − min(x₁)), the code's rule (SmoothGrad
//! multiplies by the range; the official code divides), drawn per image and mix from
//! `--seed`. The similarity is the cosine (the temperature and `score` do not apply).
//! Deviations: no guided backpropagation (the notebook's `guided = True` rewrites ReLU
//! backward hooks, which a TorchScript file does not expose) and no Gaussian blur of the
//! output (`blur_output`, a display choice). Image 2's map is xaudit's map of the swapped pair
//! (the partner mixed towards the image), where the official code takes image 2's
//! gradients at the mixes.
use super::Ctx;
use crate::error::Result;
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// λ takes the values 1 − j/steps; the mixes are j = 1..steps−1 (the code's step 0.1).
    pub steps: usize,
    /// Noise level: σ = noise / (max(x) − min(x)); 0 turns the noise off (`add_noise`).
    pub noise: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            steps: 10,
            noise: 0.15,
        }
    }
}

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.steps < 2 {
            return Err("steps must be >= 2 (at least one mix)".into());
        }
        if !(self.noise.is_finite() && self.noise >= 0.0) {
            return Err("noise must be finite and >= 0".into());
        }
        Ok(())
    }
}

/// The mixes `[B·(steps−1),C,H,W]` (image-major) of `x` towards `other`.
pub fn mixes(p: &Params, x: &Tensor, other: &Tensor, ids: &[u64], seed: u64) -> Result<Tensor> {
    let s = x.size();
    let (b, per) = (s[0] as usize, (s[1] * s[2] * s[3]) as usize);
    let k = p.steps - 1;
    let lambdas: Vec<f32> = (1..p.steps)
        .map(|j| 1.0 - j as f32 / p.steps as f32)
        .collect();
    let lam = Tensor::from_slice(&lambdas)
        .to_device(x.device())
        .view([1, k as i64, 1, 1, 1]);
    let (x5, o5) = (x.unsqueeze(1), other.unsqueeze(1));
    let mixed: Tensor = &x5 * &lam + &o5 * (1.0 - &lam); // [B,K,C,H,W]
    if p.noise == 0.0 || k < 2 {
        return Ok(mixed.flatten(0, 1));
    }
    let flat = x.flatten(1, -1);
    let range = Vec::<f64>::try_from(
        (flat.amax([1].as_slice(), false) - flat.amin([1].as_slice(), false))
            .to_kind(Kind::Double)
            .to_device(tch::Device::Cpu),
    )?;
    let mut noise = vec![0f32; b * k * per];
    for i in 0..b {
        let sigma = if range[i] > 0.0 {
            p.noise / range[i]
        } else {
            0.0
        };
        let img = super::image_of(ids[i]);
        // Every mix but the last gets noise (the code's 0 < n < len − 1).
        for j in 0..k - 1 {
            let mut rng = crate::rng::stream(seed, "averaged-transforms", img, j as u64);
            let row = &mut noise[(i * k + j) * per..(i * k + j + 1) * per];
            for v in row {
                let z: f64 = StandardNormal.sample(&mut rng);
                *v = (z * sigma) as f32;
            }
        }
    }
    let noise = Tensor::from_slice(&noise)
        .to_device(x.device())
        .view(mixed.size().as_slice());
    Ok((mixed + noise).flatten(0, 1))
}

/// `[B,C,H,W]`: x ⊙ the mean gradient.
pub fn attribute(
    ctx: &Ctx,
    p: &Params,
    x: &Tensor,
    targets: &Tensor,
    ids: &[u64],
) -> Result<Tensor> {
    let model = ctx.model;
    let other = super::partners(model, INFO.name, targets)?;
    let b = x.size()[0];
    let k = (p.steps - 1) as i64;
    let mut parts = Vec::new();
    let mut start = 0i64;
    super::for_chunks(b as usize, (ctx.internal_batch / k as usize).max(1), |r| {
        let n = r.len() as i64;
        let xs = x.narrow(0, start, n);
        let m = mixes(
            p,
            &xs,
            &other.narrow(0, start, n),
            &ids[r.clone()],
            ctx.seed,
        )?;
        start += n;
        let e = model.embed(&m)?.to_kind(Kind::Float);
        let mean = crate::embedding::unit(&e).view([n, k, -1]).mean_dim(
            [1].as_slice(),
            false,
            Kind::Float,
        );
        let g = tch::with_grad(|| -> Result<Tensor> {
            let leaf = xs.detach().set_requires_grad(true);
            let ours = crate::embedding::unit(&model.embed_grad(&leaf)?.to_kind(Kind::Float));
            let s = (ours * &mean).sum(Kind::Float);
            let mut g = Tensor::f_run_backward(&[&s], &[&leaf], false, false)?;
            Ok(g.pop().unwrap_or_else(|| leaf.zeros_like()))
        })?;
        parts.push(&xs * g);
        Ok(())
    })?;
    Ok(Tensor::cat(&parts, 0))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "averaged-transforms",
    summary: "for paired embedding models: input × the similarity's gradient averaged over mixes of the image towards its partner",
    reference: "Sammani, Joukovsky & Deligiannis 2022, arXiv:2206.09753 (code: fawazsammani/explain-cl)",
    score: super::Score::Logit,
    aggregate: super::Aggregate::MaxAbs,
    needs: super::Needs::Gradients,
    stochastic: true,
    control: false,
    clips: false,
    cost: "steps − 1 forward passes + 1 forward and backward (steps = 10)",
};

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    p: &Params,
    x: &tch::Tensor,
    targets: &tch::Tensor,
    ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    attribute(ctx, p, x, targets, ids).map(super::Attribution::plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn mixes_walk_from_the_image_to_its_partner() {
        let x = Tensor::ones([2, 1, 2, 2], (Kind::Float, Device::Cpu));
        let o = Tensor::zeros([2, 1, 2, 2], (Kind::Float, Device::Cpu));
        let quiet = Params {
            steps: 10,
            noise: 0.0,
        };
        let m = mixes(&quiet, &x, &o, &[0, 1], 0).unwrap().view([2, 9, -1]);
        let first: Vec<f32> =
            Vec::try_from(m.get(0).mean_dim([1].as_slice(), false, Kind::Float)).unwrap();
        let want: Vec<f32> = (1..10).map(|j| 1.0 - j as f32 / 10.0).collect();
        for (a, b) in first.iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "{first:?}");
        }
        // Noise on every mix but the last, the same for the same image id.
        let noisy = Params {
            steps: 10,
            noise: 0.15,
        };
        let x = Tensor::rand([2, 1, 8, 8], (Kind::Float, Device::Cpu));
        let o = x.zeros_like();
        let a = mixes(&noisy, &x, &o, &[7, 9], 0).unwrap().view([2, 9, -1]);
        let b = mixes(&noisy, &x.narrow(0, 1, 1), &o.narrow(0, 1, 1), &[9], 0)
            .unwrap()
            .view([1, 9, -1]);
        assert!((a.get(1) - b.get(0)).abs().max().double_value(&[]) < 1e-7);
        let clean = mixes(&quiet, &x, &o, &[7, 9], 0).unwrap().view([2, 9, -1]);
        let d = (&a - &clean).abs().amax([2].as_slice(), false);
        let d: Vec<f32> = Vec::try_from(d.get(0)).unwrap();
        assert!(d[..8].iter().all(|v| *v > 0.0) && d[8] == 0.0, "{d:?}");
    }
}
