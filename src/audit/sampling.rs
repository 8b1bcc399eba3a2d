//! Monte-Carlo neighbourhood sampling shared by `sensitivity-max` and `local-lipschitz`:
//! N perturbed copies per image, explained in device batches for the clean predicted class,
//! samples whose prediction changes excluded and counted.
use super::run::{eval_id, to_vecs, vec_panel, RunCtx};
use super::Finding;
use crate::attribution::Method;
use crate::error::Result;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use tch::{Kind, Tensor};

/// How perturbations are drawn (model space after conversion from pixel units).
#[derive(Debug, Clone, Copy)]
pub enum Noise {
    /// δ ~ U[-r, r] per element (Yeh et al.'s L∞ ball).
    UniformLinf { pixels: f64 },
    /// δ ~ N(0, σ²) per element (Quantus LocalLipschitzEstimate).
    Gaussian { pixels: f64 },
}

/// Per kept sample: ||Φ(x) - Φ(x')||_2, ||Φ(x)||_2, ||x - x'||_2 (model space).
pub struct SampleNorms {
    pub diff: f64,
    pub base: f64,
    pub input: f64,
}

/// Records per image the maximum of `score` over the kept samples (and pictures of the
/// maximising sample), or excludes the image when every sample changed the prediction.
/// How many neighbours are drawn per image, and how.
pub struct Draws {
    pub n: usize,
    /// Clamp x' to the valid pixel range.
    pub clip: bool,
    pub noise: Noise,
    /// Images where fewer than this share of the samples kept the label are excluded: a
    /// maximum over a few surviving samples is biased low.
    pub min_kept_fraction: f64,
}

