//! RISE (Petsiuk, Das & Saenko 2018, arXiv:1806.07421), masks generated exactly as the
//! official code (eclique/RISE): an s×s Bernoulli(p) grid, bilinearly upsampled to
//! (s+1)·⌈H/s⌉ with skimage's `resize(order=1, mode='reflect')` convention, randomly
//! shifted by less than one cell and cropped. Saliency `Σ_i f_c(x ⊙ M_i) M_i / (N p)`.
//! Masks are shared by all images and drawn from `--seed` per mask index.
//!
//! Video models: the grid gains a time axis of `time-grid` cells (default 4) and each axis
//! is upsampled, shifted and cropped as above, so masks are smooth spatio-temporal blobs
//! over the clip `[T,H,W]` (an extension of RISE's construction to three axes; the paper
//! has no video variant).
use super::{target_score, Ctx};
use crate::error::Result;
use rand::Rng;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Norm {
    /// Divide by N·p (official code; the default).
    Official,
    /// Divide by Σ_i M_i per pixel (xplique): a ratio estimator, exact for constant models.
    MaskSum,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    pub masks: usize,
    pub grid: usize,
    pub p: f64,
    pub norm: Norm,
    /// Video models: grid cells along time.
    pub time_grid: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            masks: 4000,
            grid: 7,
            p: 0.5,
            norm: Norm::Official,
            time_grid: 4,
        }
    }
}

/// Linear-interpolation taps for resizing `n` → `up` with half-pixel centres and mirror
/// boundary (scipy.ndimage 'mirror', which skimage calls 'reflect').
pub(crate) fn taps(n: usize, up: usize) -> Vec<(usize, usize, f32)> {
    let mirror = |i: i64| -> usize {
        if n == 1 {
            return 0;
        }
        let period = 2 * (n as i64 - 1);
        let mut i = i.rem_euclid(period);
        if i > n as i64 - 1 {
            i = period - i;
        }
        i as usize
    };
    (0..up)
        .map(|o| {
            let src = (o as f64 + 0.5) * n as f64 / up as f64 - 0.5;
            let i0 = src.floor();
            let f = (src - i0) as f32;
            (mirror(i0 as i64), mirror(i0 as i64 + 1), f)
        })
        .collect()
}

/// The `[up, n]` matrix of `taps(n, up)`: `R · v` resizes a length-`n` signal to `up` samples
/// (applied on both axes, `R_y · M · R_xᵀ`, it is skimage's bilinear `resize(order=1, mode='reflect')`).
pub(crate) fn resize_matrix(n: usize, up: usize) -> Tensor {
    let mut m = vec![0f32; up * n];
    for (o, (i0, i1, f)) in taps(n, up).into_iter().enumerate() {
        m[o * n + i0] += 1.0 - f;
        m[o * n + i1] += f;
    }
    Tensor::from_slice(&m).view([up as i64, n as i64])
}

/// Mask `j` as H*W values in [0,1]; depends only on (seed, j) and the parameters.
pub fn mask(seed: u64, j: u64, p: &Params, h: usize, w: usize) -> Vec<f32> {
    let s = p.grid.max(1);
    let mut rng = crate::rng::stream(seed, "rise-mask", j, 0);
    let grid: Vec<f32> = (0..s * s)
        .map(|_| if rng.random::<f64>() < p.p { 1.0 } else { 0.0 })
        .collect();
    let (ch, cw) = (h.div_ceil(s), w.div_ceil(s));
    let dy = rng.random_range(0..ch);
    let dx = rng.random_range(0..cw);
    let (ty, tx) = (taps(s, (s + 1) * ch), taps(s, (s + 1) * cw));
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        let (y0, y1, fy) = ty[y + dy];
        for x in 0..w {
            let (x0, x1, fx) = tx[x + dx];
            let top = grid[y0 * s + x0] * (1.0 - fx) + grid[y0 * s + x1] * fx;
            let bot = grid[y1 * s + x0] * (1.0 - fx) + grid[y1 * s + x1] * fx;
            out[y * w + x] = top * (1.0 - fy) + bot * fy;
        }
    }
    out
}

/// Mask `j` of clips of `t` frames `[H,W]` in sheet layout (`H × T·W` values, frame f in
/// columns `f·W..(f+1)·W`); depends only on (seed, j) and the parameters.
pub fn clip_mask(seed: u64, j: u64, p: &Params, t: usize, h: usize, w: usize) -> Vec<f32> {
    let s = p.grid.max(1);
    let st = p.time_grid.max(1);
    let mut rng = crate::rng::stream(seed, "rise-clip-mask", j, 0);
    let grid: Vec<f32> = (0..st * s * s)
        .map(|_| if rng.random::<f64>() < p.p { 1.0 } else { 0.0 })
        .collect();
    let (ct, ch, cw) = (t.div_ceil(st), h.div_ceil(s), w.div_ceil(s));
    let dt = rng.random_range(0..ct);
    let dy = rng.random_range(0..ch);
    let dx = rng.random_range(0..cw);
    let (tt, ty, tx) = (
        taps(st, (st + 1) * ct),
        taps(s, (s + 1) * ch),
        taps(s, (s + 1) * cw),
    );
    let g = |a: usize, y: usize, x: usize| grid[(a * s + y) * s + x];
    let mut out = vec![0f32; h * t * w];
    for f in 0..t {
        let (t0, t1, ft) = tt[f + dt];
        for y in 0..h {
            let (y0, y1, fy) = ty[y + dy];
            for x in 0..w {
                let (x0, x1, fx) = tx[x + dx];
                let plane = |a: usize| {
                    let top = g(a, y0, x0) * (1.0 - fx) + g(a, y0, x1) * fx;
                    let bot = g(a, y1, x0) * (1.0 - fx) + g(a, y1, x1) * fx;
                    top * (1.0 - fy) + bot * fy
                };
                out[y * t * w + f * w + x] = plane(t0) * (1.0 - ft) + plane(t1) * ft;
            }
        }
    }
    out
}

