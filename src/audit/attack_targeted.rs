//! XA006 attack-targeted: Dombrowski et al.'s targeted manipulation of the explanation.
use super::attack::{
    block_directions, linf_pixels, project, random_signs, resolve_estimator, sum_to_hw, Estimator,
    Used, ATTACKED, LABEL_CHANGED, PAIRS,
};
use super::run::{eval_id, to_vecs, vec_panel, RunCtx};
use super::{AuditDoc, AuditEntry, Direction, Finding};
use crate::attribution::{aggregate, Aggregate, Method};
use crate::error::{Error, Result};
use crate::similarity;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA006",
    name: "attack-targeted",
    title: "Targeted explanation manipulation (Dombrowski et al.)",
    what: "Whether an imperceptible, label-preserving change to the image can make its explanation look like an arbitrary chosen map (by default the explanation of another image of a different class), while the model's output stays nearly the same.",
    why: "If an explanation can be steered to any target while the prediction does not move, then what it shows is not what the model uses: a manipulated input could carry a reassuring explanation, and an honest one could be made to look alarming. Dombrowski et al. showed this for gradient, gradient x input, IG and LRP on ImageNet models, and traced it to the curvature of the network.",
    how: "Loss of the paper and its official code (pankessel/adv_explanation_ref): MSE between the explanation h(x') and the target h_t, plus output_weight times the MSE between the softmax outputs at x' and x; h = sum over channels of |a|, normalised to sum 1 (compared as h * HW so the weight does not depend on the resolution; the default output weight, 2.5e4, is the paper's ratio of its prefactors 1e6 / 1e11 at 224 x 224). Minimised with Adam (step lr in 0-255 pixel units) for `iterations` steps; unlike the paper, every iterate is projected onto an L-infinity ball of `epsilon` pixel units around x and the valid pixel range, and only iterates with the clean predicted class count. The explanation term's gradient is exact (double backpropagation) when the model is twice differentiable, taken through a smooth surrogate when one is given, else estimated by antithetic finite differences along random sign patterns, alternately on 8 x 8 blocks and at full resolution (as the Ghorbani attacks; `estimator`, `zo-grid`); the output term's gradient is always exact. Target: target = \"other-image\" takes the clean explanation of another image of a different predicted class (chosen per image, seeded); target = \"pattern\" a Gaussian blob in the upper-left quadrant. Recorded per image (best label-preserving iterate, the one closest to the target): Pearson correlation with the target before and after and its gain (gated), SSIM and MSE to the target before and after, the largest change of any output probability, and the realised L-infinity size. When a surrogate is given, the same gain measured on the surrogate's (beta-smoothed) explanation is reported: Dombrowski et al.'s beta-smoothing defence. The same images are also steered by random-sign steps of size lr in the same passes (`baseline`); the attack must beat them on significantly more images than it loses (paired one-sided sign test at the run's alpha), or a PASS becomes INCONCLUSIVE: an attack that steers no better than noise shows nothing. Images misclassified before the attack are skipped; an image whose every iterate changed the label is excluded and counted.",
    pass: "Default gate: the median gain in Pearson correlation with the target is below 0.3 (exact binomial test of the median in the run's error budget; 0.3, a moderate rise in correlation, is xaudit's convention, not a paper value: `xaudit calibrate` places it between an accepted model and the model-blind controls). A PASS means the attack failed within the budget; how much that shows depends on the estimator the report names: exact is the paper's attack, surrogate an attack found on a smooth copy and replayed on the model, zeroth-order a sampled search (the weakest; give a surrogate for ReLU models).",
    references: &[
        "Dombrowski, Alber, Anders, Ackermann, Müller, Kessel. Explanations can be manipulated and geometry is to blame. NeurIPS 2019, arXiv:1906.07983",
        "Official code: github.com/pankessel/adv_explanation_ref (src/run_attack.py)",
        "Kingma, Ba. Adam: A Method for Stochastic Optimization. ICLR 2015",
    ],
    default_metric: "pcc-gain",
    default_direction: Direction::Lower,
    metrics: &[
        "pcc-gain",
        "pcc-after",
        "pcc-before",
        "ssim-after",
        "ssim-before",
        "mse-after",
        "mse-before",
        "output-change",
        "linf-pixels",
    ],
};

