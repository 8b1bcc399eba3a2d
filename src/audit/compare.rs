//! Similarity between an original and a changed explanation, as Adebayo et al. compute it:
//! Spearman with absolute values on PAIR's grayscale map (Σ_c|a|, 99th-percentile clip),
//! Spearman without absolute values on PAIR's diverging map, and SSIM on the min-max
//! normalised raw mask.
use crate::similarity;
use serde::{Deserialize, Serialize};

pub const METRICS: &[&str] = &["spearman-abs", "spearman", "ssim"];

/// Per image: (index, [spearman-abs, spearman, ssim]).
pub type Sims = Vec<(usize, [f64; 3])>;

/// Per image: pictures of the input, the original and the changed explanation.
pub type Pictures = std::collections::BTreeMap<usize, Vec<super::Panel>>;

/// How maps are compared.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CompareParams {
    /// Percentile for PAIR's visualisation clip.
    #[serde(default = "d_pct")]
    pub percentile: f64,
    /// SSIM data range: 1 is correct for [0,1] maps; 2 reproduces the reference numbers
    /// (skimage 0.15 used the float dtype range [-1,1] when none was given).
    #[serde(default = "d_dr")]
    pub ssim_data_range: f64,
}

fn d_pct() -> f64 {
    99.0
}
fn d_dr() -> f64 {
    1.0
}

/// Range check shared by the audits that compare maps.
pub fn check(percentile: f64, ssim_data_range: f64) -> std::result::Result<(), String> {
    if !(super::positive(percentile) && percentile <= 100.0 && super::positive(ssim_data_range)) {
        return Err("percentile must be in (0, 100] and ssim-data-range > 0".into());
    }
    Ok(())
}

/// A stochastic method's noise floor on these similarities: Spearman (abs) between two clean
/// explanations of every image that differ only in their Monte Carlo draws (empty for
/// deterministic methods), as (image, value).
pub fn noise_floor(
    run: &super::RunCtx,
    method: &crate::attribution::Method,
    cp: &CompareParams,
) -> crate::error::Result<Vec<(usize, f64)>> {
    let mut out = Vec::new();
    if !method.kind().is_stochastic() {
        return Ok(out);
    }
    run.for_batches(|b| {
        let orig = run.clean_maps(method, b)?;
        let Some(alt) = run.noise_maps(method, b)? else {
            return Ok(());
        };
        let s = orig.size();
        let (c, h, w) = (s[1] as usize, s[2] as usize, s[3] as usize);
        let a = super::run::to_vecs(&orig)?;
        let bb = super::run::to_vecs(&alt)?;
        for ((x, y), i) in a.iter().zip(&bb).zip(b.indices.clone()) {
            out.push((i, similarities(x, y, c, h, w, cp)[0].1));
        }
        Ok(())
    })?;
    Ok(out)
}

impl Default for CompareParams {
    fn default() -> Self {
        CompareParams {
            percentile: d_pct(),
            ssim_data_range: d_dr(),
        }
    }
}

/// `[("spearman-abs", ρ), ("spearman", ρ), ("ssim", s)]` for raw `[c,h,w]` maps.
pub fn similarities(
    a: &[f32],
    b: &[f32],
    c: usize,
    h: usize,
    w: usize,
    p: &CompareParams,
) -> [(&'static str, f64); 3] {
    let ga = similarity::pair_gray(a, c, h, w, p.percentile);
    let gb = similarity::pair_gray(b, c, h, w, p.percentile);
    let da = similarity::pair_diverging(a, c, h, w, p.percentile);
    let db = similarity::pair_diverging(b, c, h, w, p.percentile);
    let ma = similarity::minmax(a);
    let mb = similarity::minmax(b);
    [
        ("spearman-abs", similarity::spearman(&ga, &gb)),
        ("spearman", similarity::spearman(&da, &db)),
        (
            "ssim",
            similarity::ssim(&ma, &mb, c, h, w, p.ssim_data_range),
        ),
    ]
}

/// Explains every image with `model` (possibly randomised) for the classes `pick` chooses
/// from its predictions, and compares each map with the clean one. The clean maps must have
/// been cached (`warm`) while the model was still trained.
pub fn sweep(
    run: &super::RunCtx,
    method: &crate::attribution::Method,
    model: &crate::model::Model,
    cp: &CompareParams,
    eval_k: u64,
    label: &str,
    pick: impl Fn(usize, i64, i64) -> i64,
) -> crate::error::Result<(Sims, Pictures)> {
    sweep_pictures(
        run,
        method,
        model,
        cp,
        eval_k,
        label,
        pick,
        Keep::Candidates,
    )
}

/// Which pictures a sweep keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// None (an intermediate randomisation stage whose pictures would be discarded).
    None,
    /// Only images that can become a best or worst example by this sweep's own
    /// similarities (memory flat in the number of images).
    Candidates,
    /// Every image (the gated value is not this sweep's similarity).
    All,
}

/// `sweep`, keeping the pictures `keep` says.
#[allow(clippy::too_many_arguments)]
pub fn sweep_pictures(
    run: &super::RunCtx,
    method: &crate::attribution::Method,
    model: &crate::model::Model,
    cp: &CompareParams,
    eval_k: u64,
    label: &str,
    pick: impl Fn(usize, i64, i64) -> i64,
    keep: Keep,
) -> crate::error::Result<(Sims, Pictures)> {
    let mut out = Vec::with_capacity(run.data.len());
    // Rows and pictures, pruned as they come when `prune` is set.
    let mut shadow = super::Finding::new("");
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let orig = run.clean_maps(method, b)?;
        let (pred, _) = run.predict(model, &b.x)?;
        let idx: Vec<usize> = b.indices.clone().collect();
        let targets: Vec<i64> = idx
            .iter()
            .enumerate()
            .map(|(j, &i)| pick(i, clean[j].pred, pred[j]))
            .collect();
        let ids: Vec<u64> = idx
            .iter()
            .map(|&i| super::run::eval_id(i, eval_k))
            .collect();
        let new = run.attribute(model, method, &b.x, &targets, &ids)?;
        let s = orig.size();
        let (c, h, w) = (s[1] as usize, s[2] as usize, s[3] as usize);
        let a = super::run::to_vecs(&orig)?;
        let bb = super::run::to_vecs(&new)?;
        let ga = crate::attribution::aggregate(&orig, crate::attribution::Aggregate::SumAbs);
        let gb = crate::attribution::aggregate(&new, crate::attribution::Aggregate::SumAbs);
        for (j, &i) in idx.iter().enumerate() {
            let v = similarities(&a[j], &bb[j], c, h, w, cp);
            out.push((i, [v[0].1, v[1].1, v[2].1]));
            shadow.push(i, &v, None);
            if keep == Keep::None {
                continue;
            }
            let panels = vec![
                run.image_panel(&b.x.get(j as i64), "original")?,
                super::run::map_panel(&ga.get(j as i64), "explanation")?,
                super::run::map_panel(&gb.get(j as i64), label)?,
            ];
            if keep == Keep::Candidates {
                shadow.example(i, panels);
            } else {
                shadow.examples.insert(i, panels);
            }
        }
        (run.progress)(idx.len());
        Ok(())
    })?;
    Ok((out, shadow.examples))
}

/// Computes and caches the clean predictions and maps for every image.
pub fn warm(run: &super::RunCtx, method: &crate::attribution::Method) -> crate::error::Result<()> {
    run.for_batches(|b| run.clean_maps(method, b).map(|_| ()))
}
