//! XA405 infidelity: does the map predict how the model's output changes when the input is
//! perturbed (Yeh et al. 2019)?
use super::faithfulness::{scores, CurveScore};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA405",
    name: "infidelity",
    title: "Explanation infidelity against the same map shifted elsewhere (Yeh et al. 2019)",
    what: "Whether the attribution predicts the model's response to perturbations: for random perturbations I of the input, the dot product of I with the attribution should match the change of the explained output, f(x) - f(x - I).",
    why: "Infidelity is the completeness-style faithfulness measure of the paper that also defined max-sensitivity: an explanation can be perfectly stable (sensitivity 0) and say nothing about the model. Pairing robustness audits with infidelity guards against rewarding maps that never move. Comparing with the same map shifted elsewhere removes the dependence on the model's scale and the perturbation's strength.",
    how: "Per image, `samples` (default 1000) perturbations from one of the official code's two distributions. `perturbation = \"noisy-baseline\"` (default, the code's Gaussian): in [0, 1] pixel space the perturbed image is x' = clip(-sigma z, 0, 1) with z standard normal per pixel and channel and sigma = `noise` (default 0.2), i.e. I = x - x' (the code draws I = clip(x + sigma z, x - 1, x)). `perturbation = \"square\"` (the code's Square): a square of side 1..`square-max` (default 10 px at 28 px, scaled) set to black, drawn uniformly over every (side, position) the code enumerates, so I = x - black inside the square and 0 elsewhere (the code's attribution x input over the square). I is taken in model space. The explained output f is the logit of the predicted class (`score = \"probability\"` for the softmax; the official code uses the model's output, logits). s = sum over pixels and channels of I times the method's raw attribution (a one-channel map is broadcast over the input's channels, a feature-grid map upsampled). As in the official code, the attribution is first optimally scaled, beta = mean(delta f * s) / mean(s^2) (`scaled = false`: beta = 1, the paper's definition), and infidelity = mean((delta f - beta s)^2). normalised = infidelity / mean(delta f^2), the share of the output change the map leaves unexplained (in [0, 1] when scaled). The same is computed with the attribution cyclically shifted by a seeded offset (normalised-shifted); gain = normalised-shifted - normalised. Draws are seeded by --seed and the image and shared by both maps. samples forward passes per image, batched. Quantus 0.6.0's Infidelity differs: 4x4 blocks removed cumulatively in row order to a 'black' baseline (each image's minimum), 10 repeats (identical with that baseline), no optimal scaling: its numbers are not comparable.",
    pass: "Default gate: the median gain is above 0, i.e. the map explains more of the output's response than the same map shifted elsewhere (exact binomial test of the median in the run's error budget; xaudit convention).",
    references: &[
        "Yeh, Hsieh, Suggala, Inouye, Ravikumar. On the (In)fidelity and Sensitivity of Explanations. NeurIPS 2019, arXiv:1901.09392",
        "Official code: github.com/chihkuanyeh/saliency_evaluation (infid_sen_utils.py, get_exp_infid)",
    ],
    default_metric: "gain",
    default_direction: Direction::Higher,
    metrics: &["gain", "infidelity", "normalised", "normalised-shifted"],
};

/// Yeh et al.'s two perturbation distributions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Perturbation {
    /// x' = clip(-noise z, 0, 1) in pixel space (the code's "Gaussian").
    NoisyBaseline,
    /// A square of the image set to black (the code's "Square"), uniform over all squares
    /// of side 1..=square-max.
    Square,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    pub perturbation: Perturbation,
    /// Largest square side in pixels (absent: 10 at 28 pixels as the code, scaled by
    /// min(H, W)/28).
    pub square_max: Option<usize>,
    pub samples: usize,
    /// sigma of the noisy baseline, in [0, 1] pixel units.
    pub noise: f64,
    /// Optimal scaling of the attribution (the official code) or none (the paper).
    pub scaled: bool,
    pub score: CurveScore,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            perturbation: Perturbation::NoisyBaseline,
            square_max: None,
            samples: 1000,
            noise: 0.2,
            scaled: true,
            score: CurveScore::Logit,
        }
    }
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if !(2..=100_000).contains(&self.samples) || !super::positive(self.noise) {
            return Err("samples must be in 2..=100000 and noise > 0 (official code: 0.2)".into());
        }
        if self.square_max == Some(0) {
            return Err("square-max must be >= 1 pixel (official code: 10 at 28 pixels)".into());
        }
        Ok(())
    }
}

/// (infidelity, normalised) of output changes `df` against dot products `s`.
pub fn infidelity(df: &[f64], s: &[f64], scaled: bool) -> (f64, f64) {
    let n = df.len() as f64;
    let beta = if scaled {
        let den: f64 = s.iter().map(|v| v * v).sum::<f64>();
        if den > 0.0 {
            df.iter().zip(s).map(|(a, b)| a * b).sum::<f64>() / den
        } else {
            0.0
        }
    } else {
        1.0
    };
    let infid = df
        .iter()
        .zip(s)
        .map(|(a, b)| (a - beta * b).powi(2))
        .sum::<f64>()
        / n;
    let energy = df.iter().map(|a| a * a).sum::<f64>() / n;
    (infid, infid / energy.max(f64::MIN_POSITIVE))
}

