//! What the faithfulness audits share (deletion, insertion, average drop, increase in
//! confidence): the map's pixel order with seeded tie-breaking, a random order or a randomly
//! placed copy of the map as the baseline that cannot be faithful, the replacement images,
//! and batched probability curves (all steps of many images in one device pass).
use super::RunCtx;
use crate::attribution::{aggregate, Method};
use crate::error::Result;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// What a removed pixel becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// 0 in model space, i.e. the normalisation's mean colour (RISE's code deletes to the
    /// zero tensor after normalisation).
    Zero,
    /// A Gaussian blur of the image (RISE's insertion substrate).
    Blur,
    /// The image's own per-channel mean.
    Mean,
    /// Black: 0 in [0,1] pixels (−mean/std in model space), the black frame video pipelines
    /// pad clips with.
    Black,
}

/// What the curves record for the predicted class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CurveScore {
    /// Softmax probability (RISE).
    Probability,
    /// The raw logit (on a linear model the map's optimal order is then known in closed form).
    Logit,
}

/// The order pixels are removed (or inserted) in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Order {
    /// Most relevant first (the map's highest values first).
    Morf,
    /// Least relevant first.
    Lerf,
}

/// What is removed (or inserted) at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Single pixels (all channels), RISE's curves.
    Pixel,
    /// Video models: whole frames, ranked by the map's mass in each ("when").
    Frame,
    /// Spatial squares of `tube-size` pixels through every frame of a clip, ranked by the
    /// map's mass in each ("where"); on images, squares (Samek et al.'s regions).
    Tube,
}

/// The unit of each pixel `[H·W']` of an input `h` × `w` (a clip's sheet: `frames` frames of
/// width `w / frames` side by side), and the number of units.
pub fn unit_layout(unit: Unit, h: i64, w: i64, frames: i64, tube: i64) -> (Vec<i64>, i64) {
    let fw = w / frames.max(1);
    match unit {
        Unit::Pixel => ((0..h * w).collect(), h * w),
        Unit::Frame => ((0..h * w).map(|p| (p % w) / fw).collect(), frames),
        Unit::Tube => {
            let t = tube.max(1);
            let cols = (fw + t - 1) / t;
            let rows = (h + t - 1) / t;
            let v = (0..h * w)
                .map(|p| {
                    let (y, x) = (p / w, (p % w) % fw);
                    (y / t) * cols + x / t
                })
                .collect();
            (v, rows * cols)
        }
    }
}

/// Sums `[B,HW]` values per unit: `[B,U]`.
fn per_unit(values: &Tensor, layout: &Tensor, units: i64) -> Tensor {
    let b = values.size()[0];
    Tensor::zeros([b, units], (Kind::Double, values.device())).scatter_add(
        1,
        &layout.unsqueeze(0).expand([b, -1], true),
        &values.to_kind(Kind::Double),
    )
}

/// Each pixel's unit rank `[B,HW]` from unit ranks `[B,U]`.
fn to_pixels(unit_ranks: &Tensor, layout: &Tensor) -> Tensor {
    let b = unit_ranks.size()[0];
    unit_ranks.gather(1, &layout.unsqueeze(0).expand([b, -1], true), false)
}

/// The replacement image `[B,C,H,W]` in model space. `blur_sigma` in pixels; absent: RISE's
/// σ 5 at 224 pixels scaled by min(H, W)/224, at least 1 pixel.
pub fn baseline_image(
    x: &Tensor,
    b: Baseline,
    blur_sigma: Option<f64>,
    pre: &crate::config::Preprocess,
) -> Tensor {
    match b {
        Baseline::Zero => x.zeros_like(),
        Baseline::Black => crate::data::normalise(&x.zeros_like(), pre),
        Baseline::Mean => x
            .mean_dim([2i64, 3].as_slice(), true, Kind::Float)
            .expand_as(x),
        Baseline::Blur => {
            let s = x.size();
            let sigma = blur_sigma.unwrap_or((5.0 * s[2].min(s[3]) as f64 / 224.0).max(1.0));
            crate::attribution::meaningful_perturbation::gaussian_blur(x, sigma)
        }
    }
}