pub fn run(
    run: &RunCtx,
    method: &Method,
    draws: Draws,
    purpose: &str,
    metric: &str,
    score: impl Fn(&SampleNorms) -> f64,
) -> Result<Finding> {
    let Draws {
        n,
        clip,
        noise,
        min_kept_fraction,
    } = draws;
    let mut f = Finding::new("");
    let mut floor: Vec<(usize, f64)> = Vec::new();
    // Per image: (samples drawn, samples that changed the prediction).
    let mut drawn: std::collections::BTreeMap<usize, (f64, f64)> = Default::default();
    let (lo, hi) = run.valid_range();
    let scale = run.pixel_scale(match noise {
        Noise::UniformLinf { pixels } | Noise::Gaussian { pixels } => pixels,
    });
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let raw0 = run.clean_maps(method, b)?.to_kind(Kind::Float);
        let base_norm: Vec<f64> = Vec::try_from(
            raw0.flatten(1, -1)
                .norm_scalaropt_dim(2, [1i64].as_slice(), false)
                .to_kind(Kind::Double)
                .to_device(tch::Device::Cpu),
        )?;
        if let Some(alt) = run.noise_maps(method, b)? {
            let d: Vec<f64> = Vec::try_from(
                (&alt.to_kind(Kind::Float) - &raw0)
                    .flatten(1, -1)
                    .norm_scalaropt_dim(2, [1i64].as_slice(), false)
                    .to_kind(Kind::Double)
                    .to_device(tch::Device::Cpu),
            )?;
            floor.extend(
                d.iter()
                    .zip(&base_norm)
                    .zip(b.indices.clone())
                    .map(|((d, n), i)| (i, d / n.max(1e-12))),
            );
        }
        let shape = b.x.size();
        let numel: usize = shape[1..].iter().product::<i64>() as usize;
        let idx: Vec<usize> = b.indices.clone().collect();
        // Per image: kept samples, best score, its perturbed input and map (on the device).
        let mut kept = vec![0usize; idx.len()];
        let mut best: Vec<Option<(f64, Tensor, Tensor)>> = (0..idx.len()).map(|_| None).collect();
        // Flat list of (image, sample) jobs, evaluated in chunks of internal_batch inputs.
        let jobs: Vec<(usize, usize)> = (0..idx.len())
            .flat_map(|j| (0..n).map(move |s| (j, s)))
            .collect();
        crate::attribution::for_chunks(jobs.len(), run.pass_size(), |r| {
            let chunk = &jobs[r];
            let mut v = Vec::with_capacity(chunk.len() * numel);
            for &(j, s) in chunk {
                let mut rng = crate::rng::stream(run.seed, purpose, idx[j] as u64, s as u64);
                match noise {
                    Noise::UniformLinf { .. } => {
                        v.extend((0..numel).map(|_| rng.random_range(-1.0f32..=1.0)))
                    }
                    Noise::Gaussian { .. } => v.extend((0..numel).map(|_| {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        z
                    })),
                }
            }
            let mut sh = shape.clone();
            sh[0] = chunk.len() as i64;
            let delta = Tensor::from_slice(&v)
                .view(sh.as_slice())
                .to_device(run.device())
                * &scale;
            let owners: Vec<i64> = chunk.iter().map(|&(j, _)| j as i64).collect();
            let sel = Tensor::from_slice(&owners).to_device(run.device());
            let x0 = b.x.index_select(0, &sel);
            let xp = if clip {
                (&x0 + delta).maximum(&lo).minimum(&hi)
            } else {
                &x0 + delta
            };
            let targets: Vec<i64> = chunk.iter().map(|&(j, _)| clean[j].pred).collect();
            let ids: Vec<u64> = chunk
                .iter()
                .map(|&(j, s)| eval_id(idx[j], 1 + s as u64))
                .collect();
            let (maps, pred, _) = run.attribute_predict(run.model, method, &xp, &targets, &ids)?;
            // Distances on the device; only two scalars per sample come back.
            let l2 = |t: Tensor| -> Result<Vec<f64>> {
                Ok(Vec::try_from(
                    t.flatten(1, -1)
                        .norm_scalaropt_dim(2, [1i64].as_slice(), false)
                        .to_kind(Kind::Double)
                        .to_device(tch::Device::Cpu),
                )?)
            };
            let diff = l2(&maps - raw0.index_select(0, &sel))?;
            let dx = l2(&xp - &x0)?;
            for (c, &(j, _)) in chunk.iter().enumerate() {
                let d = drawn.entry(idx[j]).or_default();
                d.0 += 1.0;
                if pred[c] != clean[j].pred {
                    d.1 += 1.0;
                    continue;
                }
                let s = SampleNorms {
                    diff: diff[c],
                    base: base_norm[j],
                    input: dx[c],
                };
                kept[j] += 1;
                let v = score(&s);
                if best[j].as_ref().is_none_or(|b| v > b.0) {
                    best[j] = Some((v, xp.get(c as i64).copy(), maps.get(c as i64).copy()));
                }
            }
            Ok(())
        })?;
        let base = to_vecs(&raw0)?;
        let (c, h, w) = (shape[1] as usize, shape[2] as usize, shape[3] as usize);
        // Pictures show Σ_c |a_c| of the raw attributions compared here.
        let collapse = |v: &[f32]| -> Vec<f32> {
            let cc = c.min(v.len() / (h * w).max(1));
            (0..h * w)
                .map(|p| (0..cc).map(|k| v[k * h * w + p].abs()).sum())
                .collect()
        };
        for (j, b0) in best.into_iter().enumerate() {
            let need = (min_kept_fraction * n as f64).ceil() as usize;
            match b0 {
                None => f.push(
                    idx[j],
                    &[],
                    Some("every sample changed the prediction".into()),
                ),
                Some(_) if kept[j] < need => {
                    f.keep(FEW, idx[j], &[1.0]);
                    f.push(
                        idx[j],
                        &[],
                        Some(format!(
                            "fewer than {need} of {n} samples kept the prediction (a maximum over few samples is biased low)"
                        )),
                    );
                }
                Some((v, xp, mp)) => {
                    let mp: Vec<f32> =
                        Vec::try_from(mp.flatten(0, -1).to_device(tch::Device::Cpu))?;
                    f.push(
                        idx[j],
                        &[(metric, v), ("kept-samples", kept[j] as f64)],
                        None,
                    );
                    f.example(
                        idx[j],
                        vec![
                            run.image_panel(&b.x.get(j as i64), "original")?,
                            vec_panel(&collapse(&base[j]), h, w, "explanation")?,
                            run.image_panel(&xp, "worst perturbed image")?,
                            vec_panel(&collapse(&mp), h, w, "its explanation")?,
                        ],
                    );
                }
            }
        }
        (run.progress)(idx.len());
        Ok(())
    })?;
    let pixels = match noise {
        Noise::UniformLinf { pixels } | Noise::Gaussian { pixels } => pixels,
    };
    f.summary(
        "scale_model_space_per_channel",
        run.pre
            .std()
            .iter()
            .map(|s| pixels / (255.0 * *s as f64))
            .collect::<Vec<_>>(),
    );
    f.summary("samples_per_image", n);
    f.summary("min_kept_fraction", min_kept_fraction);
    for (i, (d, c)) in drawn {
        f.keep(DRAWN, i, &[d, c]);
    }
    super::run::keep_noise_floors(&mut f, "relative-l2", &floor);
    Ok(f)
}

const DRAWN: &str = "samples-drawn-and-changed";
const FEW: &str = "few-kept-samples";

/// Samples drawn and how many changed the prediction, over every image.
pub fn finish(f: &mut Finding) {
    let (total, changed) = f.kept.get(DRAWN).map_or((0.0, 0.0), |m| {
        m.values().fold((0.0, 0.0), |(t, c), v| {
            (
                t + v.first().copied().flatten().unwrap_or(0.0),
                c + v.get(1).copied().flatten().unwrap_or(0.0),
            )
        })
    });
    f.summary("samples_total", total as u64);
    f.summary("samples_prediction_changed", changed as u64);
    f.summary(
        "fraction_prediction_changed",
        if total > 0.0 {
            changed / total
        } else {
            f64::NAN
        },
    );
    f.summary("images_excluded_few_kept_samples", f.kept_count(FEW));
}
