//! Ghorbani et al. (2019) iterative attribution attacks, shared by `attack-random-sign`,
//! `attack-top-k` and `attack-mass-center`.
//!
//! The loop follows the official `amiratag/InterpretationFragility` code: signed steps of size
//! α, projection onto the L∞ ball of radius ε around the ORIGINAL image, clipping to the valid
//! pixel range, and the best label-preserving iterate is kept. The step direction is the sign
//! of ∇D, the gradient of the dissimilarity D of the explanation, found by one of three
//! estimators (`estimator`, recorded in the report with its cost):
//!
//! - **exact**: double backpropagation through the method (`attribution::second_order`), as
//!   the paper does. Available when the model is twice differentiable (softplus, GELU, SiLU,
//!   ...), which a probe checks at the start.
//! - **surrogate**: the same, through a smooth copy of a piecewise-linear model (ReLU replaced
//!   by softplus, `--surrogate`), the paper's NET2; acceptance and metrics stay on the model.
//! - **zeroth-order**: antithetic finite differences of D along many random sign patterns of
//!   coarse pixel blocks (`zo-grid` blocks per side, `zo-directions` pairs per step, all in one
//!   device pass), when neither gradient exists. Searching a low-dimensional block space keeps
//!   the estimate informative on large inputs, where full-resolution random directions carry
//!   almost no information about ∇D.
//!
//! A targeted attack also runs the random-sign baseline on the same images in the same
//! passes; a PASS then needs the targeted attack to be significantly stronger (a paired sign
//! test), otherwise the attack was too weak to show robustness.
use super::run::{eval_id, to_vecs, vec_panel, RunCtx};
use super::{Finding, Requirement};
use crate::attribution::{aggregate, Aggregate, Method};
use crate::error::{Error, Result};
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

/// How the step direction is found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// Exact when the model allows it, else the surrogate when one is given, else
    /// zeroth-order.
    #[default]
    Auto,
    Exact,
    Surrogate,
    ZerothOrder,
}

/// The estimator an attack actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Used {
    RandomSign,
    Exact,
    Surrogate,
    ZerothOrder,
}

impl Used {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Used::RandomSign => "random-sign",
            Used::Exact => "exact",
            Used::Surrogate => "surrogate",
            Used::ZerothOrder => "zeroth-order",
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
    /// auto, exact, surrogate or zeroth-order.
    #[serde(default)]
    pub estimator: Estimator,
    /// Zeroth-order: antithetic direction pairs per step.
    #[serde(default = "d_q")]
    pub zo_directions: usize,
    /// Zeroth-order: probe radius c in 0-255 pixel units.
    #[serde(default = "d_c")]
    pub zo_radius: f64,
    /// Zeroth-order: random blocks per image side (capped by the side; 0: auto, alternately
    /// 8 blocks and full resolution). Coarse blocks keep the search informative on large
    /// inputs (measured in the README).
    #[serde(default)]
    pub zo_grid: usize,
    /// Targeted attacks: also run the random-sign baseline and require the attack to be
    /// significantly stronger for a PASS.
    #[serde(default = "d_true")]
    pub baseline: bool,
    /// Skip images whose clean prediction disagrees with their label (as the paper does).
    #[serde(default = "d_true")]
    pub skip_misclassified: bool,
}

