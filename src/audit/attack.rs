//! Ghorbani et al. (2019) iterative attribution attacks, shared by `attack-random-sign`,
//! `attack-top-k` and `attack-mass-center`.
//!
//! The loop follows the official `amiratag/InterpretationFragility` code: signed steps of size
//! α, projection onto the L∞ ball of radius ε around the ORIGINAL image, clipping to the valid
//! pixel range, and the best label-preserving iterate is kept. One deliberate difference: the
//! paper differentiates the dissimilarity D through a softplus copy of the network (double
//! backprop). A TorchScript file cannot have its activations swapped, and the gradient of a
//! ReLU network's explanation is zero almost everywhere, so xaudit estimates ∇D with SPSA
//! (simultaneous perturbation, Spall 1992): q Rademacher directions u, two-sided differences
//! of D at x ± c·u. It needs only explanations, so it works for every method, and it is recorded
//! as `estimator = "spsa"` in the report.
use super::run::{eval_id, to_vecs, vec_panel, RunCtx};
use super::Finding;
use crate::attribution::{aggregate, Aggregate, Method};
use crate::error::Result;
use crate::similarity;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which dissimilarity the attack maximises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Objective {
    /// Random sign steps (the paper's baseline), no objective.
    RandomSign,
    /// Mass of the original top-k pixels (pushed down).
    TopK,
    /// Squared shift of the centre of mass (pushed up).
    MassCenter,
}

impl Objective {
    fn purpose(self) -> &'static str {
        match self {
            Objective::RandomSign => "attack-random-sign",
            Objective::TopK => "attack-top-k",
            Objective::MassCenter => "attack-mass-center",
        }
    }
}

/// Attack parameters; budgets are in pixel units of the 0-255 image.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// L∞ radius ε in 0-255 pixel units (paper: 1, 2, 4, 8; notebooks 8).
    #[serde(default = "d_eps")]
    pub epsilon: f64,
    /// Step α in 0-255 pixel units (paper 0.5).
    #[serde(default = "d_step")]
    pub step: f64,
    /// Iterations P (paper 100).
    #[serde(default = "d_iters")]
    pub iterations: usize,
    /// k as a fraction of the pixels (2%, about the paper's 1000 of 227² pixels).
    #[serde(default = "d_kfrac")]
    pub top_k_fraction: f64,
    /// Channel reduction of the map (Ghorbani: Σ_c |a_c|).
    #[serde(default = "d_agg")]
    pub aggregate: Aggregate,
    /// SPSA directions per iteration.
    #[serde(default = "d_q")]
    pub spsa_directions: usize,
    /// SPSA probe radius c in 0-255 pixel units.
    #[serde(default = "d_c")]
    pub spsa_radius: f64,
    /// Skip images whose clean prediction disagrees with their label (as the paper does).
    #[serde(default = "d_true")]
    pub skip_misclassified: bool,
}

fn d_eps() -> f64 {
    8.0
}
fn d_step() -> f64 {
    0.5
}
fn d_iters() -> usize {
    100
}
fn d_kfrac() -> f64 {
    0.02
}
fn d_agg() -> Aggregate {
    Aggregate::SumAbs
}
fn d_q() -> usize {
    4
}
fn d_c() -> f64 {
    2.0
}
fn d_true() -> bool {
    true
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        if !(self.epsilon > 0.0 && self.epsilon <= 255.0) {
            return Err("epsilon must be in (0, 255] pixel units".into());
        }
        if !super::positive(self.step) {
            return Err("step must be > 0 pixel units".into());
        }
        if self.iterations == 0 {
            return Err("iterations must be >= 1".into());
        }
        if !(self.top_k_fraction > 0.0 && self.top_k_fraction <= 1.0) {
            return Err("top-k-fraction must be in (0, 1]".into());
        }
        if self.spsa_directions == 0 || !super::positive(self.spsa_radius) {
            return Err("spsa-directions must be >= 1 and spsa-radius > 0".into());
        }
        Ok(())
    }
}

pub const METRICS: &[&str] = &[
    "top-k-intersection",
    "spearman",
    "center-of-mass-shift",
    "center-of-mass-shift-relative",
    "linf-pixels",
    "confidence",
];

