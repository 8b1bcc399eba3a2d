//! Occlusion (Zeiler & Fergus 2014, arXiv:1311.2901) with Captum's semantics: square
//! windows over all channels, first window at 0, stride `t` until the side is covered
//! (the last window may be truncated); each pixel gets the mean score drop of the windows
//! covering it. Defaults: window 15, stride 8, baseline 0 (model space), softmax score.
//!
//! Video models: windows are spatio-temporal boxes, `time-window` frames long (default 2)
//! at every `time-stride`-th frame (default 1), each frame's part at the same square (as
//! Captum's `Occlusion` with a `(C, t, h, w)` sliding window on clips).
use super::{target_score, Ctx};
use crate::error::Result;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    pub window: usize,
    pub stride: usize,
    /// Value written into the window, in model-input space.
    pub baseline: f64,
    /// Video models: frames per window.
    pub time_window: usize,
    /// Video models: frames between window starts.
    pub time_stride: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: 15,
            stride: 8,
            baseline: 0.0,
            time_window: 2,
            time_stride: 1,
        }
    }
}

/// Window start positions along a side of length `n` (Captum: ceil((n - w)/t) + 1 windows).
pub fn starts(n: usize, w: usize, t: usize) -> Vec<usize> {
    let t = t.max(1);
    let count = if n > w { (n - w).div_ceil(t) + 1 } else { 1 };
    (0..count).map(|k| k * t).collect()
}

/// Window masks `[n_windows, H*W]` (1 inside).
pub fn masks(h: usize, w: usize, p: &Params) -> (usize, Vec<f32>) {
    let (ys, xs) = (starts(h, p.window, p.stride), starts(w, p.window, p.stride));
    let mut m = vec![0f32; ys.len() * xs.len() * h * w];
    let mut k = 0;
    for &y0 in &ys {
        for &x0 in &xs {
            for y in y0..(y0 + p.window).min(h) {
                for x in x0..(x0 + p.window).min(w) {
                    m[k * h * w + y * w + x] = 1.0;
                }
            }
            k += 1;
        }
    }
    (k, m)
}

/// Spatio-temporal window masks of clips of `t` frames, in sheet layout `[n, H*(T*W)]`.
pub fn clip_masks(t: usize, h: usize, w: usize, p: &Params) -> (usize, Vec<f32>) {
    let (nw, spatial) = masks(h, w, p);
    let ts = starts(t, p.time_window, p.time_stride);
    let plane = h * t * w;
    let mut m = vec![0f32; ts.len() * nw * plane];
    for (i, &t0) in ts.iter().enumerate() {
        for k in 0..nw {
            let dst = &mut m[(i * nw + k) * plane..(i * nw + k + 1) * plane];
            for f in t0..(t0 + p.time_window).min(t) {
                for y in 0..h {
                    let src = &spatial[k * h * w + y * w..k * h * w + (y + 1) * w];
                    dst[y * t * w + f * w..y * t * w + (f + 1) * w].copy_from_slice(src);
                }
            }
        }
    }
    (ts.len() * nw, m)
}

/// Returns `[B,1,H,W]` (Captum repeats the same map over the channels).
pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let size = x.size();
    let (b, h, w) = (size[0], size[2] as usize, size[3] as usize);
    let dev = x.device();
    let (nw, m) = match ctx.model.clip {
        Some(c) => clip_masks(c.frames as usize, h, w / c.frames as usize, p),
        None => masks(h, w, p),
    };
    let m = Tensor::from_slice(&m)
        .view([nw as i64, (h * w) as i64])
        .to_device(dev);
    let s0 = target_score(&ctx.model.logits(x)?, targets, ctx.score); // [B]
    let mut drops = Vec::new();
    let total = b as usize * nw;
    super::for_chunks(total, ctx.internal_batch, |r| {
        let img: Vec<i64> = r.clone().map(|s| (s / nw) as i64).collect();
        let win: Vec<i64> = r.clone().map(|s| (s % nw) as i64).collect();
        let img = Tensor::from_slice(&img).to_device(dev);
        let win = Tensor::from_slice(&win).to_device(dev);
        let mk = m.index_select(0, &win).view([-1, 1, h as i64, w as i64]);
        let xs = x.index_select(0, &img) * (1.0 - &mk) + &mk * p.baseline;
        let s = target_score(
            &ctx.model.logits(&xs)?,
            &targets.index_select(0, &img),
            ctx.score,
        );
        drops.push(s0.index_select(0, &img) - s);
        Ok(())
    })?;
    let drops = Tensor::cat(&drops, 0)
        .view([b, nw as i64])
        .to_kind(Kind::Float);
    let counts = m.sum_dim_intlist(0, false, Kind::Float);
    let attr = drops.matmul(&m) / counts;
    Ok(attr.view([b, 1, h as i64, w as i64]))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "occlusion",
    summary: "score drop when sliding a baseline patch over the input",
    reference: "Zeiler & Fergus 2014 (ECCV), arXiv:1311.2901",
    score: super::Score::Softmax,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Forward,
    stochastic: false,
    control: false,
    clips: true,
    cost: "1 + one forward pass per window position",
};

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.window == 0 || self.stride == 0 || self.time_window == 0 || self.time_stride == 0 {
            return Err("window, stride, time-window and time-stride must be >= 1".into());
        }
        if !self.baseline.is_finite() {
            return Err("give a finite baseline (model space)".into());
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
    fn window_starts_follow_captum() {
        assert_eq!(starts(28, 7, 4), vec![0, 4, 8, 12, 16, 20, 24]);
        assert_eq!(starts(28, 7, 3), vec![0, 3, 6, 9, 12, 15, 18, 21]);
        assert_eq!(starts(8, 15, 8), vec![0]);
    }

    #[test]
    fn masks_cover_every_pixel() {
        let p = Params {
            window: 3,
            stride: 2,
            baseline: 0.0,
            ..Params::default()
        };
        let (n, m) = masks(5, 6, &p);
        assert_eq!(n, 2 * 3);
        for px in 0..30 {
            assert!((0..n).any(|k| m[k * 30 + px] == 1.0));
        }
    }

    #[test]
    fn clip_windows_span_frames_and_never_straddle_them() {
        let p = Params {
            window: 2,
            stride: 2,
            time_window: 2,
            time_stride: 1,
            ..Params::default()
        };
        // 3 frames of 2x4: 2 spatial windows x 2 temporal starts.
        let (n, m) = clip_masks(3, 2, 4, &p);
        assert_eq!(n, 4);
        let plane = 2 * 12;
        // Window 1 (t0 = 0, right half) covers columns 2..4 of frames 0 and 1 only.
        let row: Vec<f32> = m[plane..plane + 12].to_vec();
        assert_eq!(row, vec![0., 0., 1., 1., 0., 0., 1., 1., 0., 0., 0., 0.]);
        let last: Vec<f32> = m[3 * plane..3 * plane + 12].to_vec();
        assert_eq!(last, vec![0., 0., 0., 0., 0., 0., 1., 1., 0., 0., 1., 1.]);
    }
}