/// Where the target map comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The clean explanation of another image of a different predicted class.
    #[default]
    OtherImage,
    /// A Gaussian blob centred in the upper-left quadrant.
    Pattern,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// L∞ radius in 0-255 pixel units.
    #[serde(default = "super::attack::d_eps")]
    pub epsilon: f64,
    /// Adam steps (the official code runs 1500 at a smaller step and no L∞ ball).
    #[serde(default = "super::attack::d_iters")]
    pub iterations: usize,
    /// Adam step in 0-255 pixel units.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Weight of the output-preservation term relative to the explanation term.
    #[serde(default = "d_wout")]
    pub output_weight: f64,
    /// other-image or pattern.
    #[serde(default)]
    pub target: Target,
    /// auto, exact, surrogate or zeroth-order (as the Ghorbani attacks).
    #[serde(default)]
    pub estimator: Estimator,
    /// Zeroth-order: antithetic direction pairs per step.
    #[serde(default = "super::attack::d_q")]
    pub zo_directions: usize,
    /// Zeroth-order: probe radius in 0-255 pixel units.
    #[serde(default = "super::attack::d_c")]
    pub zo_radius: f64,
    /// Zeroth-order: random blocks per image side (0: auto, as the Ghorbani attacks).
    #[serde(default)]
    pub zo_grid: usize,
    /// Skip images whose clean prediction disagrees with their label.
    #[serde(default = "super::attack::d_true")]
    pub skip_misclassified: bool,
    /// Also steer with random-sign steps of size `lr` and require the attack to be
    /// significantly stronger (as the Ghorbani attacks do).
    #[serde(default = "super::attack::d_true")]
    pub baseline: bool,
}

fn d_lr() -> f64 {
    super::attack::d_step()
}
fn d_wout() -> f64 {
    2.5e4
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if !(self.epsilon > 0.0 && self.epsilon <= 255.0) {
            return Err("epsilon must be in (0, 255] pixel units".into());
        }
        if self.iterations == 0 || !super::positive(self.lr) {
            return Err("iterations must be >= 1 and lr > 0 pixel units".into());
        }
        if !(self.output_weight.is_finite() && self.output_weight >= 0.0) {
            return Err("output-weight must be >= 0".into());
        }
        if self.zo_directions == 0 || !super::positive(self.zo_radius) {
            return Err("zo-directions must be >= 1 and zo-radius > 0".into());
        }
        Ok(())
    }
}

/// h * HW: |a| summed over channels, normalised to mean 1 (`[B, HW]`), differentiable.
fn normalised(raw: &Tensor) -> Tensor {
    let m = aggregate(raw, Aggregate::SumAbs).flatten(1, -1);
    let n = m.size()[1] as f64;
    let total = m.sum_dim_intlist(1, true, Kind::Float);
    let safe = total.where_self(&total.gt(0.0), &total.ones_like());
    m * n / safe
}

/// Per image MSE between `h` `[B, HW]` and the targets.
fn expl_loss(h: &Tensor, targets: &Tensor) -> Tensor {
    (h - targets)
        .square()
        .mean_dim([1i64].as_slice(), false, Kind::Float)
}

/// d (Σ_images MSE(h(a), target)) / d a for raw maps `a`.
fn loss_grad(raw: &Tensor, targets: &Tensor) -> Result<Tensor> {
    tch::with_grad(|| -> Result<Tensor> {
        let leaf = raw.detach().to_kind(Kind::Float).set_requires_grad(true);
        let l = expl_loss(&normalised(&leaf), targets).sum(Kind::Float);
        let mut g = Tensor::f_run_backward(&[&l], &[&leaf], false, false)?;
        g.pop().filter(Tensor::defined).ok_or_else(|| {
            Error::method(
                "attack-targeted",
                "no gradient of the loss with respect to the map",
                "report this as a bug",
            )
        })
    })
}

