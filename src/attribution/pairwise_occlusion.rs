//! Pairwise occlusion (Sammani, Joukovsky and Deligiannis 2022, "Visualizing and
//! Understanding Contrastive Learning", arXiv:2206.09753; official code
//! `fawazsammani/explain-cl`, `methods.py::pairwise_occlusion`), for embedding models whose
//! images are paired with a second view or a partner image.
//!
//! Occluding one image at a time misses what the two images of a pair share. Pairwise
//! occlusion erases a random rectangle in *both* images at once, `erases` times, and measures
//! the similarity of the two erased embeddings. Draws whose erasure lowers the similarity most
//! matter most: their weights are the softmax, over the draws, of the drop from the pair's
//! clean similarity. Each draw credits one side: the image whose erased embedding has the
//! smaller norm (the official code's rule), whose erased rectangle then receives the draw's
//! weight:
//!
//! `A₁ = Σ_n softmax_n(cos(f(x₁), f(x₂)) − cos(f(x₁ ⊙ E¹_n), f(x₂ ⊙ E²_n))) · 1[‖f(x₁ ⊙ E¹_n)‖ < ‖f(x₂ ⊙ E²_n)‖] · (1 − E¹_n)`
//!
//! Rectangles follow torchvision's `RandomErasing` (the official code's): area a uniform
//! share of the image in `scale` (default 0.1-0.3), aspect ratio log-uniform in `ratio`
//! (default 1-1.5), up to 10 tries to fit, value `value` (0 in model space); 100 erases, the
//! notebook's settings. The similarity is the cosine (the temperature and `score` do not
//! apply). Draws are keyed by `--seed`, the image and the side, so both sides of a pair and
//! every audit's evaluation of one image reuse them. Deviations: the official code finds the
//! erased pixels as those whose channel sum is exactly 0 after erasing, which also counts
//! pixels that were 0 before; xaudit uses the rectangles themselves. The official code
//! divides each side's map by its maximum; xaudit leaves the scale (the weights sum to 1).
//! Image 2's map is xaudit's map of the swapped pair (the partner explained against the
//! image), computed with its own draws.
use super::Ctx;
use crate::error::Result;
use rand::Rng;
use serde::Serialize;
use tch::{Kind, Tensor};

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Random erasures of the pair.
    pub erases: usize,
    /// Erased share of the image, min and max.
    pub scale: [f64; 2],
    /// Aspect ratio (height / width) of the rectangle, min and max.
    pub ratio: [f64; 2],
    /// Value of erased pixels, in model-input space.
    pub value: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            erases: 100,
            scale: [0.1, 0.3],
            ratio: [1.0, 1.5],
            value: 0.0,
        }
    }
}

impl super::Validate for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if self.erases == 0 {
            return Err("erases must be >= 1".into());
        }
        let [s0, s1] = self.scale;
        if !(s0 > 0.0 && s0 <= s1 && s1 < 1.0) {
            return Err("scale must be two shares 0 < min <= max < 1".into());
        }
        let [r0, r1] = self.ratio;
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return Err("ratio must be two aspect ratios 0 < min <= max".into());
        }
        if !self.value.is_finite() {
            return Err("give a finite value (model space)".into());
        }
        Ok(())
    }
}

/// An erased rectangle: top, left, height, width.
type Rect = (usize, usize, usize, usize);

/// torchvision's `RandomErasing.get_params`: None when 10 tries found no rectangle that fits.
pub fn erase_rect(rng: &mut impl Rng, h: usize, w: usize, p: &Params) -> Option<Rect> {
    let area = (h * w) as f64;
    let (l0, l1) = (p.ratio[0].ln(), p.ratio[1].ln());
    for _ in 0..10 {
        let a = area * rng.random_range(p.scale[0]..=p.scale[1]);
        let r = if l1 > l0 {
            rng.random_range(l0..l1).exp()
        } else {
            l0.exp()
        };
        let eh = (a * r).sqrt().round() as usize;
        let ew = (a / r).sqrt().round() as usize;
        if !(eh < h && ew < w) || eh == 0 || ew == 0 {
            continue;
        }
        let top = rng.random_range(0..=h - eh);
        let left = rng.random_range(0..=w - ew);
        return Some((top, left, eh, ew));
    }
    None
}

fn fill(mask: &mut [f32], w: usize, r: Option<Rect>) {
    if let Some((t, l, eh, ew)) = r {
        for y in t..t + eh {
            mask[y * w + l..y * w + l + ew].fill(1.0);
        }
    }
}

