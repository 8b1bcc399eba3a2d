//! Extremal perturbation (Fong, Patrick & Vedaldi 2019, ICCV, arXiv:1910.08485), as TorchRay
//! computes it (facebookresearch/TorchRay, `torchray/attribution/extremal_perturbation.py`):
//! the smooth mask of a given area that keeps the explained score highest when everything
//! outside it is blurred away.
//!
//! * Scale: TorchRay's step 7, σ 21 and max blur 20 are for 224-pixel inputs; unless set,
//!   xaudit scales them by min(H, W)/224 (at 224 pixels: TorchRay's values).
//! * Perturbation: a pyramid of `levels` Gaussian blurs (σ_l = max-blur · (1 − l/(L−1)),
//!   zero padding, TorchRay's `imsmooth` kernel), read at mask value m by linear
//!   interpolation between levels (m = 1: the input, m = 0: the strongest blur).
//! * Mask: parameters on a grid of side ⌈H/step⌉, turned into a smooth mask by TorchRay's
//!   generator (kernel `exp(−2·max(0, d/σ − ½)²)` on unfolded neighbours, nearest upsampling,
//!   soft-max pooling with coldness 20, clamp to [0,1]).
//! * Objective: the explained score of the masked input (`preserve`; `delete` blurs inside
//!   the mask and negates it) minus λ·mean((sort(m) − r_a)²), r_a the sorted mask of area a;
//!   λ = 300, ×1.0035 per iteration; the input is flipped left-right on even iterations.
//! * Optimiser: SGD, lr 0.01, momentum 0.9, dampening 0.9 (torch's rule: the first step uses
//!   the raw gradient), parameters initialised to 1 and clamped to [0,1] after each step.
//!
//! Video models (Li, Wang, Li, Huang & Sato 2021, WACV, arXiv:2005.00375, and its TCSVT
//! extension arXiv:2109.00222; code `shinkyo0513/Spatio-Temporal-Perturbations-for-Video-Attribution`):
//! one smooth mask per frame from the generator above, each frame blurred by its own
//! pyramid, the area constraint over the whole spatio-temporal volume (the sorted masks of
//! all frames against one reference of area a), and their temporal smoothness regulariser
//! `time-smoothness · mean_{k=1..3} mean((Δ_t^k m)²)` (finite differences of orders 1 to 3
//! along time; weight 300 as theirs), optimised with their schedule: SGD lr 0.05 (momentum
//! and dampening 0.9 as above), the area weight λ doubling every 800 iterations. Deviations,
//! named: the reward stays the explained score (their code also offers a log-probability
//! reward), `iterations` keeps its default of 800 (theirs: 2000), and the masks are not
//! padded in time before differencing (orders above T−1 are dropped).
//!
//! Batching: TorchRay optimises one image at a time; xaudit optimises `group` images (see
//! `attribution::auto_group`) per device pass, each always at the same row of a batch of exactly `group` (see
//! `attribution::optimise_grouped`): the 800 momentum steps amplify last-bit kernel
//! differences into different masks (faces fixture: relative L2 0.23 between batch sizes 1
//! and 4 when an image's row followed the batch), and with fixed rows a map is the same
//! whatever the batch size, the other images or sharding.
use super::{target_score, Ctx};
use crate::error::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    /// Keep the score high with only the mask's area left unblurred (TorchRay's default).
    Preserve,
    /// Bring the score down by blurring the mask's area.
    Delete,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Target area of the mask, as a fraction of the image.
    pub area: f64,
    pub variant: Variant,
    pub iterations: usize,
    /// Levels of the blur pyramid.
    pub levels: usize,
    /// σ of the strongest blur, in pixels (absent: TorchRay's 20 at 224 pixels, scaled).
    pub max_blur: Option<f64>,
    /// Mask parameter grid step, in pixels (absent: TorchRay's 7 at 224 pixels, scaled).
    pub step: Option<usize>,
    /// Smoothness σ of the mask generator, in pixels (absent: TorchRay's 21 at 224, scaled).
    pub sigma: Option<f64>,
    /// Flip the input left-right on even iterations.
    pub jitter: bool,
    /// Images optimised together per device pass (absent: 8 on a GPU; on the CPU as many as
    /// keep 64 Ki pixels per pass, up to 8: 8 at 28 px, 1 at 224 px, where bigger batches
    /// are slower per image). Each image always sits at the same row of a batch of exactly
    /// this many (padded), so its map does not depend on the batch size, the other images or
    /// sharding; another `group` may change maps in their last bits, which hundreds of steps
    /// can amplify.
    pub group: Option<usize>,
    /// Video models: weight of the temporal smoothness regulariser (Li et al.: 300).
    pub time_smoothness: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            area: 0.1,
            variant: Variant::Preserve,
            iterations: 800,
            levels: 8,
            max_blur: None,
            step: None,
            sigma: None,
            jitter: true,
            group: None,
            time_smoothness: 300.0,
        }
    }
}

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if !(self.area > 0.0 && self.area < 1.0) {
            return Err(
                "area is a fraction of the image: give a value in (0, 1) (TorchRay: 0.1)".into(),
            );
        }
        if self.iterations == 0 || self.step == Some(0) || self.group == Some(0) || self.levels < 2
        {
            return Err("iterations, step and group must be >= 1 and levels >= 2".into());
        }
        if self.max_blur.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err("max-blur must be > 0 (TorchRay: 20 at 224 pixels)".into());
        }
        if !(self.time_smoothness.is_finite() && self.time_smoothness >= 0.0) {
            return Err("time-smoothness must be >= 0 (Li et al.: 300)".into());
        }
        if self.sigma.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            return Err("sigma must be > 0 (TorchRay: 21 at 224 pixels)".into());
        }
        Ok(())
    }
}