/// Ghorbani's saliency normalisation: the map sums to H·W.
fn sum_to_hw(m: &[f32]) -> Vec<f32> {
    let s: f64 = m.iter().map(|v| v.abs() as f64).sum();
    let n = m.len() as f64;
    if s <= 0.0 {
        return vec![0.0; m.len()];
    }
    m.iter().map(|v| (v.abs() as f64 * n / s) as f32).collect()
}

struct Orig {
    map: Vec<f32>,
    /// Top-k membership of each pixel (fractional on ties at the k-th value).
    topk: Vec<f64>,
    /// Unrounded centre of mass (the attacked centre is unrounded too).
    center: (f64, f64),
}

/// The original maps' top-k masks `[B, HW]` and centres `[B, 2]` on the device.
struct OrigT {
    topk_mask: Tensor,
    center: Tensor,
}

impl OrigT {
    fn new(origs: &[Orig], n_pix: usize, dev: tch::Device) -> Self {
        let mut mask = Vec::with_capacity(origs.len() * n_pix);
        let mut center = Vec::with_capacity(2 * origs.len());
        for o in origs {
            mask.extend_from_slice(&o.topk);
            center.extend([o.center.0, o.center.1]);
        }
        OrigT {
            topk_mask: Tensor::from_slice(&mask)
                .view([origs.len() as i64, n_pix as i64])
                .to_device(dev),
            center: Tensor::from_slice(&center)
                .view([origs.len() as i64, 2])
                .to_device(dev),
        }
    }
}

/// The value D the attack maximises, for SPSA probe maps `[M, HW]` (raw channel-reduced;
/// row r belongs to image r % B), computed on the device in float64: Ghorbani's top-k
/// objective -sum of the normalised map over the original top-k pixels, or the squared
/// centre-of-mass shift (scipy's definition, as `similarity::center_of_mass`).
fn objective_t(obj: Objective, o: &OrigT, maps: &Tensor, h: usize, w: usize) -> Result<Vec<f64>> {
    let m = maps.to_kind(Kind::Double).abs();
    let rows = m.size()[0];
    let b = o.topk_mask.size()[0];
    let owner = Tensor::arange(rows, (Kind::Int64, m.device())).remainder(b);
    let total = m.sum_dim_intlist(1, true, Kind::Double);
    let v = match obj {
        Objective::RandomSign => Tensor::zeros([rows], (Kind::Double, m.device())),
        Objective::TopK => {
            // sum_to_hw: |m| * HW / sum|m| (0 for an all-zero map).
            let safe = total.where_self(&total.gt(0.0), &total.ones_like());
            let norm = (&m * (h * w) as f64 / safe) * total.gt(0.0).to_kind(Kind::Double);
            -(norm * o.topk_mask.index_select(0, &owner)).sum_dim_intlist(1, false, Kind::Double)
        }
        Objective::MassCenter => {
            let g = m.view([rows, h as i64, w as i64]);
            let rw = Tensor::arange(h as i64, (Kind::Double, m.device()));
            let cw = Tensor::arange(w as i64, (Kind::Double, m.device()));
            let sr = (g.sum_dim_intlist(2, false, Kind::Double) * rw).sum_dim_intlist(
                1,
                false,
                Kind::Double,
            );
            let sc = (g.sum_dim_intlist(1, false, Kind::Double) * cw).sum_dim_intlist(
                1,
                false,
                Kind::Double,
            );
            let t = total.view([rows]);
            let pos = t.gt(0.0);
            let safe = t.where_self(&pos, &t.ones_like());
            let mid = |len: usize| ((len as f64 - 1.0) / 2.0, (len as f64 - 1.0).max(0.0));
            let (cr, hr) = mid(h);
            let (cc, hc) = mid(w);
            let r = (sr / &safe)
                .clamp(0.0, hr)
                .where_self(&pos, &t.full_like(cr));
            let c = (sc / &safe)
                .clamp(0.0, hc)
                .where_self(&pos, &t.full_like(cc));
            let oc = o.center.index_select(0, &owner);
            (r - oc.select(1, 0)).square() + (c - oc.select(1, 1)).square()
        }
    };
    Ok(Vec::try_from(v.to_device(tch::Device::Cpu))?)
}

