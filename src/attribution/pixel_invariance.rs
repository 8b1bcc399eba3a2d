//! Pixel invariance (Sammani, Joukovsky and Deligiannis 2022, "Visualizing and
//! Understanding Contrastive Learning", arXiv:2206.09753; official code
//! `fawazsammani/explain-cl`, `methods.py::get_sample_dataset` and `pixel_invariance`), for
//! embedding models.
//!
//! A contrastive encoder is trained to be invariant to augmentations. Pixel invariance shows
//! which pixels that invariance rests on: it draws `augments` augmented copies of the image
//! (colour jitter, grayscale and random erasing, no geometric change, so pixels stay in
//! place), labels each with the cosine similarity of its embedding to the clean image's, and
//! fits a linear surrogate to predict the label from the pixels; the surrogate's weights are
//! the map:
//!
//! `pred_n = w · (x̃ + x̃_n)/2 + b`, loss `Σ_n BCE-with-logits(pred_n, cos(f(x), f(x_n))) +
//! l1 (‖w‖₁ + |b|)`, trained by full-batch SGD; map = max over channels of w, min-max
//! normalised, values below 0.5 set to 0, upsampled bilinearly from the surrogate's `size` to
//! the input. `x̃` is the image resized to `size` × `size` (model space).
//!
//! Defaults are the notebook's: 1000 augmentations, surrogate at 64 × 64 (at most the input
//! size), 1000 epochs, learning rate 0.1, L1 weight 0.2, small values zeroed. Augmentation
//! (the code's `aug_transform_no_shift` + `RandomErasing`): with probability 0.8 colour
//! jitter (brightness, contrast and saturation factors uniform in [0.2, 1.8], applied in a
//! random order), with probability 0.2 grayscale, with probability 0.5 a random erasure of
//! 2-33% of the image, aspect ratio log-uniform in [0.3, 3.3], set to black. Draws and the
//! surrogate's initial weights (PyTorch's `nn.Linear` rule, uniform in ±1/√D) are keyed by
//! `--seed` and the image. The map does not depend on the explained target: it explains the
//! encoder's invariance around the image. Deviations: no hue jitter (the code's 0.2), no NMF
//! term (the notebook's first map, `nmf_weight = 0`), no Gaussian blur of the output.
use super::Ctx;
use crate::error::Result;
use rand::Rng;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Augmented copies of each image.
    pub augments: usize,
    /// Side of the surrogate's input (capped at the input's shorter side).
    pub size: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    /// L1 weight on the surrogate's parameters (0: none).
    pub l1: f64,
    /// Set map values below 0.5 (after min-max) to 0.
    pub zero_small: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            augments: 1000,
            size: 64,
            epochs: 1000,
            learning_rate: 0.1,
            l1: 0.2,
            zero_small: true,
        }
    }
}

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.augments < 2 || self.size == 0 || self.epochs == 0 {
            return Err("augments must be >= 2, size and epochs >= 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err("learning-rate must be a positive number".into());
        }
        if !(self.l1.is_finite() && self.l1 >= 0.0) {
            return Err("l1 must be finite and >= 0".into());
        }
        Ok(())
    }
}

/// ITU-R 601 luma (torchvision's `rgb_to_grayscale`) of `[C,H,W]`, kept `[1,H,W]`.
fn gray(x: &Tensor) -> Tensor {
    if x.size()[0] == 3 {
        let w = Tensor::from_slice(&[0.299f32, 0.587, 0.114])
            .to_device(x.device())
            .view([3, 1, 1]);
        (x * w).sum_dim_intlist(0, true, Kind::Float)
    } else {
        x.shallow_clone()
    }
}

/// torchvision's `_blend`: `f · x + (1 − f) · other`, clamped to [0, 1].
fn blend(x: &Tensor, other: &Tensor, f: f64) -> Tensor {
    (x * f + other * (1.0 - f)).clamp(0.0, 1.0)
}

/// One augmented copy of `x01` `[C,H,W]` (pixels in [0, 1]).
pub fn augment(rng: &mut impl Rng, x01: &Tensor) -> Tensor {
    let mut x = x01.shallow_clone();
    if rng.random_bool(0.8) {
        let mut order = [0usize, 1, 2];
        for i in (1..3).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        let f = [
            rng.random_range(0.2..=1.8),
            rng.random_range(0.2..=1.8),
            rng.random_range(0.2..=1.8),
        ];
        for op in order {
            x = match op {
                0 => blend(&x, &x.zeros_like(), f[0]),
                1 => {
                    let m = gray(&x).mean(Kind::Float);
                    blend(&x, &m, f[1])
                }
                _ => blend(&x, &gray(&x).expand_as(&x), f[2]),
            };
        }
    }
    if rng.random_bool(0.2) {
        x = gray(&x).expand_as(&x).contiguous();
    }
    if rng.random_bool(0.5) {
        let s = x.size();
        let p = super::pairwise_occlusion::Params {
            scale: [0.02, 0.33],
            ratio: [0.3, 3.3],
            ..Default::default()
        };
        if let Some((t, l, eh, ew)) =
            super::pairwise_occlusion::erase_rect(rng, s[1] as usize, s[2] as usize, &p)
        {
            let mut m = vec![1f32; (s[1] * s[2]) as usize];
            for y in t..t + eh {
                m[y * s[2] as usize + l..y * s[2] as usize + l + ew].fill(0.0);
            }
            let m = Tensor::from_slice(&m)
                .to_device(x.device())
                .view([1, s[1], s[2]]);
            // A new tensor: x may still share the caller's pixels.
            x = x.g_mul(&m);
        }
    }
    x
}