/// A 1/0 mask `[h*w]` of sample `q`'s square: uniform over every (side, position) with side
/// in 1..=max, as the official code enumerates them all.
fn square(seed: u64, image: usize, q: usize, h: i64, w: i64, max: usize) -> Vec<f32> {
    use rand::Rng;
    let (h, w) = (h as usize, w as usize);
    let counts: Vec<usize> = (1..=max).map(|r| (h - r + 1) * (w - r + 1)).collect();
    let mut rng = crate::rng::stream(seed, "infidelity square", image as u64, q as u64);
    let mut u = rng.random_range(0..counts.iter().sum::<usize>());
    let mut side = 1;
    for (k, n) in counts.iter().enumerate() {
        if u < *n {
            side = k + 1;
            break;
        }
        u -= n;
    }
    let (y0, x0) = (u / (w - side + 1), u % (w - side + 1));
    let mut m = vec![0.0f32; h * w];
    for y in y0..y0 + side {
        m[y * w + x0..y * w + x0 + side].fill(1.0);
    }
    m
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let mut f = Finding::new("");
    let dev = run.device();
    let (mean, std) = (run.pre.mean(), run.pre.std());
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let s = b.x.size();
        let (c, h, w) = (s[1], s[2], s[3]);
        let mut phi = run.clean_maps(m, b)?.to_kind(Kind::Float);
        if phi.size()[2..] != s[2..] {
            phi = phi.upsample_bilinear2d([h, w], false, None, None);
        }
        let phi = phi.expand([s[0], c, h, w], false);
        let idx: Vec<usize> = b.indices.clone().collect();
        let shifted = {
            let flat = phi.reshape([s[0] * c, h, w]);
            let per: Vec<usize> = idx
                .iter()
                .flat_map(|&i| std::iter::repeat_n(i, c as usize))
                .collect();
            super::faithfulness::shifted(&flat, run.seed, DOC.name, &per).view([s[0], c, h, w])
        };
        let side_max = p
            .square_max
            .unwrap_or(((10.0 * h.min(w) as f64 / 28.0).round() as usize).max(1))
            .min(h.min(w) as usize);
        let m_t = Tensor::from_slice(&mean).view([1, -1, 1, 1]).to_device(dev);
        let s_t = Tensor::from_slice(&std).view([1, -1, 1, 1]).to_device(dev);
        for (j, &i) in idx.iter().enumerate() {
            let x = b.x.narrow(0, j as i64, 1);
            let target = Tensor::from_slice(&[clean[j].pred]).to_device(dev);
            let f0 = scores(run, &x, &target, p.score)?[0];
            let (mut df, mut s_map, mut s_shift) = (Vec::new(), Vec::new(), Vec::new());
            crate::attribution::for_chunks(p.samples, run.pass_size(), |r| {
                let k = r.len() as i64;
                let noisy = p.perturbation == Perturbation::NoisyBaseline;
                let z: Vec<f32> = r
                    .clone()
                    .filter(|_| noisy)
                    .flat_map(|q| {
                        let mut rng = crate::rng::stream(run.seed, DOC.name, i as u64, q as u64);
                        (0..c * h * w)
                            .map(|_| StandardNormal.sample(&mut rng))
                            .collect::<Vec<f32>>()
                    })
                    .collect();
                let xp = match p.perturbation {
                    Perturbation::NoisyBaseline => {
                        let z = Tensor::from_slice(&z).view([k, c, h, w]).to_device(dev);
                        ((z * -p.noise).clamp(0.0, 1.0) - &m_t) / &s_t
                    }
                    Perturbation::Square => {
                        let masks: Vec<f32> = r
                            .clone()
                            .flat_map(|q| square(run.seed, i, q, h, w, side_max))
                            .collect();
                        let inside = Tensor::from_slice(&masks)
                            .view([k, 1, h, w])
                            .to_device(dev)
                            .gt(0.5);
                        let black = (-&m_t / &s_t).expand([k, c, h, w], false);
                        x.expand([k, c, h, w], false)
                            .where_self(&inside.logical_not(), &black)
                    }
                };
                let pert = &x - &xp;
                let fp = scores(run, &xp, &target.expand([k], false), p.score)?;
                df.extend(fp.iter().map(|v| f0 - v));
                let dot = |a: &Tensor| -> Result<Vec<f64>> {
                    let v =
                        (&pert * a).sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Double);
                    Ok(Vec::try_from(v.to_device(tch::Device::Cpu))?)
                };
                s_map.extend(dot(&phi.narrow(0, j as i64, 1))?);
                s_shift.extend(dot(&shifted.narrow(0, j as i64, 1))?);
                Ok(())
            })?;
            let (infid, norm) = infidelity(&df, &s_map, p.scaled);
            let (_, norm_shift) = infidelity(&df, &s_shift, p.scaled);
            f.push(
                i,
                &[
                    ("gain", norm_shift - norm),
                    ("infidelity", infid),
                    ("normalised", norm),
                    ("normalised-shifted", norm_shift),
                ],
                None,
            );
        }
        (run.progress)(b.len());
        Ok(())
    })?;
    f.summary("model_passes_per_image", p.samples + 1);
    Ok(vec![f])
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "faithfulness",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: None,
    shardable: true,
    clips: true,
};

#[cfg(test)]
mod tests {
    #[test]
    fn a_proportional_map_has_zero_scaled_infidelity() {
        let df = [1.0, -2.0, 0.5];
        let s = [2.0, -4.0, 1.0];
        let (i, n) = super::infidelity(&df, &s, true);
        assert!(i.abs() < 1e-12 && n.abs() < 1e-12);
        let (i, _) = super::infidelity(&df, &s, false);
        assert!((i - (1.0 + 4.0 + 0.25) / 3.0).abs() < 1e-12);
    }
}