/// The method's maps of the batch's predicted classes reduced to one value per pixel
/// `[B,H,W]` (the method's own channel reduction), upsampled to the input size.
pub fn pixel_maps(run: &RunCtx, m: &Method, b: &crate::data::Batch) -> Result<Tensor> {
    let maps = aggregate(&run.clean_maps(m, b)?, m.aggregate).to_kind(Kind::Float);
    let (h, w) = (b.x.size()[2], b.x.size()[3]);
    let s = maps.size();
    Ok(if (s[1], s[2]) == (h, w) {
        maps
    } else {
        maps.unsqueeze(1)
            .upsample_bilinear2d([h, w], false, None, None)
            .squeeze_dim(1)
    })
}

/// A seeded permutation of `0..n` for image `index`.
pub fn permutation(seed: u64, purpose: &str, index: usize, n: usize, k: u64) -> Vec<i64> {
    let mut v: Vec<i64> = (0..n as i64).collect();
    v.shuffle(&mut crate::rng::stream(seed, purpose, index as u64, k));
    v
}

/// Removal ranks `[B,HW]` (0 = first removed) of the maps `[B,H,W]`: by value in `order`,
/// ties broken by a seeded random permutation per image (a raster order would remove, say,
/// the top rows of a flat region first).
pub fn ranks_of(maps: &Tensor, order: Order, tie: &[Vec<i64>]) -> Tensor {
    let dev = maps.device();
    let b = maps.size()[0];
    let flat = maps.reshape([b, -1]).to_kind(Kind::Double);
    let perm = perms(tie, dev);
    let shuffled = flat.gather(1, &perm, false);
    let (_, idx) = shuffled.sort_stable(true, 1, order == Order::Morf);
    let order_px = perm.gather(1, &idx, false);
    ranks_from_order(&order_px)
}

/// Ranks `[B,HW]` of a random removal order per image.
pub fn random_ranks(orders: &[Vec<i64>], dev: tch::Device) -> Tensor {
    ranks_from_order(&perms(orders, dev))
}

fn perms(v: &[Vec<i64>], dev: tch::Device) -> Tensor {
    let flat: Vec<i64> = v.iter().flatten().copied().collect();
    Tensor::from_slice(&flat)
        .view([v.len() as i64, -1])
        .to_device(dev)
}

fn ranks_from_order(order_px: &Tensor) -> Tensor {
    let s = order_px.size();
    let pos = Tensor::arange(s[1], (Kind::Int64, order_px.device()))
        .unsqueeze(0)
        .expand([s[0], s[1]], true)
        .contiguous();
    order_px.zeros_like().scatter(1, order_px, &pos)
}

/// Units changed after step `s` of `steps`.
fn changed(s: usize, steps: usize, units: i64) -> i64 {
    ((s as f64 / steps as f64) * units as f64).round() as i64
}