/// Trains the linear surrogate on inputs `xs` `[N,D]` and labels `y` `[N]`; returns w `[D]`.
pub fn fit(p: &Params, xs: &Tensor, y: &Tensor, init: (Tensor, f64)) -> Tensor {
    let (mut w, mut b) = init;
    for _ in 0..p.epochs {
        let pred = xs.mv(&w) + b;
        let r = pred.sigmoid() - y;
        let mut gw = xs.tr().mv(&r);
        let mut gb = r.sum(Kind::Float).double_value(&[]);
        if p.l1 > 0.0 {
            gw += w.sign() * p.l1;
            gb += p.l1 * b.signum() * (b != 0.0) as i64 as f64;
        }
        w -= gw * p.learning_rate;
        b -= gb * p.learning_rate;
    }
    w
}

/// `[B,1,H,W]`.
pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, ids: &[u64]) -> Result<Tensor> {
    let model = ctx.model;
    let (mean, std) = super::references(model, INFO.name)?.pixel_space.clone();
    let size = x.size();
    let (c, h, w) = (size[1], size[2], size[3]);
    let s = (p.size as i64).min(h).min(w);
    let dim = c * s * s;
    let dev = x.device();
    let mean = Tensor::from_slice(&mean).to_device(dev).view([c, 1, 1]);
    let std = Tensor::from_slice(&std).to_device(dev).view([c, 1, 1]);
    let small = |t: &Tensor| t.upsample_bilinear2d([s, s], false, None, None);
    let mut maps = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        crate::interrupt::check()?;
        let img = super::image_of(id);
        let xi = x.get(i as i64);
        let x01 = &xi * &std + &mean;
        let clean = model.embed(&xi.unsqueeze(0))?.to_kind(Kind::Float);
        let mut rng = crate::rng::stream(ctx.seed, "pixel-invariance", img, 0);
        let (mut inputs, mut labels) = (Vec::new(), Vec::new());
        super::for_chunks(p.augments, ctx.internal_batch, |r| {
            let aug: Vec<Tensor> = r.map(|_| augment(&mut rng, &x01)).collect();
            let xa = (Tensor::stack(&aug, 0) - &mean) / &std;
            let e = model.embed(&xa)?.to_kind(Kind::Float);
            labels.push(crate::embedding::cosine(&e, &clean.expand_as(&e)));
            inputs.push(small(&xa).flatten(1, -1));
            Ok(())
        })?;
        let x1 = small(&xi.unsqueeze(0)).flatten(1, -1);
        let xs = (Tensor::cat(&inputs, 0) + x1) / 2.0;
        let y = Tensor::cat(&labels, 0);
        let mut init = crate::rng::stream(ctx.seed, "pixel-invariance-init", img, 0);
        let bound = 1.0 / (dim as f64).sqrt();
        let w0: Vec<f32> = (0..dim)
            .map(|_| init.random_range(-bound..bound) as f32)
            .collect();
        let b0 = init.random_range(-bound..bound);
        let wt = fit(p, &xs, &y, (Tensor::from_slice(&w0).to_device(dev), b0));
        let m = wt.view([c, s, s]).amax([0].as_slice(), false);
        let (lo, hi) = (m.min(), m.max());
        let range = (&hi - &lo).double_value(&[]);
        let mut m = if range > 0.0 {
            (&m - &lo) / range
        } else {
            m.zeros_like()
        };
        if p.zero_small {
            m = &m * m.ge(0.5).to_kind(Kind::Float);
        }
        maps.push(
            m.view([1, 1, s, s])
                .upsample_bilinear2d([h, w], false, None, None),
        );
    }
    Ok(Tensor::cat(&maps, 0).to_kind(Kind::Float))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "pixel-invariance",
    summary: "for embedding models: a linear surrogate of the similarity to augmented copies; its weights show the pixels the invariance rests on",
    reference: "Sammani, Joukovsky & Deligiannis 2022, arXiv:2206.09753 (code: fawazsammani/explain-cl)",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Forward,
    stochastic: true,
    control: false,
    clips: false,
    cost: "1 + one forward pass per augmentation (augments = 1000), then the surrogate's fit",
};

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    p: &Params,
    x: &tch::Tensor,
    _targets: &tch::Tensor,
    ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    attribute(ctx, p, x, ids).map(super::Attribution::plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn augmentations_keep_pixels_in_range_and_in_place() {
        let x = Tensor::rand([3, 16, 16], (Kind::Float, Device::Cpu));
        let mut rng = crate::rng::stream(0, "test", 0, 0);
        let mut changed = 0;
        for _ in 0..50 {
            let a = augment(&mut rng, &x);
            assert_eq!(a.size(), vec![3, 16, 16]);
            let (lo, hi) = (a.min().double_value(&[]), a.max().double_value(&[]));
            assert!(lo >= 0.0 && hi <= 1.0, "{lo} {hi}");
            changed += ((&a - &x).abs().max().double_value(&[]) > 1e-6) as usize;
        }
        assert!(changed > 35, "{changed} of 50 copies changed");
    }

    #[test]
    fn the_surrogate_finds_the_pixel_that_decides_the_label() {
        // Labels follow pixel 3 only: the fitted weight of pixel 3 stands out.
        let xs = Tensor::rand([400, 10], (Kind::Float, Device::Cpu));
        let y = xs.select(1, 3).gt(0.5).to_kind(Kind::Float);
        let p = Params {
            epochs: 300,
            learning_rate: 0.01,
            l1: 0.0,
            ..Params::default()
        };
        let w = fit(
            &p,
            &xs,
            &y,
            (Tensor::zeros([10], (Kind::Float, Device::Cpu)), 0.0),
        );
        let w: Vec<f32> = Vec::try_from(w).unwrap();
        let top = (0..10).max_by(|a, b| w[*a].total_cmp(&w[*b])).unwrap();
        assert_eq!(top, 3, "{w:?}");
    }
}