/// `[B,1,H,W]`: each pixel's summed weight of the draws that erased it and credited image 1.
pub fn attribute(
    ctx: &Ctx,
    p: &Params,
    x: &Tensor,
    targets: &Tensor,
    ids: &[u64],
) -> Result<Tensor> {
    let model = ctx.model;
    let other = super::partners(model, INFO.name, targets)?;
    let size = x.size();
    let (b, h, w) = (size[0] as usize, size[2] as usize, size[3] as usize);
    let dev = x.device();
    let n = p.erases;
    // rects[i * n + k] = (image 1's, image 2's) rectangle of draw k of image i.
    let rects: Vec<[Option<Rect>; 2]> = (0..b * n)
        .map(|s| {
            let (i, k) = (s / n, s % n);
            let img = super::image_of(ids[i]);
            let draw = |side: u64| {
                let mut rng =
                    crate::rng::stream(ctx.seed, "pairwise-occlusion", img, 2 * k as u64 + side);
                erase_rect(&mut rng, h, w, p)
            };
            [draw(0), draw(1)]
        })
        .collect();
    let base = crate::embedding::cosine(
        &model.embed(x)?.to_kind(Kind::Float),
        &model.embed(&other)?.to_kind(Kind::Float),
    );
    let (mut sims, mut first) = (Vec::new(), Vec::new());
    // Two images per draw.
    super::for_chunks(b * n, (ctx.internal_batch / 2).max(1), |r| {
        let len = r.len();
        let mut m = vec![0f32; 2 * len * h * w];
        for (j, s) in r.clone().enumerate() {
            fill(&mut m[j * h * w..(j + 1) * h * w], w, rects[s][0]);
            fill(
                &mut m[(len + j) * h * w..(len + j + 1) * h * w],
                w,
                rects[s][1],
            );
        }
        let m = Tensor::from_slice(&m)
            .view([2 * len as i64, 1, h as i64, w as i64])
            .to_device(dev);
        let img: Vec<i64> = r.clone().map(|s| (s / n) as i64).collect();
        let img = Tensor::from_slice(&img).to_device(dev);
        let pair = Tensor::cat(&[x.index_select(0, &img), other.index_select(0, &img)], 0);
        let erased = &pair * (1.0 - &m) + &m * p.value;
        let e = model.embed(&erased)?.to_kind(Kind::Float);
        let (e1, e2) = (
            e.narrow(0, 0, len as i64),
            e.narrow(0, len as i64, len as i64),
        );
        sims.push(crate::embedding::cosine(&e1, &e2));
        let norm = |e: &Tensor| e.norm_scalaropt_dim(2, [1].as_slice(), false);
        first.push(norm(&e1).lt_tensor(&norm(&e2)));
        Ok(())
    })?;
    let sims = Tensor::cat(&sims, 0).view([b as i64, n as i64]);
    let weights = (base.unsqueeze(1) - sims).softmax(1, Kind::Float)
        * Tensor::cat(&first, 0)
            .view([b as i64, n as i64])
            .to_kind(Kind::Float);
    let weights = Vec::<f32>::try_from(weights.to_device(tch::Device::Cpu).flatten(0, -1))?;
    let mut maps = vec![0f32; b * h * w];
    for (s, wt) in weights.iter().enumerate() {
        if let Some((t, l, eh, ew)) = rects[s][0] {
            let map = &mut maps[(s / n) * h * w..(s / n + 1) * h * w];
            for y in t..t + eh {
                for v in &mut map[y * w + l..y * w + l + ew] {
                    *v += wt;
                }
            }
        }
    }
    Ok(Tensor::from_slice(&maps)
        .view([b as i64, 1, h as i64, w as i64])
        .to_device(dev))
}

/// Registry entry (see `attribution::registry`).
pub const INFO: super::MethodInfo = super::MethodInfo {
    name: "pairwise-occlusion",
    summary: "for paired embedding models: random rectangles erased in both images at once, weighted by the similarity drop they cause",
    reference: "Sammani, Joukovsky & Deligiannis 2022, arXiv:2206.09753 (code: fawazsammani/explain-cl)",
    score: super::Score::Logit,
    aggregate: super::Aggregate::Sum,
    needs: super::Needs::Forward,
    stochastic: true,
    control: false,
    clips: false,
    cost: "2 + two forward passes per erasure (erases = 100)",
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

    #[test]
    fn rectangles_follow_random_erasing() {
        let p = Params::default();
        let mut rng = crate::rng::stream(0, "test", 0, 0);
        for _ in 0..500 {
            let (t, l, eh, ew) = erase_rect(&mut rng, 224, 224, &p).unwrap();
            assert!(t + eh <= 224 && l + ew <= 224);
            let share = (eh * ew) as f64 / (224.0 * 224.0);
            assert!((0.09..=0.31).contains(&share), "share {share}");
            let r = eh as f64 / ew as f64;
            assert!((0.97..=1.53).contains(&r), "ratio {r}");
        }
        // A rectangle that cannot fit is given up after 10 tries, as torchvision does.
        let big = Params {
            scale: [0.99, 0.99],
            ratio: [4.0, 4.0],
            ..Params::default()
        };
        assert!(erase_rect(&mut rng, 10, 10, &big).is_none());
    }
}