impl Params {
    /// (step, sigma, max blur) for an `h×w` input: the given values, else TorchRay's
    /// 224-pixel defaults scaled by min(h, w)/224 (the same smoothness relative to the image;
    /// at 28 pixels the unscaled ones blur the whole image and the optimisation becomes
    /// chaotic: masks then change with the batch size).
    pub fn scales(&self, h: i64, w: i64) -> (usize, f64, f64) {
        let r = h.min(w) as f64 / 224.0;
        (
            self.step.unwrap_or(((7.0 * r).round() as usize).max(1)),
            self.sigma.unwrap_or(21.0 * r),
            self.max_blur.unwrap_or(20.0 * r),
        )
    }
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "extremal-perturbation",
    summary:
        "smoothest mask of a given area that keeps the score when the rest is blurred, optimised",
    reference: "Fong, Patrick & Vedaldi 2019 (ICCV), arXiv:1910.08485",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Gradients,
    stochastic: false,
    control: false,
    clips: true,
    cost: "iterations forward + backward passes (800 at the defaults)",
};

/// TorchRay's `imsmooth` (zero padding, separable, kernel normalised to sum 1) of `x` `[N,C,H,W]`.
fn imsmooth(x: &Tensor, sigma: f32) -> Tensor {
    let width = (4.0 * sigma).ceil() as i64;
    let dev = x.device();
    let sqrt2 = std::f32::consts::SQRT_2;
    let filt = Tensor::arange_start(-width, width + 1, (Kind::Float, dev))
        / f64::from(sqrt2 * sigma + f32::EPSILON);
    let filt = (-(&filt * &filt)).exp();
    let filt = &filt / filt.sum(Kind::Float);
    let c = x.size()[1];
    let k = 2 * width + 1;
    let v = filt.reshape([1, 1, k, 1]).expand([c, 1, k, 1], false);
    let h = filt.reshape([1, 1, 1, k]).expand([c, 1, 1, k], false);
    let y = x.conv2d(&v, None::<Tensor>, [1, 1], [width, 0], [1, 1], c);
    y.conv2d(&h, None::<Tensor>, [1, 1], [0, width], [1, 1], c)
}

/// The blur pyramid `[N,L,C,H,W]`, level L−1 = the input.
fn pyramid(x: &Tensor, p: &Params, max_blur: f64) -> Tensor {
    let s = Tensor::linspace(0.0, 1.0, p.levels as i64, (Kind::Float, Device::Cpu));
    let levels: Vec<Tensor> = (0..p.levels as i64)
        .map(|l| {
            let sl = s.double_value(&[l]) as f32;
            let sigma = (1.0 - sl) * max_blur as f32;
            imsmooth(x, sigma).unsqueeze(1)
        })
        .collect();
    Tensor::cat(&levels, 1)
}