/// Probability of `targets` along the curves: for image i and step s (0..=steps), the input
/// is `from` with the pixels of rank < round(s/steps · units) taken from `to` (ranks are
/// per pixel, or per unit broadcast to its pixels). Every (image,
/// step) input of all curves goes through the model in passes of `run.pass_size()`.
/// Returns, per curve set in `ranks`, `[B][steps+1]`.
pub fn curves(
    run: &RunCtx,
    from: &Tensor,
    to: &Tensor,
    ranks: &[&Tensor],
    targets: &[i64],
    (steps, units): (usize, i64),
    score: CurveScore,
) -> Result<Vec<Vec<Vec<f64>>>> {
    let s = from.size();
    let (b, c, h, w) = (s[0] as usize, s[1], s[2], s[3]);
    let dev = from.device();
    let per = steps + 1;
    // Flat job list: (curve set, image, step).
    let jobs: Vec<(usize, usize, usize)> = (0..ranks.len())
        .flat_map(|r| (0..b).flat_map(move |i| (0..per).map(move |st| (r, i, st))))
        .collect();
    let mut out = vec![vec![vec![0.0; per]; b]; ranks.len()];
    let all_ranks = Tensor::cat(ranks, 0);
    let t = Tensor::from_slice(targets).to_device(dev);
    crate::attribution::for_chunks(jobs.len(), run.pass_size(), |range| {
        let part = &jobs[range];
        let img: Vec<i64> = part.iter().map(|j| j.1 as i64).collect();
        let row: Vec<i64> = part.iter().map(|j| (j.0 * b + j.1) as i64).collect();
        let k: Vec<i64> = part.iter().map(|j| changed(j.2, steps, units)).collect();
        let img = Tensor::from_slice(&img).to_device(dev);
        let row = Tensor::from_slice(&row).to_device(dev);
        let k = Tensor::from_slice(&k).to_device(dev);
        let mask = all_ranks
            .index_select(0, &row)
            .lt_tensor(&k.unsqueeze(1))
            .view([-1, 1, h, w])
            .expand([part.len() as i64, c, h, w], false);
        let xs = from
            .index_select(0, &img)
            .where_self(&mask.logical_not(), &to.index_select(0, &img));
        let p = scores(run, &xs, &t.index_select(0, &img), score)?;
        for (j, v) in part.iter().zip(p) {
            out[j.0][j.1][j.2] = v;
        }
        Ok(())
    })?;
    Ok(out)
}

/// `probabilities` of any number of inputs, in passes of `run.pass_size()`.
pub fn chunked_probabilities(run: &RunCtx, xs: &Tensor, targets: &Tensor) -> Result<Vec<f64>> {
    chunked(run, xs, targets, probabilities)
}

/// `scores` of any number of inputs, in passes of `run.pass_size()`.
pub fn chunked_scores(
    run: &RunCtx,
    xs: &Tensor,
    targets: &Tensor,
    s: CurveScore,
) -> Result<Vec<f64>> {
    chunked(run, xs, targets, |run, x, t| scores(run, x, t, s))
}

/// `f` over any number of inputs, in passes of `run.pass_size()`.
fn chunked(
    run: &RunCtx,
    xs: &Tensor,
    targets: &Tensor,
    f: impl Fn(&RunCtx, &Tensor, &Tensor) -> Result<Vec<f64>>,
) -> Result<Vec<f64>> {
    let n = xs.size()[0] as usize;
    let mut out = Vec::with_capacity(n);
    crate::attribution::for_chunks(n, run.pass_size(), |r| {
        let (st, len) = (r.start as i64, r.len() as i64);
        out.extend(f(run, &xs.narrow(0, st, len), &targets.narrow(0, st, len))?);
        Ok(())
    })?;
    Ok(out)
}

/// Softmax probability of `targets` `[N]` for the inputs `xs` `[N,C,H,W]` (one pass), on
/// every model: Average Drop and Increase in Confidence are ratios and comparisons of
/// probabilities (a cosine can be 0 or negative).
pub fn probabilities(run: &RunCtx, xs: &Tensor, targets: &Tensor) -> Result<Vec<f64>> {
    let p = run
        .model
        .logits(xs)?
        .to_kind(Kind::Double)
        .softmax(1, Kind::Double)
        .gather(1, &targets.unsqueeze(1), false)
        .squeeze_dim(1);
    Ok(Vec::try_from(p.to_device(tch::Device::Cpu))?)
}

/// The score a curve records: on an embedding model always its similarity score (cosine /
/// temperature), because the softmax over its references is nearly flat at temperature 1
/// and the similarity is what Sammani et al. (2022) delete and insert on.
pub fn recorded(run: &RunCtx, s: CurveScore) -> CurveScore {
    if run.model.embedding.is_some() {
        CurveScore::Logit
    } else {
        s
    }
}

/// The probability or logit of `targets` `[N]` for the inputs `xs` (one pass).
pub fn scores(run: &RunCtx, xs: &Tensor, targets: &Tensor, s: CurveScore) -> Result<Vec<f64>> {
    let logits = run.model.logits(xs)?.to_kind(Kind::Double);
    let y = match recorded(run, s) {
        CurveScore::Probability => logits.softmax(1, Kind::Double),
        CurveScore::Logit => logits,
    };
    let p = y.gather(1, &targets.unsqueeze(1), false).squeeze_dim(1);
    Ok(Vec::try_from(p.to_device(tch::Device::Cpu))?)
}