/// d (w · Σ_images MSE(softmax f(x), p0)) / dx: the output-preservation term (first order).
fn output_grad(
    model: &crate::model::Model,
    x: &Tensor,
    p0: &Tensor,
    weight: f64,
) -> Result<Tensor> {
    tch::with_grad(|| -> Result<Tensor> {
        let leaf = x.detach().set_requires_grad(true);
        let p = model.forward_grad(&leaf)?.softmax(-1, Kind::Float);
        let l = (p - p0)
            .square()
            .mean_dim([1i64].as_slice(), false, Kind::Float)
            .sum(Kind::Float)
            * weight;
        let mut g = Tensor::f_run_backward(&[&l], &[&leaf], false, false)?;
        g.pop().filter(Tensor::defined).ok_or_else(|| {
            Error::model(
                &model.path,
                "no gradient of the output with respect to the input",
                "make forward differentiable in its input",
            )
        })
    })
}

/// A Gaussian blob at (h/4, w/4), sigma = min(h, w)/8, as h * HW.
fn pattern(h: usize, w: usize) -> Vec<f32> {
    let (cy, cx, s) = (
        h as f64 / 4.0,
        w as f64 / 4.0,
        (h.min(w) as f64 / 8.0).max(1.0),
    );
    let v: Vec<f64> = (0..h * w)
        .map(|p| {
            let (y, x) = ((p / w) as f64, (p % w) as f64);
            (-((y - cy).powi(2) + (x - cx).powi(2)) / (2.0 * s * s)).exp()
        })
        .collect();
    let total: f64 = v.iter().sum();
    v.iter()
        .map(|x| (x * (h * w) as f64 / total) as f32)
        .collect()
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let mut f = Finding::new("");
    let model = run.model;
    let std: Vec<f64> = run.pre.std().iter().map(|s| *s as f64).collect();
    let eps = run.pixel_scale(p.epsilon);
    let lr = run.pixel_scale(p.lr);
    let c_probe = run.pixel_scale(p.zo_radius);
    let (lo, hi) = run.valid_range();
    // Every image's clean prediction and map first: targets may come from anywhere.
    // In a shard too: the targets come from the whole data set.
    run.for_all_batches(|b| run.clean_maps(m, b).map(|_| ()))?;
    let all: Vec<usize> = (0..run.data.len()).collect();
    let preds: Vec<i64> = run
        .cached_clean(&all)
        .map(|c| c.iter().map(|c| c.pred).collect())
        .unwrap_or_default();
    // The estimator is resolved on the data set's first images, in every shard.
    let used = {
        let b = run.first_images(2)?;
        let targets: Vec<i64> = run.clean(&b)?.iter().map(|c| c.pred).collect();
        let idx: Vec<usize> = b.indices.clone().collect();
        (!idx.is_empty())
            .then(|| resolve_estimator(run, m, p.estimator, &b.x, &targets, &idx))
            .transpose()?
    };
    let passes0 = run.passes();
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let targets: Vec<i64> = clean.iter().map(|c| c.pred).collect();
        let idx: Vec<usize> = b.indices.clone().collect();
        let (h, w) = (b.x.size()[2] as usize, b.x.size()[3] as usize);
        let est = used.as_ref().map(|u| u.0).unwrap_or(Used::ZerothOrder);
        // Target maps (h * HW) per image; None when no image of another class exists.
        let mut tmaps: Vec<Option<Vec<f32>>> = Vec::with_capacity(idx.len());
        for (j, &i) in idx.iter().enumerate() {
            tmaps.push(match p.target {
                Target::Pattern => Some(pattern(h, w)),
                Target::OtherImage => {
                    let n = preds.len();
                    let start = crate::rng::stream(run.seed, DOC.name, i as u64, 0)
                        .random_range(0..n.max(1));
                    let other = (0..n)
                        .map(|k| (start + k) % n)
                        .find(|&k| k != i && preds[k] != targets[j]);
                    match other {
                        Some(k) => {
                            let raw = run.stored_clean_maps(m, &[k])?.ok_or_else(|| {
                                Error::method(
                                    DOC.name,
                                    "a target map was not cached",
                                    "report this as a bug",
                                )
                            })?;
                            Some(Vec::try_from(
                                normalised(&raw).view([-1]).to_device(tch::Device::Cpu),
                            )?)
                        }
                        None => None,
                    }
                }
            });
        }
        let bsz = idx.len();
        let tflat: Vec<f32> = tmaps
            .iter()
            .flat_map(|t| t.clone().unwrap_or_else(|| vec![1.0; h * w]))
            .collect();
        let tmap = Tensor::from_slice(&tflat)
            .view([bsz as i64, (h * w) as i64])
            .to_device(run.device());
        let raw0 = run.clean_maps(m, b)?;
        let h0 = normalised(&raw0);
        let p0 = model.logits(&b.x)?.softmax(-1, Kind::Float);
        let vec_of = |t: &Tensor| -> Result<Vec<Vec<f32>>> { to_vecs(t) };
        let before: Vec<f64> = vec_of(&h0)?
            .iter()
            .zip(&tmaps)
            .map(|(a, t)| t.as_ref().map_or(f64::NAN, |t| similarity::pearson(a, t)))
            .collect();
        // Best label-preserving iterate per image: (pcc, x', map).
        let mut best: Vec<Option<(f64, Tensor, Vec<f32>)>> = (0..bsz).map(|_| None).collect();
        let mut best_base: Vec<Option<f64>> = vec![None; bsz];
        let chains = 1 + usize::from(p.baseline);
        let mut x = b.x.shallow_clone();
        let mut xr = b.x.shallow_clone();
        let (mut m1, mut m2) = (x.zeros_like(), x.zeros_like());
        let q = if est == Used::ZerothOrder {
            p.zo_directions
        } else {
            0
        };
        let grid = p.zo_grid;
        let shape = b.x.size();
        let tt = Tensor::from_slice(&targets).to_device(run.device());
        for step in 0..=p.iterations {
            let ids: Vec<u64> = idx
                .iter()
                .map(|&i| eval_id(i, 1 + (step as u64) * (1 + 2 * q as u64)))
                .collect();
            let probing = step < p.iterations && q > 0;
            let dirs = if probing {
                block_directions(run, DOC.name, &idx, step, q, &shape, grid)
            } else {
                Vec::new()
            };
            let mut inputs = vec![x.shallow_clone()];
            let mut all_ids = ids.clone();
            let mut tgt = targets.clone();
            if p.baseline {
                // The random-sign chain rides in the same pass, keyed apart from the attack.
                inputs.push(xr.shallow_clone());
                all_ids.extend(idx.iter().map(|&i| eval_id(i, (1 << 40) + step as u64)));
                tgt.extend(&targets);
            }
            for (j, u) in dirs.iter().enumerate() {
                let du = u * &c_probe;
                inputs.push(&x + &du);
                inputs.push(&x - &du);
                for s in 0..2u64 {
                    all_ids.extend(idx.iter().map(|&i| {
                        eval_id(
                            i,
                            1 + (step as u64) * (1 + 2 * q as u64) + 1 + 2 * j as u64 + s,
                        )
                    }));
                    tgt.extend(&targets);
                }
            }
            let (raw, pred, _) = run.attribute_predict_first(
                model,
                m,
                &Tensor::cat(&inputs, 0),
                &tgt,
                &all_ids,
                chains * bsz,
            )?;
            let hall = normalised(&raw);
            if step >= 1 {
                let hx = vec_of(&hall.narrow(0, 0, (chains * bsz) as i64))?;
                for j in 0..bsz {
                    let Some(t) = &tmaps[j] else { continue };
                    if pred[j] == targets[j] {
                        let pcc = similarity::pearson(&hx[j], t);
                        if best[j].as_ref().is_none_or(|b| pcc > b.0) {
                            best[j] = Some((pcc, x.get(j as i64).copy(), hx[j].clone()));
                        }
                    }
                    if p.baseline && pred[bsz + j] == targets[j] {
                        let pcc = similarity::pearson(&hx[bsz + j], t);
                        if best_base[j].is_none_or(|b| pcc > b) {
                            best_base[j] = Some(pcc);
                        }
                    }
                }
            }
            if step == p.iterations {
                break;
            }
            // Gradient of the loss at x: explanation term by the estimator, output term exact.
            let g_expl = match est {
                Used::ZerothOrder => {
                    let rows = (chains * bsz) as i64;
                    let probes = hall.narrow(0, rows, hall.size()[0] - rows);
                    let l = Vec::<f32>::try_from(
                        expl_loss(&probes, &tmap.repeat([2 * q as i64, 1]))
                            .to_device(tch::Device::Cpu),
                    )?;
                    let mut g = x.zeros_like();
                    for (j, u) in dirs.iter().enumerate() {
                        let coef: Vec<f32> = (0..bsz)
                            .map(|i| {
                                (l[bsz * (2 * j) + i] - l[bsz * (2 * j + 1) + i])
                                    / (2.0 * p.zo_radius as f32 * q as f32)
                            })
                            .collect();
                        let coef = Tensor::from_slice(&coef)
                            .view([-1, 1, 1, 1])
                            .to_device(run.device());
                        g += u * coef;
                    }
                    g
                }
                Used::Exact | Used::Surrogate | Used::RandomSign => {
                    let via = if est == Used::Surrogate {
                        run.surrogate.unwrap_or(model)
                    } else {
                        model
                    };
                    let raw_x = if est == Used::Surrogate {
                        run.attribute(via, m, &x, &targets, &ids)?
                    } else {
                        raw.narrow(0, 0, bsz as i64)
                    };
                    let u = loss_grad(&raw_x, &tmap)?;
                    m.explanation_vjp(&run.ctx(via, m), &x, &tt, &ids, &u)?
                        .unwrap_or_else(|| x.zeros_like())
                }
            };
            let g = g_expl + output_grad(model, &x, &p0, p.output_weight)?;
            // Adam (descent), then back into the budget and the valid range.
            let k = (step + 1) as i32;
            m1 = &m1 * 0.9 + &g * 0.1;
            m2 = &m2 * 0.999 + g.square() * 0.001;
            let mhat = &m1 / (1.0 - 0.9f64.powi(k));
            let vhat = &m2 / (1.0 - 0.999f64.powi(k));
            let stepv = mhat / (vhat.sqrt() + 1e-12) * &lr;
            x = project(&b.x, &(&x - stepv), &eps, &lo, &hi);
            if p.baseline {
                let dr = random_signs(run, &idx, step, &shape);
                xr = project(&b.x, &(&xr + dr * &lr), &eps, &lo, &hi);
            }
        }
        let linf_all = {
            let xs: Vec<Tensor> = (0..bsz)
                .map(|j| {
                    best[j]
                        .as_ref()
                        .map_or_else(|| b.x.get(j as i64), |b| b.1.shallow_clone())
                })
                .collect();
            let xb = Tensor::stack(&xs, 0);
            let pb = model.logits(&xb)?.softmax(-1, Kind::Float);
            let change: Vec<f64> = Vec::try_from(
                (&pb - &p0)
                    .abs()
                    .amax([1i64].as_slice(), false)
                    .to_kind(Kind::Double)
                    .to_device(tch::Device::Cpu),
            )?;
            (linf_pixels(&xb, &b.x, &std)?, change, xb)
        };
        // The beta-smoothing defence: the same gain on the surrogate's explanation.
        if let (Some(sur), true) = (run.surrogate, matches!(est, Used::Exact | Used::Surrogate)) {
            let hs_adv = vec_of(&normalised(&run.attribute(
                sur,
                m,
                &linf_all.2,
                &targets,
                &idx.iter().map(|&i| i as u64).collect::<Vec<_>>(),
            )?))?;
            let hs_0 = vec_of(&normalised(&run.attribute(
                sur,
                m,
                &b.x,
                &targets,
                &idx.iter().map(|&i| i as u64).collect::<Vec<_>>(),
            )?))?;
            for j in 0..bsz {
                if let (Some(t), Some(_)) = (&tmaps[j], &best[j]) {
                    f.keep(
                        SMOOTHED,
                        idx[j],
                        &[similarity::pearson(&hs_adv[j], t) - similarity::pearson(&hs_0[j], t)],
                    );
                }
            }
        }
        let h0v = vec_of(&h0)?;
        for j in 0..bsz {
            let i = idx[j];
            if p.skip_misclassified {
                if let Some(l) = b.labels[j] {
                    if l != targets[j] {
                        f.push(i, &[], Some("misclassified before the attack".into()));
                        continue;
                    }
                }
            }
            let Some(t) = &tmaps[j] else {
                f.keep(NO_TARGET, i, &[1.0]);
                f.push(
                    i,
                    &[],
                    Some("no image of another class to take a target map from".into()),
                );
                continue;
            };
            f.keep(ATTACKED, i, &[1.0]);
            let Some((pcc, xb, hb)) = &best[j] else {
                f.keep(LABEL_CHANGED, i, &[1.0]);
                f.push(
                    i,
                    &[],
                    Some("the label changed at every iterate (no label-preserving attack)".into()),
                );
                continue;
            };
            let mut named = vec![
                ("pcc-gain", pcc - before[j]),
                ("pcc-after", *pcc),
                ("pcc-before", before[j]),
            ];
            if let Some(rb) = best_base[j] {
                f.keep(PAIRS, i, &[before[j] - pcc, before[j] - rb]);
                named.push(("random-sign-pcc-gain", rb - before[j]));
            }
            let mm = |v: &[f32]| similarity::minmax(v);
            let ssim = |a: &[f32]| similarity::ssim(&mm(a), &mm(t), 1, h, w, 1.0);
            named.extend([
                ("ssim-after", ssim(hb)),
                ("ssim-before", ssim(&h0v[j])),
                ("mse-after", similarity::mse(hb, t)),
                ("mse-before", similarity::mse(&h0v[j], t)),
                ("output-change", linf_all.1[j]),
                ("linf-pixels", linf_all.0[j]),
            ]);
            f.push(i, &named, None);
            f.example(
                i,
                vec![
                    run.image_panel(&b.x.get(j as i64), "original")?,
                    vec_panel(&sum_to_hw(&h0v[j]), h, w, "explanation")?,
                    vec_panel(t, h, w, "target")?,
                    run.image_panel(xb, "manipulated image")?,
                    vec_panel(hb, h, w, "its explanation")?,
                ],
            );
        }
        (run.progress)(bsz);
        Ok(())
    })?;
    super::attack::record_estimator(
        &mut f,
        used,
        (p.zo_directions, p.zo_radius, p.zo_grid),
        run.passes_since(passes0),
    );
    f.summary("target", p.target);
    if p.baseline {
        f.kept.entry(PAIRS.into()).or_default();
    }
    f.summary("epsilon_pixels", p.epsilon);
    Ok(vec![f])
}

const SMOOTHED: &str = "beta-smoothing-gain";
const NO_TARGET: &str = "no-target";

/// The attack's aggregates once every image is in.
fn finish(f: &mut Finding) {
    super::attack::finish_common(f);
    f.summary("images_without_a_target", f.kept_count(NO_TARGET));
    let smoothed = f.kept_values(SMOOTHED);
    if !smoothed.is_empty() {
        f.summary(
            "beta_smoothing_defence",
            serde_json::json!({
                "median_pcc_gain_on_the_surrogate_explanation": crate::stats::median(&smoothed),
                "n": smoothed.len(),
                "what": "the manipulated images explained by the smooth surrogate (Dombrowski et al.'s beta-smoothing): a gain well below the model's shows the defence works",
            }),
        );
    }
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "robustness",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: Some(finish),
    shardable: true,
    clips: true,
};