/// `x̃` `[N,C,H,W]`: the pyramid read at mask values `m` `[N,1,H,W]` in [0,1].
fn apply(pyr: &Tensor, m: &Tensor) -> Tensor {
    let s = pyr.size();
    let (levels, c) = (s[1], s[2]);
    let w = m * (levels - 1) as f64;
    let k = w.floor().detach();
    let w = w - &k;
    let k = k
        .to_kind(Kind::Int64)
        .unsqueeze(1)
        .expand([s[0], 1, c, s[3], s[4]], false);
    let y0 = pyr.gather(1, &k, false);
    let y1 = pyr.gather(1, &(&k + 1).clamp_max(levels - 1), false);
    let w = w.unsqueeze(1);
    (y0 * (-&w + 1.0) + &w * y1).squeeze_dim(1)
}

/// TorchRay's smooth-mask generator for an `H×W` output.
struct MaskGenerator {
    step: i64,
    padding: i64,
    radius: i64,
    shape: [i64; 2],
    shape_mid: [i64; 2],
    shape_up: [i64; 2],
    margin: i64,
    weight: Tensor,
}

impl MaskGenerator {
    fn new(h: i64, w: i64, step: usize, sigma: f64, dev: Device) -> MaskGenerator {
        let step = step as i64;
        let margin = sigma;
        let padding = 1 + ((margin + sigma) / step as f64).ceil() as i64;
        let radius = 1 + (sigma / step as f64).ceil() as i64;
        let shape_in = [(h + step - 1) / step, (w + step - 1) / step];
        let shape_mid = shape_in.map(|z| z + 2 * padding - (2 * radius + 1) + 1);
        let shape_up = shape_mid.map(|z| step * z);
        let shape_out = shape_up.map(|z| z - step + 1);
        let k = 2 * radius + 1;
        let f = (Kind::Float, Device::Cpu);
        // f32 throughout, as TorchRay builds it (floor of a float32 ratio decides the cell).
        let inv_y = shape_mid[0] as f32 / shape_up[0] as f32;
        let inv_x = shape_mid[1] as f32 / shape_up[1] as f32;
        let uy = Tensor::arange(shape_out[0], f)
            .view([-1, 1])
            .expand([shape_out[0], shape_out[1]], false);
        let ux = Tensor::arange(shape_out[1], f)
            .view([1, -1])
            .expand([shape_out[0], shape_out[1]], false);
        let mut planes = Vec::with_capacity((k * k) as usize);
        for ky in 0..k {
            for kx in 0..k {
                let iy = (&uy * f64::from(inv_y)).floor() + (ky - padding) as f64;
                let ix = (&ux * f64::from(inv_x)).floor() + (kx - padding) as f64;
                let dy = &uy - (iy * step as f64 + margin);
                let dx = &ux - (ix * step as f64 + margin);
                let delta = (&dy * &dy + &dx * &dx).sqrt();
                let z = (delta / sigma - 0.5).clamp_min(0.0);
                planes.push((-(&z * &z) * 2.0).exp().unsqueeze(0));
            }
        }
        let weight = Tensor::cat(&planes, 0).unsqueeze(0).to_device(dev);
        MaskGenerator {
            step,
            padding,
            radius,
            shape: [h, w],
            shape_mid,
            shape_up,
            margin: margin.round() as i64,
            weight,
        }
    }

    fn shape_in(&self) -> [i64; 2] {
        [
            (self.shape[0] + self.step - 1) / self.step,
            (self.shape[1] + self.step - 1) / self.step,
        ]
    }

    /// (cropped `[N,1,H,W]`, full with margin `[N,1,H',W']`).
    fn generate(&self, pmask: &Tensor) -> (Tensor, Tensor) {
        let k = 2 * self.radius + 1;
        let n = pmask.size()[0];
        let m = pmask.im2col([k, k], [1, 1], [self.padding, self.padding], [1, 1]);
        let m = m.reshape([n, k * k, self.shape_mid[0], self.shape_mid[1]]);
        let m = m.upsample_nearest2d(self.shape_up, None, None);
        let m = m.narrow(2, 0, self.shape_up[0] - self.step + 1).narrow(
            3,
            0,
            self.shape_up[1] - self.step + 1,
        );
        let m = &self.weight * m;
        let m = (&m * (&m * 20.0).softmax(1, Kind::Float)).sum_dim_intlist(1, true, Kind::Float);
        let m = m.clamp(0.0, 1.0);
        let cropped = m
            .narrow(2, self.margin, self.shape[0])
            .narrow(3, self.margin, self.shape[1]);
        (cropped, m)
    }
}