/// Area under a curve sampled at equal steps over [0, 1] (trapezoid rule, as RISE's code).
pub fn auc(y: &[f64]) -> f64 {
    match y.len() {
        0 => f64::NAN,
        1 => y[0],
        n => (y.iter().sum::<f64>() - (y[0] + y[n - 1]) / 2.0) / (n - 1) as f64,
    }
}

/// Columns for `Curve::from_columns`: the fraction changed at each step and the values.
pub fn curve_columns(curves: &[Vec<f64>], steps: usize) -> Vec<(String, Vec<f64>)> {
    (0..=steps)
        .map(|s| {
            (
                format!("{:.2}", s as f64 / steps as f64),
                curves.iter().map(|c| c[s]).collect(),
            )
        })
        .collect()
}

/// Which curve: pixels leave the image (deletion) or enter it (insertion).
pub trait CurveKind: Clone + std::fmt::Debug {
    const INSERT: bool;
}

#[derive(Debug, Clone)]
pub struct Deleting;
impl CurveKind for Deleting {
    const INSERT: bool = false;
}

#[derive(Debug, Clone)]
pub struct Inserting;
impl CurveKind for Inserting {
    const INSERT: bool = true;
}

/// The parameters of deletion and insertion, which differ only in the default baseline
/// (zero for deletion, blur for insertion, as RISE).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case", bound = "")]
pub struct CurveParams<K: CurveKind> {
    /// Curve steps (points - 1) over the whole image.
    pub steps: usize,
    pub order: Order,
    pub baseline: Baseline,
    /// Random orders averaged into the reference curve.
    pub random_orders: usize,
    /// σ of the `blur` baseline in pixels (absent: 5 at 224 pixels, scaled, at least 1).
    pub blur_sigma: Option<f64>,
    /// `probability` (softmax, RISE) or `logit`.
    pub score: CurveScore,
    /// `pixel`, `frame` (video models) or `tube`.
    pub unit: Unit,
    /// Side of a tube's square in pixels (absent: a seventh of the frame's shorter side).
    pub tube_size: Option<usize>,
    #[serde(skip)]
    kind: std::marker::PhantomData<K>,
}

impl<K: CurveKind> Default for CurveParams<K> {
    fn default() -> Self {
        CurveParams {
            steps: 20,
            order: Order::Morf,
            baseline: if K::INSERT {
                Baseline::Blur
            } else {
                Baseline::Zero
            },
            random_orders: 1,
            blur_sigma: None,
            score: CurveScore::Probability,
            unit: Unit::Pixel,
            tube_size: None,
            kind: std::marker::PhantomData,
        }
    }
}

impl<K: CurveKind> super::AuditParams for CurveParams<K> {
    fn validate(&self) -> std::result::Result<(), String> {
        if !(2..=1000).contains(&self.steps) || !(1..=64).contains(&self.random_orders) {
            return Err("steps must be in 2..=1000 and random-orders in 1..=64".into());
        }
        if self.blur_sigma.is_some_and(|s| !super::positive(s)) {
            return Err("blur-sigma must be > 0 pixels".into());
        }
        if self.tube_size == Some(0) {
            return Err("tube-size must be >= 1 pixel".into());
        }
        Ok(())
    }
}