/// Returns `[B,1,H,W]`.
pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let size = x.size();
    let (b, h, w) = (size[0], size[2] as usize, size[3] as usize);
    let dev = x.device();
    let n = p.masks.max(1);
    let per = (ctx.internal_batch / b as usize).max(1);
    let mut sal = Tensor::zeros([b, (h * w) as i64], (Kind::Float, dev));
    let mut mask_sum = Tensor::zeros([(h * w) as i64], (Kind::Float, dev));
    super::for_chunks(n, per, |r| {
        let mut m = Vec::with_capacity(r.len() * h * w);
        for j in r.clone() {
            m.extend(match ctx.model.clip {
                Some(c) => {
                    let t = c.frames as usize;
                    clip_mask(ctx.seed, j as u64, p, t, h, w / t)
                }
                None => mask(ctx.seed, j as u64, p, h, w),
            });
        }
        let k = r.len() as i64;
        let m = Tensor::from_slice(&m)
            .view([k, (h * w) as i64])
            .to_device(dev);
        let xs = (x.unsqueeze(1) * m.view([1, k, 1, h as i64, w as i64])).flatten(0, 1);
        let t = targets.repeat_interleave_self_int(k, Some(0), None);
        let s = target_score(&ctx.model.logits(&xs)?, &t, ctx.score).view([b, k]);
        sal += s.to_kind(Kind::Float).matmul(&m);
        mask_sum += m.sum_dim_intlist(0, false, Kind::Float);
        Ok(())
    })?;
    let sal = match p.norm {
        Norm::Official => sal / (n as f64 * p.p),
        Norm::MaskSum => {
            let safe = mask_sum.where_self(&mask_sum.gt(0.0), &mask_sum.ones_like());
            sal / safe
        }
    };
    Ok(sal.view([b, 1, h as i64, w as i64]))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "rise",
    summary: "score-weighted random masks",
    reference: "Petsiuk, Das & Saenko 2018 (BMVC), arXiv:1806.07421",
    score: super::Score::Softmax,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Forward,
    stochastic: true,
    control: false,
    clips: true,
    cost: "masks forward passes (4000 at the defaults)",
};

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.masks == 0 || self.grid == 0 || self.time_grid == 0 {
            return Err("masks, grid and time-grid must be >= 1".into());
        }
        if !(self.p > 0.0 && self.p < 1.0) {
            return Err("p is the probability that a grid cell is kept: give a value in (0, 1) (paper: 0.5)".into());
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
    _ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    use super::Attribution;
    attribute(ctx, p, x, targets).map(Attribution::plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_in_unit_range_and_reproducible() {
        let p = Params {
            masks: 10,
            grid: 4,
            p: 0.5,
            norm: Norm::Official,
            ..Params::default()
        };
        let a = mask(3, 5, &p, 10, 12);
        assert_eq!(a, mask(3, 5, &p, 10, 12));
        assert_ne!(a, mask(3, 6, &p, 10, 12));
        assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn clip_masks_are_reproducible_and_vary_over_time() {
        let p = Params {
            grid: 3,
            time_grid: 2,
            ..Params::default()
        };
        let m = clip_mask(1, 2, &p, 4, 6, 6);
        assert_eq!(m.len(), 6 * 24);
        assert!(m.iter().all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(m, clip_mask(1, 2, &p, 4, 6, 6));
        // Some mask of a few differs between its first and last frame.
        let differs = (0..8u64).any(|j| {
            let m = clip_mask(1, j, &p, 4, 6, 6);
            (0..6).any(|y| m[y * 24..y * 24 + 6] != m[y * 24 + 18..y * 24 + 24])
        });
        assert!(differs);
    }

    #[test]
    fn mirror_taps_match_ndimage() {
        // 2 → 4 with half-pixel centres: src = -0.25, 0.25, 0.75, 1.25.
        let t = taps(2, 4);
        assert_eq!((t[0].0, t[0].1), (1, 0)); // mirror(-1) = 1
        assert!((t[0].2 - 0.75).abs() < 1e-6);
        assert_eq!((t[3].0, t[3].1), (1, 0)); // mirror(2) = 0
        assert!((t[3].2 - 0.25).abs() < 1e-6);
    }
}