/// Runs one attack over the data set.
pub fn run(
    run: &RunCtx,
    method: &Method,
    p: &Params,
    obj: Objective,
    code: &str,
) -> Result<Vec<Finding>> {
    let _ = code;
    let mut f = Finding::new("");
    let mut floor: Vec<f64> = Vec::new();
    let model = run.model;
    let eps = run.pixel_scale(p.epsilon);
    let alpha = run.pixel_scale(p.step);
    let c_probe = run.pixel_scale(p.spsa_radius);
    let std: Vec<f64> = run.pre.std().iter().map(|s| *s as f64).collect();
    let (mut tried, mut succeeded, mut failed_label) = (0usize, 0usize, 0usize);
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let raw0 = run.clean_maps(method, b)?;
        let maps0 = to_vecs(&aggregate(&raw0, p.aggregate))?;
        let (h, w) = (b.x.size()[2] as usize, b.x.size()[3] as usize);
        let n_pix = h * w;
        let k = ((p.top_k_fraction * n_pix as f64).round() as usize).clamp(1, n_pix);
        let targets: Vec<i64> = clean.iter().map(|c| c.pred).collect();
        let idx: Vec<usize> = b.indices.clone().collect();
        let origs: Vec<Orig> = maps0
            .iter()
            .map(|m| {
                let map = sum_to_hw(m);
                Orig {
                    topk: similarity::top_k_membership(&map, k),
                    center: similarity::center_of_mass(&map, h, w),
                    map,
                }
            })
            .collect();
        if let Some(alt) = run.noise_maps(method, b)? {
            let alt = to_vecs(&aggregate(&alt, p.aggregate))?;
            for (o, a) in origs.iter().zip(&alt) {
                let a = sum_to_hw(a);
                floor.push(match obj {
                    Objective::MassCenter => {
                        let c = similarity::center_of_mass(&a, h, w);
                        let diag = ((h * h + w * w) as f64).sqrt();
                        (c.0 - o.center.0).hypot(c.1 - o.center.1) / diag
                    }
                    _ => similarity::top_k_intersection_tie_aware(&o.map, &a, k),
                });
            }
        }
        let bsz = idx.len();
        let orig_t = OrigT::new(&origs, n_pix, run.device());
        let shape = b.x.size();
        let numel: usize = shape[1..].iter().product::<i64>() as usize;
        // Best label-preserving iterate so far: (criterion, metrics). Every label-preserving
        // iterate is eligible, so an image is scored whenever one exists; an image whose every
        // iterate changed the label has no score (excluded), never a perfect one.
        let mut best: Vec<Option<(f64, [f64; 6])>> = vec![None; bsz];
        let mut crit_best = vec![f64::INFINITY; bsz];
        let mut best_x: Vec<Option<Tensor>> = (0..bsz).map(|_| None).collect();
        let mut best_map: Vec<Option<Vec<f32>>> = vec![None; bsz];
        let mut xt = b.x.shallow_clone();
        let q = if obj == Objective::RandomSign {
            0
        } else {
            p.spsa_directions
        };
        let per = 2 * q + 1;
        let mut dirs: Vec<Tensor> = Vec::new();
        for t in 0..=p.iterations {
            // One batched evaluation: the current iterate (measured when t >= 1) and the SPSA
            // probes around it (used for the next step, when t < iterations).
            let probing = t < p.iterations && q > 0;
            let mut inputs = vec![xt.shallow_clone()];
            let mut ids: Vec<u64> = idx
                .iter()
                .map(|&i| eval_id(i, 1 + (t * per) as u64))
                .collect();
            let mut tgt = targets.clone();
            if probing {
                dirs.clear();
                for j in 0..q {
                    let mut v = Vec::with_capacity(bsz * numel);
                    for &i in &idx {
                        let mut rng = crate::rng::stream(
                            run.seed,
                            obj.purpose(),
                            i as u64,
                            (t * q + j) as u64,
                        );
                        v.extend(
                            (0..numel).map(|_| if rng.random::<bool>() { 1f32 } else { -1f32 }),
                        );
                    }
                    let u = Tensor::from_slice(&v)
                        .view(shape.as_slice())
                        .to_device(run.device());
                    let du = &u * &c_probe;
                    inputs.push(&xt + &du);
                    inputs.push(&xt - &du);
                    dirs.push(u);
                    for s in 0..2 {
                        ids.extend(
                            idx.iter()
                                .map(|&i| eval_id(i, 1 + (t * per + 1 + 2 * j + s) as u64)),
                        );
                        tgt.extend(&targets);
                    }
                }
            }
            let all_x = Tensor::cat(&inputs, 0);
            let need_maps = t >= 1 || probing;
            // The current iterate's prediction comes from the same pass as its map when the
            // method returns its logits (gradient methods), else from one forward pass.
            // Only the current iterate's maps come to the host (for the recorded metrics);
            // the SPSA probes' objectives are reduced on the device to one scalar each.
            let (maps, probe_obj, preds) = if need_maps {
                let (raw, pred, prob) =
                    run.attribute_predict_first(model, method, &all_x, &tgt, &ids, bsz)?;
                let agg = aggregate(&raw, p.aggregate).flatten(1, -1);
                let maps: Vec<Vec<f32>> = if t >= 1 {
                    to_vecs(&agg.narrow(0, 0, bsz as i64))?
                        .into_iter()
                        .map(|m| sum_to_hw(&m))
                        .collect()
                } else {
                    Vec::new()
                };
                let probe_obj = if probing {
                    let probes = agg.narrow(0, bsz as i64, (all_x.size()[0]) - bsz as i64);
                    objective_t(obj, &orig_t, &probes, h, w)?
                } else {
                    Vec::new()
                };
                (maps, probe_obj, Some((pred, prob)))
            } else {
                (Vec::new(), Vec::new(), None)
            };
            if t >= 1 {
                let (pred, prob) = preds.unwrap_or_default();
                let linf = linf_pixels(&xt, &b.x, &std)?;
                for j in 0..bsz {
                    if pred[j] != targets[j] {
                        continue;
                    }
                    let m = &maps[j];
                    let inter = similarity::top_k_intersection_tie_aware(&origs[j].map, m, k);
                    let shift = {
                        let c = similarity::center_of_mass(m, h, w);
                        ((c.0 - origs[j].center.0).powi(2) + (c.1 - origs[j].center.1).powi(2))
                            .sqrt()
                    };
                    let crit = match obj {
                        Objective::MassCenter => -shift,
                        _ => inter,
                    };
                    if crit < crit_best[j] {
                        crit_best[j] = crit;
                        let rho = similarity::spearman(&origs[j].map, m);
                        let diag = ((h * h + w * w) as f64).sqrt();
                        best[j] = Some((crit, [inter, rho, shift, shift / diag, linf[j], prob[j]]));
                        best_x[j] = Some(xt.get(j as i64).copy());
                        best_map[j] = Some(m.clone());
                    }
                }
            }
            if t == p.iterations {
                break;
            }
            // Step direction.
            let d = if obj == Objective::RandomSign {
                let mut v = Vec::with_capacity(bsz * numel);
                for &i in &idx {
                    let mut rng = crate::rng::stream(run.seed, obj.purpose(), i as u64, t as u64);
                    v.extend((0..numel).map(|_| {
                        let z: f32 = StandardNormal.sample(&mut rng);
                        z.signum()
                    }));
                }
                Tensor::from_slice(&v)
                    .view(shape.as_slice())
                    .to_device(run.device())
            } else {
                let mut g = Tensor::zeros(shape.as_slice(), (Kind::Float, run.device()));
                for (j, u) in dirs.iter().enumerate() {
                    // probe_obj rows: (+u_0, -u_0, +u_1, -u_1, ...) x bsz images.
                    let coef: Vec<f32> = (0..bsz)
                        .map(|i| {
                            (probe_obj[bsz * (2 * j) + i] - probe_obj[bsz * (2 * j + 1) + i]) as f32
                        })
                        .collect();
                    let coef = Tensor::from_slice(&coef)
                        .view([-1, 1, 1, 1])
                        .to_device(run.device());
                    g += u * coef;
                }
                g.sign()
            };
            let (lo, hi) = run.valid_range();
            xt = project(&b.x, &(&xt + d * &alpha), &eps, &lo, &hi);
        }
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
            tried += 1;
            let Some((_, vals)) = best[j] else {
                failed_label += 1;
                f.push(
                    i,
                    &[],
                    Some("the label changed at every iterate (no label-preserving attack)".into()),
                );
                continue;
            };
            let moved = match obj {
                Objective::MassCenter => vals[2] > 0.0,
                _ => vals[0] < 1.0,
            };
            if moved {
                succeeded += 1;
            }
            let named: Vec<(&str, f64)> = METRICS.iter().copied().zip(vals).collect();
            f.push(i, &named, None);
            let x0 = b.x.get(j as i64);
            f.example(
                i,
                vec![
                    run.image_panel(&x0, "original")?,
                    vec_panel(&origs[j].map, h, w, "explanation")?,
                    run.image_panel(best_x[j].as_ref().unwrap_or(&x0), "attacked image")?,
                    vec_panel(
                        best_map[j].as_ref().unwrap_or(&origs[j].map),
                        h,
                        w,
                        "attacked explanation",
                    )?,
                ],
            );
        }
        (run.progress)(bsz);
        Ok(())
    })?;
    f.summary(
        "estimator",
        if obj == Objective::RandomSign {
            "random-sign"
        } else {
            "spsa"
        },
    );
    f.summary("images_attacked", tried);
    f.summary(
        "attack_success_rate",
        if tried > 0 {
            succeeded as f64 / tried as f64
        } else {
            f64::NAN
        },
    );
    f.summary(
        "images_excluded_label_changed_at_every_iterate",
        failed_label,
    );
    f.summary(
        "top_k_ties",
        "tie-aware: expected intersection under random tie-breaking",
    );
    f.summary(
        "center_of_mass",
        "unrounded for both the original and the attacked map",
    );
    super::run::noise_floor(
        &mut f,
        match obj {
            Objective::MassCenter => "center-of-mass-shift-relative",
            _ => "top-k-intersection",
        },
        &floor,
    );
    f.summary(
        "epsilon_model_space_per_channel",
        std.iter()
            .map(|s| p.epsilon / (255.0 * s))
            .collect::<Vec<_>>(),
    );
    f.summary("epsilon_pixels", p.epsilon);
    Ok(vec![f])
}