/// Deletion (`insert = false`: pixels go from the image to the baseline) or insertion
/// (`insert = true`: from the baseline to the image) curves of the map's order and of
/// `random_orders` random orders, per image; the gated `gain` is positive when the map's
/// order moves the probability the faithful way faster than chance.
pub fn measure_curves<K: CurveKind>(
    run: &RunCtx,
    m: &Method,
    p: &CurveParams<K>,
    code: &str,
) -> Result<Vec<super::Finding>> {
    let insert = K::INSERT;
    let layout = layout_for(run, p)?;
    // Whole units per step: at most one step per unit.
    let steps = p.steps.min(layout.1 as usize);
    let mut f = super::Finding::new("");
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let targets: Vec<i64> = clean.iter().map(|c| c.pred).collect();
        let maps = pixel_maps(run, m, b)?;
        let idx: Vec<usize> = b.indices.clone().collect();
        let (layout, units) = &layout;
        let n = *units as usize;
        let tie: Vec<Vec<i64>> = idx
            .iter()
            .map(|&i| permutation(run.seed, &format!("{code} ties"), i, n, 0))
            .collect();
        let flat = maps.reshape([maps.size()[0], -1]);
        let own = match p.unit {
            Unit::Pixel => ranks_of(&maps, p.order, &tie),
            _ => to_pixels(
                &ranks_of(&per_unit(&flat, layout, *units), p.order, &tie),
                layout,
            ),
        };
        let random: Vec<Tensor> = (0..p.random_orders)
            .map(|k| {
                let orders: Vec<Vec<i64>> = idx
                    .iter()
                    .map(|&i| {
                        permutation(run.seed, &format!("{code} random order"), i, n, k as u64)
                    })
                    .collect();
                match p.unit {
                    Unit::Pixel => random_ranks(&orders, run.device()),
                    _ => to_pixels(&random_ranks(&orders, run.device()), layout),
                }
            })
            .collect();
        let base = baseline_image(&b.x, p.baseline, p.blur_sigma, run.pre);
        let (from, to) = if insert { (&base, &b.x) } else { (&b.x, &base) };
        let mut sets: Vec<&Tensor> = vec![&own];
        sets.extend(random.iter());
        let c = curves(run, from, to, &sets, &targets, (steps, *units), p.score)?;
        let maps_cpu = super::run::to_vecs(&maps)?;
        let (h, w) = (b.x.size()[2] as usize, b.x.size()[3] as usize);
        for (j, &i) in idx.iter().enumerate() {
            let a = auc(&c[0][j]);
            let mean_random: Vec<f64> = (0..=steps)
                .map(|s| (1..c.len()).map(|r| c[r][j][s]).sum::<f64>() / (c.len() - 1) as f64)
                .collect();
            let ar = auc(&mean_random);
            // Deletion: a faithful order drops the probability early (small AUC); insertion:
            // it raises it early (large AUC). LeRF reverses both.
            let faster_down = insert == (p.order == Order::Lerf);
            let gain = if faster_down { ar - a } else { a - ar };
            f.example(
                i,
                vec![
                    run.image_panel(&b.x.get(j as i64), "original")?,
                    super::run::vec_panel(&maps_cpu[j], h, w, "explanation")?,
                ],
            );
            f.push(i, &[("gain", gain), ("auc", a), ("auc-random", ar)], None);
            f.keep("curve:probability", i, &c[0][j]);
            f.keep("curve:probability:reference", i, &mean_random);
        }
        (run.progress)(b.len());
        Ok(())
    })?;
    let what = if insert { "inserted" } else { "removed" };
    let unit = match p.unit {
        Unit::Pixel => "pixels",
        Unit::Frame => "frames",
        Unit::Tube => "tubes",
    };
    let x_label = format!("fraction of {unit} {what} ({:?})", p.order).to_lowercase();
    f.defer_curve_with_reference(
        "probability",
        &x_label,
        match (recorded(run, p.score), run.model.embedding.is_some()) {
            (_, true) => "similarity to the predicted reference",
            (CurveScore::Probability, _) => "probability of the predicted class",
            (CurveScore::Logit, _) => "logit of the predicted class",
        },
        curve_columns(&[], steps).into_iter().map(|c| c.0).collect(),
        "random order",
    );
    f.summary(
        "model_passes_per_image",
        (steps + 1) * (1 + p.random_orders),
    );
    f.summary("unit", unit);
    f.summary("units", layout.1);
    Ok(vec![f])
}

