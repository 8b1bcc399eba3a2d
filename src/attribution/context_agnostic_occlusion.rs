//! Context-agnostic conditional occlusion (Sammani, Joukovsky and Deligiannis 2022,
//! "Visualizing and Understanding Contrastive Learning", arXiv:2206.09753; official code
//! `fawazsammani/explain-cl`, `methods.py::occlusion_context_agnositc`), for embedding models.
//!
//! Conditional occlusion (xaudit's `occlusion` on an embedding model) measures how much the
//! similarity to the other image drops when a window of this image is hidden; the drop also
//! counts what the window adds *in the context* of the rest of the image. The context-agnostic
//! variant isolates the window: for every window position it embeds the image with only the
//! window kept (the rest set to the baseline) and the image with the window occluded, and
//! scores the *difference* of the two embeddings against the other image's embedding:
//!
//! `s_k = cos(f(x ⊙ m_k + b(1 − m_k)) − f(x ⊙ (1 − m_k) + b m_k), e₂)` (xaudit: the score of
//! that difference, cosine / temperature, or its softmax over the references with
//! `score = "softmax"`).
//!
//! Windows: the official code slides a 64-pixel window with stride 8 over 224-pixel inputs;
//! xaudit's defaults are those fractions of the input's shorter side (2/7 and 1/28, at least
//! 1 pixel), so 64 and 8 at 224 and 8 and 1 at 28. The baseline is 0 in model space, the
//! official code's zeros. Deviation: the official code returns the grid of window scores,
//! min-max normalised; xaudit subtracts the lowest window score (the normalisation's shift,
//! without its division: the scale stays the score's) and gives each pixel the mean score of
//! the windows covering it (Captum's occlusion convention, as xaudit's `occlusion`).
use super::{target_score, Ctx};
use crate::error::Result;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Window side in pixels (default: 2/7 of the shorter side, the paper's 64 at 224).
    pub window: Option<usize>,
    /// Pixels between window starts (default: 1/28 of the shorter side, the paper's 8).
    pub stride: Option<usize>,
    /// Value of hidden pixels, in model-input space.
    pub baseline: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            window: None,
            stride: None,
            baseline: 0.0,
        }
    }
}

impl Params {
    /// The window and stride for an `h` x `w` input.
    pub fn sizes(&self, h: usize, w: usize) -> (usize, usize) {
        let side = h.min(w) as f64;
        let window = self
            .window
            .unwrap_or_else(|| ((side * 64.0 / 224.0).round() as usize).max(1));
        let stride = self
            .stride
            .unwrap_or_else(|| ((side * 8.0 / 224.0).round() as usize).max(1));
        (window, stride)
    }
}

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.window == Some(0) || self.stride == Some(0) {
            return Err("window and stride must be >= 1".into());
        }
        if !self.baseline.is_finite() {
            return Err("give a finite baseline (model space)".into());
        }
        Ok(())
    }
}

/// The window scores `[B, n_windows]` and the window masks `[n_windows, H*W]`.
pub fn window_scores(
    ctx: &Ctx,
    p: &Params,
    x: &Tensor,
    targets: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let model = ctx.model;
    let refs = super::references(model, INFO.name)?;
    let size = x.size();
    let (b, h, w) = (size[0], size[2] as usize, size[3] as usize);
    let dev = x.device();
    let (window, stride) = p.sizes(h, w);
    let op = super::occlusion::Params {
        window,
        stride,
        ..Default::default()
    };
    let (nw, m) = super::occlusion::masks(h, w, &op);
    let m = Tensor::from_slice(&m)
        .view([nw as i64, (h * w) as i64])
        .to_device(dev);
    let mut scores = Vec::new();
    // Two images per (image, window) pair.
    super::for_chunks(b as usize * nw, (ctx.internal_batch / 2).max(1), |r| {
        let img: Vec<i64> = r.clone().map(|s| (s / nw) as i64).collect();
        let win: Vec<i64> = r.clone().map(|s| (s % nw) as i64).collect();
        let img = Tensor::from_slice(&img).to_device(dev);
        let win = Tensor::from_slice(&win).to_device(dev);
        let mk = m.index_select(0, &win).view([-1, 1, h as i64, w as i64]);
        let xi = x.index_select(0, &img);
        let hidden = &xi * (1.0 - &mk) + &mk * p.baseline;
        let kept = &xi * &mk + (1.0 - &mk) * p.baseline;
        let e = model
            .embed(&Tensor::cat(&[kept, hidden], 0))?
            .to_kind(Kind::Float);
        let n = r.len() as i64;
        let diff = e.narrow(0, 0, n) - e.narrow(0, n, n);
        scores.push(target_score(
            &refs.scores(&diff),
            &targets.index_select(0, &img),
            ctx.score,
        ));
        Ok(())
    })?;
    Ok((Tensor::cat(&scores, 0).view([b, nw as i64]), m))
}

/// `[B,1,H,W]`: each pixel's mean window score, the lowest window at 0.
pub fn attribute(ctx: &Ctx, p: &Params, x: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let size = x.size();
    let (scores, m) = window_scores(ctx, p, x, targets)?;
    // The difference embedding's cosine is mostly negative (the window alone looks like the
    // baseline); only the order of the windows means something, so shift the lowest to 0.
    let scores = &scores - scores.amin([1].as_slice(), true);
    let counts = m.sum_dim_intlist(0, false, Kind::Float);
    Ok((scores.matmul(&m) / counts).view([size[0], 1, size[2], size[3]]))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "context-agnostic-occlusion",
    summary: "for embedding models: the similarity of (window kept alone − window occluded) to the other image, per window",
    reference: "Sammani, Joukovsky & Deligiannis 2022, arXiv:2206.09753 (code: fawazsammani/explain-cl)",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Forward,
    stochastic: false,
    control: false,
    clips: false,
    cost: "two forward passes per window position",
};

/// The registry's uniform entry point.
pub fn explain(
    ctx: &super::Ctx,
    p: &Params,
    x: &tch::Tensor,
    targets: &tch::Tensor,
    _ids: &[u64],
) -> crate::error::Result<super::Attribution> {
    attribute(ctx, p, x, targets).map(super::Attribution::plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_windows_scale_the_papers_to_the_input() {
        let p = Params::default();
        assert_eq!(p.sizes(224, 224), (64, 8));
        assert_eq!(p.sizes(28, 28), (8, 1));
        assert_eq!(p.sizes(2, 2), (1, 1));
        let q = Params {
            window: Some(5),
            stride: Some(3),
            baseline: 0.0,
        };
        assert_eq!(q.sizes(224, 224), (5, 3));
    }
}
