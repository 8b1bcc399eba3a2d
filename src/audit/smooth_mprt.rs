//! XA105 smooth-mprt: the model randomisation test on denoised explanations (Hedström et
//! al. 2024, sMPRT).
use super::compare::{self, CompareParams};
use super::randomize;
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA105",
    name: "smooth-mprt",
    title: "Smooth model parameter randomisation test, sMPRT (Hedström et al. 2024)",
    what: "Whether the explanation depends on the model's weights once the method's own noise is averaged out: explanations of the trained and of the fully randomised model are each averaged over noisy copies of the input before they are compared.",
    why: "The original randomisation test compares single explanations, and gradient explanations of deep networks are noisy (shattered gradients): two noisy maps look unrelated even when both reflect the model, and a noisy map of the trained model can look as unrelated to its randomised counterpart as a good method's would. Hedström et al. show that this noise, not the model, often decides MPRT; denoising both sides first removes that confound.",
    how: "Per image, N = `samples` (default 50) inputs x + eps_n, eps_n ~ N(0, sigma^2) per pixel and channel with sigma = `noise` (default 0.1) x (max x - min x) of that image in model space, the last one eps = 0 (as Quantus' SmoothMPRT); the explanation of the trained model's predicted class is averaged over them, once with the trained model and once with every parameter group re-initialised (the same weights as the cascading test's last stage and as the full-only prerequisite; `init` as there). The noise draws are keyed by --seed and the image and shared by both models. The two averaged maps are compared with the randomisation audits' similarities: Spearman with absolute values on PAIR's grayscale map (99th-percentile clip), Spearman on the diverging map, SSIM on the min-max normalised mask. The fully randomised model is the same whatever the layer order, so the paper's bottom-up order matters only for its per-layer curve, which this audit does not draw. 2N explanations per image. The trained weights are restored bit-exactly afterwards. Quantus' SmoothMPRT explains with its own built-in explainer (captum's Gradient) rather than the audited method and returns per-layer scores; its numbers are not comparable.",
    pass: "Default gate: the median Spearman (abs) between the denoised original and the denoised fully randomised explanation is below 0.5 (exact binomial test of the median in the run's error budget; xaudit convention, as for the cascading test; the paper gives no number).",
    references: &[
        "Hedström, Weber, Lapuschkin, Höhne. Sanity Checks Revisited: An Exploration to Repair the Model Parameter Randomisation Test. XAI in Action workshop, NeurIPS 2023; TMLR 2024, arXiv:2401.06465",
        "Adebayo et al. Sanity Checks for Saliency Maps. NeurIPS 2018, arXiv:1810.03292",
        "Quantus SmoothMPRT (Hedström et al. 2023, JMLR)",
    ],
    default_metric: "spearman-abs",
    default_direction: Direction::Lower,
    metrics: compare::METRICS,
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    pub samples: usize,
    /// Noise std as a fraction of each image's value range.
    pub noise: f64,
    pub init: randomize::Init,
    pub percentile: f64,
    pub ssim_data_range: f64,
}

impl Default for Params {
    fn default() -> Self {
        let c = CompareParams::default();
        Params {
            samples: 50,
            noise: 0.1,
            init: randomize::Init::default(),
            percentile: c.percentile,
            ssim_data_range: c.ssim_data_range,
        }
    }
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if !((1..=10_000).contains(&self.samples) && self.noise.is_finite() && self.noise >= 0.0) {
            return Err("samples must be in 1..=10000 and noise >= 0 (paper: 50, 0.1)".into());
        }
        compare::check(self.percentile, self.ssim_data_range)
    }
}

/// The method's explanation of `targets` averaged over `samples` noisy copies of each image
/// of `b` (the last copy noise-free), on the run's model as it currently is.
fn smoothed(
    run: &RunCtx,
    m: &Method,
    b: &crate::data::Batch,
    targets: &[i64],
    p: &Params,
    eval_k: u64,
) -> Result<Vec<Vec<f32>>> {
    let s = b.x.size();
    let numel = (s[1] * s[2] * s[3]) as usize;
    let n = p.samples as i64;
    let mut out = Vec::with_capacity(targets.len());
    for (j, i) in b.indices.clone().enumerate() {
        let x = b.x.get(j as i64);
        let range = (x.max() - x.min()).double_value(&[]);
        let mut z: Vec<f32> = Vec::with_capacity(numel * p.samples);
        for k in 0..p.samples {
            let mut rng = crate::rng::stream(run.seed, DOC.name, i as u64, k as u64);
            if k + 1 == p.samples {
                z.extend(std::iter::repeat_n(0.0f32, numel));
            } else {
                z.extend((0..numel).map(|_| -> f32 { StandardNormal.sample(&mut rng) }));
            }
        }
        let z = Tensor::from_slice(&z)
            .view([n, s[1], s[2], s[3]])
            .to_device(run.device());
        let xs = x.unsqueeze(0) + z * (p.noise * range);
        let ids: Vec<u64> = (0..n as u64)
            .map(|k| super::run::eval_id(i, eval_k * 100_000 + k))
            .collect();
        let t = vec![targets[j]; n as usize];
        let maps = run.attribute(run.model, m, &xs, &t, &ids)?;
        let mean = maps.to_kind(Kind::Float).mean_dim(0, false, Kind::Float);
        out.push(Vec::try_from(
            mean.contiguous().view([-1]).to_device(tch::Device::Cpu),
        )?);
    }
    Ok(out)
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let cp = CompareParams {
        percentile: p.percentile,
        ssim_data_range: p.ssim_data_range,
    };
    // Trained model first: its denoised maps and the explained classes, per image.
    let mut trained: Vec<(usize, i64, Vec<f32>)> = Vec::new();
    let mut shape = [0usize; 3];
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let targets: Vec<i64> = clean.iter().map(|c| c.pred).collect();
        let maps = smoothed(run, m, b, &targets, &p, 0)?;
        let ms = run.clean_maps(m, b)?.size();
        shape = [ms[1] as usize, ms[2] as usize, ms[3] as usize];
        for ((i, t), v) in b.indices.clone().zip(targets).zip(maps) {
            trained.push((i, t, v));
        }
        (run.progress)(b.len());
        Ok(())
    })?;
    let guard = randomize::randomize_all(run.model, p.init, run.seed)?;
    let mut f = Finding::new("");
    let mut row = 0;
    let [c, h, w] = shape;
    let result = run.for_batches(|b| {
        let targets: Vec<i64> = (0..b.len()).map(|j| trained[row + j].1).collect();
        let maps = smoothed(run, m, b, &targets, &p, 1)?;
        for (j, v) in maps.into_iter().enumerate() {
            let (i, _, orig) = &trained[row + j];
            let sims = compare::similarities(orig, &v, c, h, w, &cp);
            f.push(*i, &sims, None);
        }
        row += b.len();
        (run.progress)(b.len());
        Ok(())
    });
    guard.finish()?;
    result?;
    f.summary("samples", p.samples);
    f.summary("noise", p.noise);
    f.summary("weights_restored_bit_exact", true);
    f.summary("model_passes_per_image", 2 * p.samples);
    Ok(vec![f])
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "sanity",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: None,
    shardable: true,
    clips: true,
};