/// Ghorbani's projection: back into the L∞ ball of radius `eps` around the ORIGINAL `x0`,
/// then into the valid pixel range `[lo, hi]` (all broadcast per channel).
pub fn project(x0: &Tensor, x: &Tensor, eps: &Tensor, lo: &Tensor, hi: &Tensor) -> Tensor {
    let step = (x - x0).maximum(&(-eps)).minimum(eps);
    (x0 + step).maximum(lo).minimum(hi)
}

/// Realised L∞ size of `xt - x` per image, in 0-255 pixel units.
fn linf_pixels(xt: &Tensor, x: &Tensor, std: &[f64]) -> Result<Vec<f64>> {
    let s: Vec<f32> = std.iter().map(|s| (255.0 * s) as f32).collect();
    let s = Tensor::from_slice(&s)
        .view([1, -1, 1, 1])
        .to_device(x.device());
    let d = ((xt - x).abs() * s)
        .flatten(1, -1)
        .amax([1i64].as_slice(), false);
    Ok(Vec::<f64>::try_from(
        d.to_kind(Kind::Double).to_device(tch::Device::Cpu),
    )?)
}

#[cfg(test)]
mod tests {
    use super::project;
    use proptest::prelude::*;
    use tch::{Device, Kind, Tensor};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Every iterate stays inside the L∞ budget around the original and the valid range.
        #[test]
        fn projection_respects_budget_and_range(seed in any::<u64>(), eps in 0.001f64..0.5, big in 0.0f64..5.0) {
            tch::manual_seed(seed as i64);
            let e = Tensor::from_slice(&[eps as f32, eps as f32 / 2.0, eps as f32]).view([1, 3, 1, 1]);
            let lo = Tensor::from_slice(&[-1.0f32, -0.8, -1.0]).view([1, 3, 1, 1]);
            let hi = Tensor::from_slice(&[1.0f32, 0.9, 1.0]).view([1, 3, 1, 1]);
            // Originals are valid images (the attack starts from data).
            let x0 = (Tensor::rand([2, 3, 5, 5], (Kind::Float, Device::Cpu)) * 2.0 - 1.0).maximum(&lo).minimum(&hi);
            let x = &x0 + (Tensor::rand([2, 3, 5, 5], (Kind::Float, Device::Cpu)) - 0.5) * big;
            let y = project(&x0, &x, &e, &lo, &hi);
            let over = ((&y - &x0).abs() - &e).max().double_value(&[]);
            prop_assert!(over <= 1e-6, "outside the budget by {over}");
            prop_assert!((&y - &lo).min().double_value(&[]) >= -1e-7);
            prop_assert!((&hi - &y).min().double_value(&[]) >= -1e-7);
        }
    }
}