/// Returns the masks `[B,1,H,W]` in [0,1].
pub fn attribute(
    ctx: &Ctx,
    p: &Params,
    x: &Tensor,
    targets: &Tensor,
    ids: &[u64],
) -> Result<Tensor> {
    super::optimise_grouped(
        "extremal-perturbation",
        p,
        p.group,
        x,
        targets,
        ids,
        |x, t| optimise(ctx, p, x, t),
    )
}

fn optimise(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    if let Some(c) = ctx.model.clip {
        return optimise_clip(ctx, p, x, targets, c.frames);
    }
    let (h, w) = (x.size()[2], x.size()[3]);
    let (step, sigma, max_blur) = p.scales(h, w);
    let pyr = tch::no_grad(|| pyramid(&x.detach(), p, max_blur));
    let gen = MaskGenerator::new(h, w, step, sigma, x.device());
    // TorchRay: torch.optim.SGD lr 0.01, the area weight ×1.0035 per iteration.
    let schedule = Schedule {
        per: 1,
        lr: 0.01,
        growth: 1.0035,
    };
    descend(
        ctx,
        p,
        &pyr,
        &gen,
        targets,
        schedule,
        |m| ctx.model.forward_grad(m),
        None,
    )
}

/// How the masks of one explained input are laid out and optimised.
struct Schedule {
    /// Masks per input (1, or a clip's frames).
    per: i64,
    lr: f64,
    /// The area weight's growth per iteration.
    growth: f64,
}

/// TorchRay's descent: masks `[B·per,1,h',w']` from the generator, the area constraint over
/// each input's `per` masks together, SGD with momentum 0.9 and dampening 0.9; `forward`
/// scores the masked pyramid, `penalty` (of the masks `[B,per,P]`) is subtracted from the
/// energy. Returns the masks of the last iteration, before its update (as TorchRay).
#[allow(clippy::too_many_arguments)]
fn descend(
    ctx: &Ctx,
    p: &Params,
    pyr: &Tensor,
    gen: &MaskGenerator,
    targets: &Tensor,
    s: Schedule,
    forward: impl Fn(&Tensor) -> Result<Tensor>,
    penalty: Option<&dyn Fn(&Tensor) -> Tensor>,
) -> Result<Tensor> {
    let dev = pyr.device();
    let b = targets.size()[0];
    let [hi, wi] = gen.shape_in();
    let full = gen.shape_up.map(|z| z - gen.step + 1);
    let plane = full[0] * full[1];
    let volume = s.per * plane;
    let zeros = (volume as f64 * (1.0 - p.area)) as i64;
    let reference = Tensor::cat(
        &[
            Tensor::zeros([zeros], (Kind::Float, dev)),
            Tensor::ones([volume - zeros], (Kind::Float, dev)),
        ],
        0,
    )
    .view([1, volume]);
    let mut pmask = Tensor::ones([b * s.per, 1, hi, wi], (Kind::Float, dev));
    let mut buf: Option<Tensor> = None;
    let mut weight = 300.0f64;
    let mut last = None;
    let sign = match p.variant {
        Variant::Preserve => 1.0,
        Variant::Delete => -1.0,
    };
    for t in 0..p.iterations {
        crate::interrupt::check()?;
        let grad = tch::with_grad(|| -> Result<Tensor> {
            let leaf = pmask.detach().set_requires_grad(true);
            let (cropped, m) = gen.generate(&leaf);
            last = Some(cropped.detach());
            let masked = match p.variant {
                Variant::Preserve => apply(pyr, &cropped),
                Variant::Delete => apply(pyr, &(-&cropped + 1.0)),
            };
            let masked = if p.jitter && t % 2 == 0 {
                masked.flip([3])
            } else {
                masked
            };
            let y = forward(&masked)?;
            let reward = target_score(&y, targets, ctx.score) * sign;
            let sorted = m.reshape([b, volume]).sort(1, false).0;
            let regul = -((sorted - &reference)
                .square()
                .mean_dim(1, false, Kind::Float))
                * weight;
            let energy = match penalty {
                Some(f) => reward + regul - f(&m.reshape([b, s.per, plane])),
                None => reward + regul,
            }
            .sum(Kind::Float);
            let mut g = Tensor::f_run_backward(&[&(-energy)], &[&leaf], false, false)?;
            Ok(g.pop().unwrap_or_else(|| leaf.zeros_like()))
        })?;
        let step = match buf.take() {
            None => grad,
            Some(v) => v * 0.9 + grad * (1.0 - 0.9),
        };
        pmask = (&pmask - &step * s.lr).clamp(0.0, 1.0);
        buf = Some(step);
        weight *= s.growth;
    }
    Ok(last.unwrap_or_else(|| tch::no_grad(|| gen.generate(&pmask).0)))
}