/// The unit of each pixel of the run's inputs (on the device) and the number of units;
/// frames on a model without clips are refused with the fix.
fn layout_for<K: CurveKind>(run: &RunCtx, p: &CurveParams<K>) -> Result<(Tensor, i64)> {
    let [_, h, w] = run.model.input_shape;
    let frames = run.model.clip.map(|c| c.frames).unwrap_or(1);
    if p.unit == Unit::Frame && run.model.clip.is_none() {
        return Err(crate::error::Error::config(
            "the suite",
            "unit = \"frame\" removes whole frames, and this model takes images",
            "use unit = \"pixel\" or \"tube\" (squares) for image models",
        ));
    }
    let side = h.min(w / frames);
    let tube = p
        .tube_size
        .map(|t| t as i64)
        .unwrap_or_else(|| ((side as f64 / 7.0).round() as i64).max(1));
    let (v, units) = unit_layout(p.unit, h, w, frames, tube);
    Ok((Tensor::from_slice(&v).to_device(run.device()), units))
}

/// Confidence of one image under the map-weighted masking of Average Drop / Increase in
/// Confidence: clean probability Y of the predicted class, O with the map as the mask, and
/// O with the same map values at seeded random positions.
pub struct Masked {
    pub clean: f64,
    pub map: f64,
    pub random: f64,
}

/// For each image of `b`: `None` when its map is flat (no mask can be made from it).
/// `area = None`: the model's input tensor times the min-max normalised map, as the reference
/// implementations multiply the normalised tensor (pytorch-grad-cam's
/// `CamMultImageConfidenceChange`, the L-CAM code); `Some(a)`: the input kept on the map's
/// top-a fraction of pixels and 0 elsewhere (the L-CAM paper's AD(a); ties by a seeded
/// permutation).
pub fn masked_confidences(
    run: &RunCtx,
    m: &Method,
    b: &crate::data::Batch,
    area: Option<f64>,
    code: &str,
) -> Result<Vec<Option<Masked>>> {
    let clean = run.clean(b)?;
    let maps = pixel_maps(run, m, b)?;
    let s = maps.size();
    let (n, hw) = (s[0], s[1] * s[2]);
    let flat = maps.reshape([n, hw]).to_kind(Kind::Double);
    let lo = flat.amin([1i64].as_slice(), true);
    let hi = flat.amax([1i64].as_slice(), true);
    let range: Vec<f64> = Vec::try_from((&hi - &lo).view([-1]).to_device(tch::Device::Cpu))?;
    let idx: Vec<usize> = b.indices.clone().collect();
    let mask = match area {
        None => (&flat - &lo) / (&hi - &lo).clamp_min(1e-300),
        Some(a) => top_area(&maps, a, run.seed, code, &idx),
    };
    // The same mask at a random place: cyclically shifted by a seeded offset per image (the
    // map keeps its shape and smoothness; a pixel permutation would turn a smooth map into
    // salt-and-pepper noise that no real map resembles).
    let random = shifted(&mask.view([n, s[1], s[2]]), run.seed, code, &idx).view([n, hw]);
    let to_image = |mk: &Tensor| -> Tensor {
        let mk = mk.view([n, 1, s[1], s[2]]).to_kind(Kind::Float);
        &b.x * mk
    };
    let xs = Tensor::cat(&[to_image(&mask), to_image(&random)], 0);
    let t: Vec<i64> = clean.iter().map(|c| c.pred).collect();
    let t = Tensor::from_slice(&t).to_device(run.device());
    let t = Tensor::cat(&[&t, &t], 0);
    let probs = chunked_probabilities(run, &xs, &t)?;
    Ok((0..n as usize)
        .map(|j| {
            (range[j] > 0.0).then(|| Masked {
                clean: clean[j].prob,
                map: probs[j],
                random: probs[n as usize + j],
            })
        })
        .collect())
}