pub(crate) fn d_eps() -> f64 {
    8.0
}
pub(crate) fn d_step() -> f64 {
    0.5
}
pub(crate) fn d_iters() -> usize {
    100
}
fn d_kfrac() -> f64 {
    0.02
}
fn d_agg() -> Aggregate {
    Aggregate::SumAbs
}
pub(crate) fn d_q() -> usize {
    16
}
pub(crate) fn d_c() -> f64 {
    2.0
}
pub(crate) fn d_true() -> bool {
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
        if self.zo_directions == 0 || !super::positive(self.zo_radius) {
            return Err("zo-directions must be >= 1 and zo-radius > 0".into());
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
pub(crate) fn sum_to_hw(m: &[f32]) -> Vec<f32> {
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
    let v = objective_tensor(obj, o, maps, h, w);
    Ok(Vec::try_from(v.to_device(tch::Device::Cpu))?)
}

/// `objective_t` as a tensor `[M]`, differentiable in `maps` (the exact estimators' D).
fn objective_tensor(obj: Objective, o: &OrigT, maps: &Tensor, h: usize, w: usize) -> Tensor {
    let m = maps.to_kind(Kind::Double).abs();
    let rows = m.size()[0];
    let b = o.topk_mask.size()[0];
    let owner = Tensor::arange(rows, (Kind::Int64, m.device())).remainder(b);
    let total = m.sum_dim_intlist(1, true, Kind::Double);
    match obj {
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
    }
}

/// u = dD/da for the raw maps `a` `[B, C', H, W]` of the current iterates (D summed over
/// images): the cotangent the exact estimators push back through the method.
fn objective_grad(
    obj: Objective,
    o: &OrigT,
    raw: &Tensor,
    agg: Aggregate,
    h: usize,
    w: usize,
) -> Result<Tensor> {
    tch::with_grad(|| -> Result<Tensor> {
        let leaf = raw.detach().to_kind(Kind::Float).set_requires_grad(true);
        let m = aggregate(&leaf, agg).flatten(1, -1);
        let d = objective_tensor(obj, o, &m, h, w).sum(Kind::Double);
        let mut g = Tensor::f_run_backward(&[&d], &[&leaf], false, false)?;
        g.pop().filter(Tensor::defined).ok_or_else(|| {
            Error::method(
                "attack",
                "no gradient of the objective with respect to the map",
                "report this as a bug",
            )
        })
    })
}

/// Blocks per side of the automatic zeroth-order search (`zo-grid = 0`): even directions
/// use this coarse grid, odd ones full resolution. Coarse blocks carry the information on
/// large inputs (per-pixel directions reach a quarter of the exact damage at 224 x 224);
/// full resolution finds the fine structure of ReLU saliency on small inputs (measured in
/// the README).
pub(crate) const AUTO_GRID: i64 = 8;

/// The report's account of an attack: the estimator and why, the zeroth-order settings when
/// used. Images attacked and model passes per attacked image are aggregates (`finish`).
pub(crate) fn record_estimator(
    f: &mut Finding,
    used: Option<(Used, String)>,
    (directions, radius, grid): (usize, f64, usize),
    passes: u64,
) {
    let (est, why) = used.unwrap_or((Used::ZerothOrder, "no image".into()));
    f.summary("estimator", est.name());
    f.summary("estimator_reason", why);
    if est == Used::ZerothOrder {
        f.summary(
            "zeroth_order",
            serde_json::json!({"directions_per_step": directions, "radius_pixels": radius, "blocks_per_side": grid_label(grid)}),
        );
    }
    f.passes += passes;
}

/// What `zo-grid` means, for the report.
pub(crate) fn grid_label(grid: usize) -> serde_json::Value {
    if grid == 0 {
        serde_json::json!(format!(
            "auto: alternately {AUTO_GRID}x{AUTO_GRID} blocks and full resolution"
        ))
    } else {
        serde_json::json!(grid)
    }
}

/// Per-image facts of an attack (kept until every image is in).
pub(crate) const ATTACKED: &str = "attacked";
pub(crate) const LABEL_CHANGED: &str = "label-changed-at-every-iterate";
pub(crate) const PAIRS: &str = "targeted-vs-random-sign";

/// The aggregates every attack reports: images attacked, model passes per attacked image,
/// images whose label changed at every iterate, the noise floor and the strength test
/// against random-sign.
pub(crate) fn finish_common(f: &mut Finding) {
    let tried = f.kept_count(ATTACKED);
    f.summary("images_attacked", tried);
    f.summary(
        "model_passes_per_image",
        if tried > 0 {
            f.passes as f64 / tried as f64
        } else {
            f64::NAN
        },
    );
    f.summary(
        "images_excluded_label_changed_at_every_iterate",
        f.kept_count(LABEL_CHANGED),
    );
    if f.kept.contains_key(PAIRS) {
        let pairs: Vec<(f64, f64)> = f
            .kept
            .get(PAIRS)
            .map(|m| {
                m.values()
                    .map(|v| {
                        let g = |k: usize| v.get(k).copied().flatten().unwrap_or(f64::NAN);
                        (g(0), g(1))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (s, req) = strength(&pairs);
        f.summary("strength_vs_random_sign", s);
        f.requirements.push(req);
    }
}

/// The untargeted attacks' aggregates: `finish_common` and the success rate.
pub(crate) fn finish(f: &mut Finding) {
    let attacked = f.kept_values(ATTACKED);
    f.summary(
        "attack_success_rate",
        if attacked.is_empty() {
            f64::NAN
        } else {
            attacked.iter().filter(|v| **v > 0.0).count() as f64 / attacked.len() as f64
        },
    );
    finish_common(f);
}

/// Zeroth-order direction pairs for images `idx` at step `t`: Rademacher signs on a
/// `grid`×`grid` block pattern per channel, upsampled (nearest) to the image; `grid = 0`
/// alternates [`AUTO_GRID`] blocks and full resolution.
pub(crate) fn block_directions(
    run: &RunCtx,
    purpose: &str,
    idx: &[usize],
    t: usize,
    q: usize,
    shape: &[i64],
    grid: usize,
) -> Vec<Tensor> {
    let (c, h, w) = (shape[1], shape[2], shape[3]);
    (0..q)
        .map(|j| {
            let g = match grid {
                0 if j % 2 == 0 => AUTO_GRID,
                0 => h.max(w),
                g => g as i64,
            };
            let (gh, gw) = (g.min(h).max(1), g.min(w).max(1));
            let per = (c * gh * gw) as usize;
            let mut v = Vec::with_capacity(idx.len() * per);
            for &i in idx {
                let mut rng = crate::rng::stream(run.seed, purpose, i as u64, (t * q + j) as u64);
                v.extend((0..per).map(|_| if rng.random::<bool>() { 1f32 } else { -1f32 }));
            }
            let blocks = Tensor::from_slice(&v)
                .view([idx.len() as i64, c, gh, gw])
                .to_device(run.device());
            if gh == h && gw == w {
                blocks
            } else {
                blocks.upsample_nearest2d([h, w], None, None)
            }
        })
        .collect()
}

/// Signs of N(0, I) for images `idx` at step `t`: Ghorbani's random-sign baseline, drawn
/// from the same streams as `attack-random-sign` so the baseline inside a targeted attack is
/// that audit's attack.
pub(crate) fn random_signs(run: &RunCtx, idx: &[usize], t: usize, shape: &[i64]) -> Tensor {
    let numel: usize = shape[1..].iter().product::<i64>() as usize;
    let mut v = Vec::with_capacity(idx.len() * numel);
    for &i in idx {
        let mut rng = crate::rng::stream(
            run.seed,
            Objective::RandomSign.purpose(),
            i as u64,
            t as u64,
        );
        v.extend((0..numel).map(|_| {
            let z: f32 = StandardNormal.sample(&mut rng);
            z.signum()
        }));
    }
    let mut sh = shape.to_vec();
    sh[0] = idx.len() as i64;
    Tensor::from_slice(&v)
        .view(sh.as_slice())
        .to_device(run.device())
}

/// Which estimator to use, and why.
fn resolve(
    run: &RunCtx,
    method: &Method,
    p: &Params,
    obj: Objective,
    x: &Tensor,
    targets: &[i64],
    idx: &[usize],
) -> Result<(Used, String)> {
    if obj == Objective::RandomSign {
        return Ok((
            Used::RandomSign,
            "random-sign baseline: no objective".into(),
        ));
    }
    resolve_estimator(run, method, p.estimator, x, targets, idx)
}

/// Which gradient estimator `wanted` resolves to for `method` on this run (probing the model
/// and the surrogate on the batch's first images), and why.
pub(crate) fn resolve_estimator(
    run: &RunCtx,
    method: &Method,
    wanted: Estimator,
    x: &Tensor,
    targets: &[i64],
    idx: &[usize],
) -> Result<(Used, String)> {
    let n = targets.len().min(2) as i64;
    let xs = x.narrow(0, 0, n);
    let ts = Tensor::from_slice(&targets[..n as usize]).to_device(run.device());
    let ids: Vec<u64> = idx[..n as usize].iter().map(|&i| i as u64).collect();
    let works = |m: &crate::model::Model| -> Result<bool> {
        crate::attribution::second_order::probe(&method.spec, &run.ctx(m, method), &xs, &ts, &ids)
    };
    let name = method.kind().name();
    let exact = || -> Result<bool> { works(run.model) };
    let surrogate = || -> Result<bool> { run.surrogate.map_or(Ok(false), works) };
    match wanted {
        Estimator::Exact => {
            if exact()? {
                Ok((
                    Used::Exact,
                    "requested; the probe found a non-zero second-order gradient".into(),
                ))
            } else {
                Err(Error::NotApplicable(format!(
                    "estimator = \"exact\": the gradient of {name}'s explanation is zero or undefined on this model (piecewise linear, e.g. ReLU, or a method without an exact path); give a smooth surrogate (--surrogate) or use estimator = \"zeroth-order\""
                )))
            }
        }
        Estimator::Surrogate => {
            if run.surrogate.is_none() {
                return Err(Error::NotApplicable(
                    "estimator = \"surrogate\" but no surrogate model was given (--surrogate FILE or [model] surrogate)".into(),
                ));
            }
            if surrogate()? {
                Ok((
                    Used::Surrogate,
                    "requested; the surrogate's second-order gradient is non-zero".into(),
                ))
            } else {
                Err(Error::NotApplicable(format!(
                    "estimator = \"surrogate\": the gradient of {name}'s explanation is zero on the surrogate too; make the surrogate smooth (softplus in place of ReLU)"
                )))
            }
        }
        Estimator::ZerothOrder => Ok((Used::ZerothOrder, "requested".into())),
        Estimator::Auto => {
            if exact()? {
                Ok((
                    Used::Exact,
                    format!("the gradient of {name}'s explanation with respect to the input is non-zero on the model (probe: a second-order gradient through it)"),
                ))
            } else if surrogate()? {
                Ok((Used::Surrogate, "the model is piecewise linear (zero second-order gradient); a smooth surrogate was given".into()))
            } else {
                Ok((Used::ZerothOrder, if run.surrogate.is_some() {
                    "no usable second-order gradient on the model or the surrogate"
                } else {
                    "the model has no usable second-order gradient for this method and no surrogate was given"
                }.into()))
            }
        }
    }
}

/// The best label-preserving iterate of one chain: (criterion, metrics).
type Best = Option<(f64, [f64; 6])>;

/// Metrics of iterate maps `maps` against the originals, and the criterion each chain
/// minimises (top-k intersection, or minus the centre-of-mass shift).
fn score(obj: Objective, o: &Orig, m: &[f32], k: usize, h: usize, w: usize) -> (f64, f64, f64) {
    let inter = similarity::top_k_intersection_tie_aware(&o.map, m, k);
    let c = similarity::center_of_mass(m, h, w);
    let shift = (c.0 - o.center.0).hypot(c.1 - o.center.1);
    let crit = match obj {
        Objective::MassCenter => -shift,
        _ => inter,
    };
    (crit, inter, shift)
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
    let model = run.model;
    let eps = run.pixel_scale(p.epsilon);
    let alpha = run.pixel_scale(p.step);
    let c_probe = run.pixel_scale(p.zo_radius);
    let std: Vec<f64> = run.pre.std().iter().map(|s| *s as f64).collect();
    let passes0 = run.passes();
    let baseline = p.baseline && obj != Objective::RandomSign;
    // The estimator is resolved on the data set's first images, in every shard.
    let used = {
        let b = run.first_images(2)?;
        let targets: Vec<i64> = run.clean(&b)?.iter().map(|c| c.pred).collect();
        let idx: Vec<usize> = b.indices.clone().collect();
        (!idx.is_empty())
            .then(|| resolve(run, method, p, obj, &b.x, &targets, &idx))
            .transpose()?
    };
    let metric = match obj {
        Objective::MassCenter => "center-of-mass-shift-relative",
        _ => "top-k-intersection",
    };
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let raw0 = run.clean_maps(method, b)?;
        let maps0 = to_vecs(&aggregate(&raw0, p.aggregate))?;
        let (h, w) = (b.x.size()[2] as usize, b.x.size()[3] as usize);
        let n_pix = h * w;
        let k = ((p.top_k_fraction * n_pix as f64).round() as usize).clamp(1, n_pix);
        let targets: Vec<i64> = clean.iter().map(|c| c.pred).collect();
        let idx: Vec<usize> = b.indices.clone().collect();
        let est = used.as_ref().map(|u| u.0).unwrap_or(Used::ZerothOrder);
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
            for ((o, a), &i) in origs.iter().zip(&alt).zip(&idx) {
                let a = sum_to_hw(a);
                super::run::keep_noise_floor(
                    &mut f,
                    metric,
                    i,
                    match obj {
                        Objective::MassCenter => {
                            let c = similarity::center_of_mass(&a, h, w);
                            let diag = ((h * h + w * w) as f64).sqrt();
                            (c.0 - o.center.0).hypot(c.1 - o.center.1) / diag
                        }
                        _ => similarity::top_k_intersection_tie_aware(&o.map, &a, k),
                    },
                );
            }
        }
        let bsz = idx.len();
        let orig_t = OrigT::new(&origs, n_pix, run.device());
        let shape = b.x.size();
        let diag = ((h * h + w * w) as f64).sqrt();
        let mut best: Vec<Best> = vec![None; bsz];
        let mut best_base: Vec<Best> = vec![None; bsz];
        let mut best_x: Vec<Option<Tensor>> = (0..bsz).map(|_| None).collect();
        let mut best_map: Vec<Option<Vec<f32>>> = vec![None; bsz];
        let mut xt = b.x.shallow_clone();
        let mut xr = b.x.shallow_clone();
        let q = if est == Used::ZerothOrder {
            p.zo_directions
        } else {
            0
        };
        let grid = p.zo_grid;
        let chains = 1 + usize::from(baseline);
        let (lo, hi) = run.valid_range();
        // Evaluation keys: the random-sign chain uses 1 + t, as `attack-random-sign` does (so
        // the baseline is that audit's attack); a targeted chain and its probes use their own
        // range above it.
        let stride = 1 + 2 * q as u64;
        let ids_of = |t: usize, slot: u64| -> Vec<u64> {
            idx.iter()
                .map(|&i| {
                    if obj == Objective::RandomSign {
                        eval_id(i, 1 + t as u64)
                    } else {
                        eval_id(i, (1 << 20) + (t as u64) * stride + slot)
                    }
                })
                .collect()
        };
        for t in 0..=p.iterations {
            // One batched evaluation: the current iterates (measured when t >= 1) and, for the
            // zeroth-order estimator, the probes around the targeted iterate.
            let probing = t < p.iterations && q > 0;
            let mut inputs = vec![xt.shallow_clone()];
            let mut ids = ids_of(t, 0);
            let mut tgt = targets.clone();
            if baseline {
                inputs.push(xr.shallow_clone());
                // The baseline's draws are keyed like `attack-random-sign`'s own.
                ids.extend(idx.iter().map(|&i| eval_id(i, 1 + t as u64)));
                tgt.extend(&targets);
            }
            let dirs = if probing {
                block_directions(run, obj.purpose(), &idx, t, q, &shape, grid)
            } else {
                Vec::new()
            };
            for (j, u) in dirs.iter().enumerate() {
                let du = u * &c_probe;
                inputs.push(&xt + &du);
                inputs.push(&xt - &du);
                for s in 0..2u64 {
                    ids.extend(ids_of(t, 1 + 2 * j as u64 + s));
                    tgt.extend(&targets);
                }
            }
            let all_x = Tensor::cat(&inputs, 0);
            let (raw, pred, prob) =
                run.attribute_predict_first(model, method, &all_x, &tgt, &ids, chains * bsz)?;
            let agg = aggregate(&raw, p.aggregate).flatten(1, -1);
            if t >= 1 {
                let maps: Vec<Vec<f32>> = to_vecs(&agg.narrow(0, 0, (chains * bsz) as i64))?
                    .into_iter()
                    .map(|m| sum_to_hw(&m))
                    .collect();
                let linf = linf_pixels(&xt, &b.x, &std)?;
                for j in 0..bsz {
                    if pred[j] == targets[j] {
                        let (crit, inter, shift) = score(obj, &origs[j], &maps[j], k, h, w);
                        if best[j].is_none_or(|b| crit < b.0) {
                            let rho = similarity::spearman(&origs[j].map, &maps[j]);
                            best[j] =
                                Some((crit, [inter, rho, shift, shift / diag, linf[j], prob[j]]));
                            best_x[j] = Some(xt.get(j as i64).copy());
                            best_map[j] = Some(maps[j].clone());
                        }
                    }
                    if baseline && pred[bsz + j] == targets[j] {
                        let (crit, inter, shift) = score(obj, &origs[j], &maps[bsz + j], k, h, w);
                        if best_base[j].is_none_or(|b| crit < b.0) {
                            best_base[j] =
                                Some((crit, [inter, 0.0, shift, shift / diag, 0.0, 0.0]));
                        }
                    }
                }
            }
            if t == p.iterations {
                break;
            }
            // Step directions.
            let d = match est {
                Used::RandomSign => random_signs(run, &idx, t, &shape),
                Used::ZerothOrder => {
                    let rows = (chains * bsz) as i64;
                    let probes = agg.narrow(0, rows, agg.size()[0] - rows);
                    let probe_obj = objective_t(obj, &orig_t, &probes, h, w)?;
                    let mut g = Tensor::zeros(shape.as_slice(), (Kind::Float, run.device()));
                    for (j, u) in dirs.iter().enumerate() {
                        // probe rows: (+u_0, -u_0, +u_1, -u_1, ...) x bsz images.
                        let coef: Vec<f32> = (0..bsz)
                            .map(|i| {
                                (probe_obj[bsz * (2 * j) + i] - probe_obj[bsz * (2 * j + 1) + i])
                                    as f32
                            })
                            .collect();
                        let coef = Tensor::from_slice(&coef)
                            .view([-1, 1, 1, 1])
                            .to_device(run.device());
                        g += u * coef;
                    }
                    g.sign()
                }
                Used::Exact | Used::Surrogate => {
                    let via = if est == Used::Exact {
                        model
                    } else {
                        run.surrogate.unwrap_or(model)
                    };
                    let ids0 = ids_of(t, 0);
                    let raw_t = if est == Used::Exact {
                        raw.narrow(0, 0, bsz as i64)
                    } else {
                        run.attribute(via, method, &xt, &targets, &ids0)?
                    };
                    let u = objective_grad(obj, &orig_t, &raw_t, p.aggregate, h, w)?;
                    let tt = Tensor::from_slice(&targets).to_device(run.device());
                    let g = method
                        .explanation_vjp(&run.ctx(via, method), &xt, &tt, &ids0, &u)?
                        .ok_or_else(|| {
                            Error::NotApplicable(format!(
                                "{} has no exact explanation gradient",
                                method.kind().name()
                            ))
                        })?;
                    g.sign()
                }
            };
            xt = project(&b.x, &(&xt + d * &alpha), &eps, &lo, &hi);
            if baseline {
                let dr = random_signs(run, &idx, t, &shape);
                xr = project(&b.x, &(&xr + dr * &alpha), &eps, &lo, &hi);
            }
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
            let Some((crit, vals)) = best[j] else {
                f.keep(ATTACKED, i, &[0.0]);
                f.keep(LABEL_CHANGED, i, &[1.0]);
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
            f.keep(ATTACKED, i, &[f64::from(u8::from(moved))]);
            let mut named: Vec<(&str, f64)> = METRICS.iter().copied().zip(vals).collect();
            if let Some((bc, bv)) = best_base[j] {
                f.keep(PAIRS, i, &[crit, bc]);
                named.push(("random-sign-top-k-intersection", bv[0]));
                named.push(("random-sign-center-of-mass-shift-relative", bv[3]));
            }
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
    record_estimator(
        &mut f,
        used,
        (p.zo_directions, p.zo_radius, p.zo_grid),
        run.passes_since(passes0),
    );
    f.summary(
        "top_k_ties",
        "tie-aware: expected intersection under random tie-breaking",
    );
    f.summary(
        "center_of_mass",
        "unrounded for both the original and the attacked map",
    );
    if baseline {
        // Present even when no image was paired: the test then reports p = 1.
        f.kept.entry(PAIRS.into()).or_default();
    }
    f.summary(
        "epsilon_model_space_per_channel",
        std.iter()
            .map(|s| p.epsilon / (255.0 * s))
            .collect::<Vec<_>>(),
    );
    f.summary("epsilon_pixels", p.epsilon);
    Ok(vec![f])
}

/// The paired comparison of the targeted attack with random-sign on the same images: per
/// image, which reached the lower criterion (smaller top-k intersection, or larger shift).
/// One-sided exact sign test (ties dropped) that the targeted attack wins more often.
pub(crate) fn strength(pairs: &[(f64, f64)]) -> (serde_json::Value, Requirement) {
    let wins = pairs.iter().filter(|(t, r)| t < r).count();
    let losses = pairs.iter().filter(|(t, r)| t > r).count();
    let ties = pairs.len() - wins - losses;
    let p = crate::stats::binom_sf(wins as u64, (wins + losses) as u64, 0.5);
    let p = if wins + losses == 0 { 1.0 } else { p };
    let diffs: Vec<f64> = pairs.iter().map(|(t, r)| t - r).collect();
    (
        serde_json::json!({
            "images": pairs.len(),
            "targeted_stronger": wins,
            "random_sign_stronger": losses,
            "ties": ties,
            "median_criterion_difference": crate::stats::median(&diffs),
            "p_one_sided_sign_test": p,
        }),
        Requirement {
            what: "the targeted attack is stronger than the random-sign baseline on the same images (paired one-sided sign test)".into(),
            p,
        },
    )
}

/// Ghorbani's projection: back into the L∞ ball of radius `eps` around the ORIGINAL `x0`,
/// then into the valid pixel range `[lo, hi]` (all broadcast per channel).
pub fn project(x0: &Tensor, x: &Tensor, eps: &Tensor, lo: &Tensor, hi: &Tensor) -> Tensor {
    let step = (x - x0).maximum(&(-eps)).minimum(eps);
    (x0 + step).maximum(lo).minimum(hi)
}

/// Realised L∞ size of `xt - x` per image, in 0-255 pixel units.
pub(crate) fn linf_pixels(xt: &Tensor, x: &Tensor, std: &[f64]) -> Result<Vec<f64>> {
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