/// `mean_{k=1..3} mean((Δ_t^k m)²)` per clip of masks `[B,T,P]` (Li et al.'s temporal
/// smoothness), `[B]`.
fn time_roughness(m: &Tensor) -> Tensor {
    let t = m.size()[1];
    let orders = (t - 1).clamp(0, 3);
    let mut d = m.shallow_clone();
    let mut terms = Vec::new();
    for _ in 0..orders {
        let n = d.size()[1];
        d = d.narrow(1, 1, n - 1) - d.narrow(1, 0, n - 1);
        terms.push(
            d.square()
                .mean_dim([1i64, 2].as_slice(), false, Kind::Float),
        );
    }
    if terms.is_empty() {
        return m.sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float) * 0.0;
    }
    let n = terms.len() as f64;
    terms
        .into_iter()
        .reduce(|a, b| a + b)
        .map(|s| s / n)
        .unwrap_or_default()
}

/// The video variant: `x` are clips' sheets `[B,C,H,T·W]`; returns sheets `[B,1,H,T·W]`.
fn optimise_clip(
    ctx: &Ctx,
    p: &Params,
    x: &Tensor,
    targets: &Tensor,
    frames: i64,
) -> Result<Tensor> {
    let size = x.size();
    let (b, c, h, w) = (size[0], size[1], size[2], size[3] / frames);
    let bt = b * frames;
    let (step, sigma, max_blur) = p.scales(h, w);
    // Frames as images [B·T,C,H,W], clip-major.
    let to_frames = |v: &Tensor, ch: i64| {
        crate::clip::to_clip(v, frames)
            .permute([0, 2, 1, 3, 4])
            .reshape([bt, ch, h, w])
    };
    let to_sheets = |f: &Tensor, ch: i64| {
        crate::clip::to_sheet(&f.view([b, frames, ch, h, w]).permute([0, 2, 1, 3, 4]))
    };
    let pyr = tch::no_grad(|| pyramid(&to_frames(&x.detach(), c), p, max_blur));
    let gen = MaskGenerator::new(h, w, step, sigma, x.device());
    // Li et al.'s schedule: lr 0.05, the area weight doubling every 800 iterations.
    let schedule = Schedule {
        per: frames,
        lr: 0.05,
        growth: 1.0008668,
    };
    let rough = |m: &Tensor| time_roughness(m) * p.time_smoothness;
    let masks = descend(
        ctx,
        p,
        &pyr,
        &gen,
        targets,
        schedule,
        |m| ctx.model.forward_grad(&to_sheets(m, c)),
        Some(&rough),
    )?;
    Ok(to_sheets(&masks, 1))
}

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    p: &Params,
    x: &Tensor,
    targets: &Tensor,
    ids: &[u64],
) -> Result<super::Attribution> {
    attribute(ctx, p, x, targets, ids).map(super::Attribution::plain)
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    #[test]
    fn time_roughness_is_zero_for_constant_masks_and_grows_with_flicker() {
        let flat = Tensor::ones([1, 5, 4], (Kind::Float, Device::Cpu));
        assert_eq!(super::time_roughness(&flat).double_value(&[0]), 0.0);
        let flicker = Tensor::from_slice(&[0f32, 1., 0., 1., 0.])
            .view([1, 5, 1])
            .expand([1, 5, 4], false);
        let ramp = Tensor::from_slice(&[0f32, 0.25, 0.5, 0.75, 1.])
            .view([1, 5, 1])
            .expand([1, 5, 4], false);
        let (f, r) = (
            super::time_roughness(&flicker).double_value(&[0]),
            super::time_roughness(&ramp).double_value(&[0]),
        );
        // Ramp: Δ¹ = 0.25 everywhere, Δ² = Δ³ = 0, so (0.0625 + 0 + 0) / 3.
        assert!((r - 0.0625 / 3.0).abs() < 1e-7, "{r}");
        assert!(f > 10.0 * r, "{f} vs {r}");
    }
}