/// `[B,HW]` 1/0 masks of each map's top-`a` fraction of pixels (ties by a seeded permutation).
pub fn top_area(maps: &Tensor, a: f64, seed: u64, code: &str, idx: &[usize]) -> Tensor {
    let s = maps.size();
    let hw = (s[1] * s[2]) as usize;
    let tie: Vec<Vec<i64>> = idx
        .iter()
        .map(|&i| permutation(seed, &format!("{code} ties"), i, hw, 0))
        .collect();
    let keep = (a * hw as f64).round() as i64;
    ranks_of(maps, Order::Morf, &tie)
        .lt(keep)
        .to_kind(Kind::Double)
}

/// Each `[H,W]` plane of `m` `[B,H,W]` rolled by a seeded offset (dy, dx) != (0, 0) per image.
pub fn shifted(m: &Tensor, seed: u64, code: &str, idx: &[usize]) -> Tensor {
    use rand::Rng;
    let s = m.size();
    let (h, w) = (s[1], s[2]);
    let parts: Vec<Tensor> = idx
        .iter()
        .enumerate()
        .map(|(j, &i)| {
            let mut rng = crate::rng::stream(seed, &format!("{code} placement"), i as u64, 0);
            let k = rng.random_range(1..(h * w).max(2));
            m.get(j as i64).roll([k / w, k % w], [0, 1]).unsqueeze(0)
        })
        .collect();
    Tensor::cat(&parts, 0)
}

/// Model-space images `[B,C,H,W]` back to [0,1] pixels.
pub fn to_unit(run: &RunCtx, x: &Tensor) -> Tensor {
    let dev = x.device();
    let m = Tensor::from_slice(&run.pre.mean())
        .view([1, -1, 1, 1])
        .to_device(dev);
    let s = Tensor::from_slice(&run.pre.std())
        .view([1, -1, 1, 1])
        .to_device(dev);
    x * s + m
}

/// Chattopadhay et al.'s per-image drop: max(0, Y − O) / Y.
pub fn drop(clean: f64, masked: f64) -> f64 {
    (clean - masked).max(0.0) / clean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_is_the_trapezoid_rule_on_unit_steps() {
        assert_eq!(auc(&[1.0, 1.0, 1.0]), 1.0);
        assert!((auc(&[1.0, 0.0]) - 0.5).abs() < 1e-12);
        assert!((auc(&[1.0, 0.5, 0.0]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn ranks_follow_the_map_and_break_ties_by_the_permutation() {
        let m = Tensor::from_slice(&[0.5f32, 0.9, 0.5, 0.1]).view([1, 2, 2]);
        let tie = vec![vec![2i64, 1, 0, 3]];
        let r: Vec<i64> = Vec::try_from(ranks_of(&m, Order::Morf, &tie).view([-1])).unwrap();
        // 0.9 first; of the tied 0.5s, pixel 2 comes first in the permutation.
        assert_eq!(r, vec![2, 0, 1, 3]);
        let r: Vec<i64> = Vec::try_from(ranks_of(&m, Order::Lerf, &tie).view([-1])).unwrap();
        assert_eq!(r, vec![2, 3, 1, 0]);
        let r: Vec<i64> =
            Vec::try_from(random_ranks(&[vec![3, 0, 2, 1]], tch::Device::Cpu).view([-1])).unwrap();
        assert_eq!(r, vec![1, 3, 2, 0]);
    }

    #[test]
    fn units_cover_the_sheet_by_frame_and_by_tube() {
        // A clip of 3 frames of 4 x 4 as its sheet [4, 12].
        let (v, n) = unit_layout(Unit::Frame, 4, 12, 3, 1);
        assert_eq!(n, 3);
        assert_eq!(&v[..12], &[0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        // Tubes of 3 px: 2 x 2 squares per frame (the last truncated), the same in every frame.
        let (v, n) = unit_layout(Unit::Tube, 4, 12, 3, 3);
        assert_eq!(n, 4);
        assert_eq!(&v[..12], &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(&v[36..48], &[2, 2, 2, 3, 2, 2, 2, 3, 2, 2, 2, 3]);
        // Pixels are their own units.
        let (v, n) = unit_layout(Unit::Pixel, 2, 2, 1, 1);
        assert_eq!((v, n), (vec![0, 1, 2, 3], 4));
    }
}
