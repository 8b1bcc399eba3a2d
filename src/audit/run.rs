//! What every audit shares during one `xaudit check` run: the model, the streamed data, the
//! seed, batch sizes, conversions between pixel units and model space, and the clean
//! predictions and explanations (computed once per run, reused by every audit).
use crate::attribution::{Ctx, Method, Score};
use crate::config::Preprocess;
use crate::data::{Batch, Dataset};
use crate::error::{Error, Result};
use crate::model::Model;
use std::collections::HashMap;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

/// Clean (unperturbed) results for one image.
#[derive(Clone)]
pub struct Clean {
    pub pred: i64,
    pub prob: f64,
}

pub struct RunCtx<'a> {
    pub model: &'a Model,
    pub data: &'a Dataset,
    pub pre: &'a Preprocess,
    pub seed: u64,
    /// Images per data batch.
    pub batch_size: usize,
    /// Most model inputs per forward/backward pass inside a method or audit.
    pub internal_batch: usize,
    /// Optional second model trained on shuffled labels (data-randomization).
    pub random_label_model: Option<&'a Model>,
    /// Optional user-supplied out-of-set images.
    pub out_of_set: Option<&'a Dataset>,
    /// Optional smooth surrogate of the model (same network, ReLU replaced by softplus): the
    /// attacks take their gradient through it and evaluate on the model.
    pub surrogate: Option<&'a Model>,
    /// Independently trained copies of the model (run-to-run stability).
    pub replicas: Vec<&'a Model>,
    /// Embedding models with paired references: the encoder scoring each partner (view or
    /// partner image) against its own image (`References::swapped`), so the reports show
    /// both sides of each example's pair.
    pub partner_model: Option<&'a Model>,
    /// Called with the number of images an audit finished (progress bars).
    pub progress: &'a (dyn Fn(usize) + Sync),
    /// One input per model pass: results bitwise-identical whatever the batch sizes
    /// (batched kernels round differently per batch size), at the cost of speed.
    pub per_sample: bool,
    /// `check --shard I/N`: audits measure only the I-th of N contiguous blocks of whole
    /// batches (0-based), so every image sees the batches of a single run.
    pub shard: Option<(usize, usize)>,
    /// Sequential `check`: audits measure only these images (a block between two looks),
    /// batched from its start.
    pub window: Option<std::ops::Range<usize>>,
    clean: Mutex<HashMap<usize, Clean>>,
    maps: Mutex<MapStore>,
}

/// Clean maps of every image, kept in anonymous temporary files (one per method) rather
/// than in memory: audits stream the data set once each, and the OS page cache serves the
/// re-reads, so the process's memory does not grow with the number of images.
#[derive(Default)]
struct MapStore {
    spills: HashMap<String, Spill>,
}

struct Spill {
    file: std::fs::File,
    /// Shape of one map.
    shape: Vec<i64>,
    stored: std::collections::HashSet<usize>,
}

impl Spill {
    fn record_bytes(&self) -> u64 {
        4 * self.shape.iter().product::<i64>() as u64
    }
}

impl MapStore {
    /// The maps of `idx` `[B, ...]` (CPU, float32), if all are stored.
    fn get(&self, key: &str, idx: &[usize]) -> Result<Option<Tensor>> {
        use std::os::unix::fs::FileExt;
        let Some(s) = self.spills.get(key) else {
            return Ok(None);
        };
        if !idx.iter().all(|i| s.stored.contains(i)) {
            return Ok(None);
        }
        let rec = s.record_bytes() as usize;
        let mut bytes = vec![0u8; rec * idx.len()];
        for (j, i) in idx.iter().enumerate() {
            s.file
                .read_exact_at(&mut bytes[j * rec..(j + 1) * rec], *i as u64 * rec as u64)
                .map_err(spill_error)?;
        }
        let v: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut shape = vec![idx.len() as i64];
        shape.extend(&s.shape);
        Ok(Some(Tensor::from_slice(&v).view(shape.as_slice())))
    }

    fn put(&mut self, key: &str, idx: &[usize], maps: &Tensor) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let shape = maps.size()[1..].to_vec();
        if !self.spills.contains_key(key) {
            let file = tempfile::tempfile().map_err(spill_error)?;
            self.spills.insert(
                key.to_string(),
                Spill {
                    file,
                    shape: shape.clone(),
                    stored: Default::default(),
                },
            );
        }
        let Some(s) = self.spills.get_mut(key) else {
            return Ok(());
        };
        if s.shape != shape {
            // A method whose map shape varies cannot be spilled by index; recompute instead.
            return Ok(());
        }
        let v: Vec<f32> = Vec::try_from(
            maps.to_kind(Kind::Float)
                .to_device(Device::Cpu)
                .contiguous()
                .view([-1]),
        )?;
        let rec = s.record_bytes() as usize;
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_ne_bytes()).collect();
        for (j, i) in idx.iter().enumerate() {
            s.file
                .write_all_at(&bytes[j * rec..(j + 1) * rec], *i as u64 * rec as u64)
                .map_err(spill_error)?;
            s.stored.insert(*i);
        }
        Ok(())
    }
}

fn spill_error(e: std::io::Error) -> Error {
    Error::config(
        "the temporary directory",
        format!("cannot write or read the clean-map cache: {e}"),
        "free disk space in $TMPDIR (or point TMPDIR at a larger disk)",
    )
}

impl<'a> RunCtx<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &'a Model,
        data: &'a Dataset,
        pre: &'a Preprocess,
        seed: u64,
        batch_size: usize,
        internal_batch: usize,
        progress: &'a (dyn Fn(usize) + Sync),
    ) -> Self {
        RunCtx {
            model,
            data,
            pre,
            seed,
            batch_size: batch_size.max(1),
            internal_batch: internal_batch.max(1),
            random_label_model: None,
            out_of_set: None,
            surrogate: None,
            replicas: Vec::new(),
            partner_model: None,
            progress,
            per_sample: false,
            shard: None,
            window: None,
            clean: Mutex::new(HashMap::new()),
            maps: Mutex::new(MapStore::default()),
        }
    }

    /// (forward, forward+backward) images through the audited, random-label and surrogate
    /// models.
    /// Model passes (forward + backward images) since an earlier [`RunCtx::passes`].
    pub fn passes_since(&self, before: (u64, u64)) -> u64 {
        let now = self.passes();
        (now.0 - before.0) + (now.1 - before.1)
    }

    pub fn passes(&self) -> (u64, u64) {
        let mut out = self.model.passes.snapshot();
        for m in [self.random_label_model, self.surrogate]
            .into_iter()
            .flatten()
            .chain(self.replicas.iter().copied())
        {
            let b = m.passes.snapshot();
            out = (out.0 + b.0, out.1 + b.1);
        }
        out
    }

    /// Most inputs per model pass.
    pub fn pass_size(&self) -> usize {
        if self.per_sample {
            1
        } else {
            self.internal_batch
        }
    }

    pub fn device(&self) -> Device {
        self.model.device
    }

    /// The batches this process measures: all of them, the shard's block, or the sequential
    /// run's current block.
    pub fn batches(&self) -> Vec<std::ops::Range<usize>> {
        if let Some(w) = &self.window {
            let bs = self.batch_size.max(1);
            return (w.start..w.end.min(self.data.len()))
                .step_by(bs)
                .map(|a| a..(a + bs).min(w.end).min(self.data.len()))
                .collect();
        }
        let all: Vec<_> = self.data.batch_ranges(self.batch_size).collect();
        match self.shard {
            None => all,
            Some((i, n)) => all[i * all.len() / n..(i + 1) * all.len() / n].to_vec(),
        }
    }

    /// Streams the images this process measures in batches (model space, on the device).
    pub fn for_batches(&self, f: impl FnMut(&Batch) -> Result<()>) -> Result<()> {
        self.stream(self.batches(), f)
    }

    /// Streams every image of the data set, whatever the shard (shared inputs some audits
    /// draw from any image, e.g. the targeted attack's targets).
    pub fn for_all_batches(&self, f: impl FnMut(&Batch) -> Result<()>) -> Result<()> {
        self.stream(self.data.batch_ranges(self.batch_size).collect(), f)
    }

    fn stream(
        &self,
        ranges: Vec<std::ops::Range<usize>>,
        mut f: impl FnMut(&Batch) -> Result<()>,
    ) -> Result<()> {
        for range in ranges {
            crate::interrupt::check()?;
            let b = self.data.load_batch(range, self.pre, self.device())?;
            f(&b)?;
        }
        Ok(())
    }

    /// The data set's first `n` images (at most), whatever the shard: probes that decide
    /// something for the whole run (e.g. an attack's gradient estimator) look at the same
    /// images in every shard.
    pub fn first_images(&self, n: usize) -> Result<Batch> {
        self.data
            .load_batch(0..n.min(self.data.len()), self.pre, self.device())
    }

    /// The attribution context for `method` on `model`.
    pub fn ctx<'m>(&self, model: &'m Model, method: &Method) -> Ctx<'m> {
        self.ctx_seeded(model, method, self.seed)
    }

    fn ctx_seeded<'m>(&self, model: &'m Model, method: &Method, seed: u64) -> Ctx<'m> {
        Ctx {
            model,
            seed,
            internal_batch: self.pass_size(),
            score: method.score,
        }
    }

    /// Predicted class and its probability for each image of `x`, checked finite.
    pub fn predict(&self, model: &Model, x: &Tensor) -> Result<(Vec<i64>, Vec<f64>)> {
        let mut preds = Vec::with_capacity(x.size()[0] as usize);
        let mut probs = Vec::with_capacity(preds.capacity());
        crate::attribution::for_chunks(x.size()[0] as usize, self.pass_size(), |r| {
            let xs = x.narrow(0, r.start as i64, r.len() as i64);
            let (p, c) = self.decide(model, &model.logits(&xs)?)?;
            preds.extend(p);
            probs.extend(c);
            Ok(())
        })?;
        Ok((preds, probs))
    }

    /// Predicted class and its probability from logits `[B,K]`, checked finite.
    fn decide(&self, model: &Model, logits: &Tensor) -> Result<(Vec<i64>, Vec<f64>)> {
        model.decide(logits, "an audit input")
    }

    /// Clean predictions of the audited model for a batch (cached per image).
    pub fn clean(&self, b: &Batch) -> Result<Vec<Clean>> {
        let idx: Vec<usize> = b.indices.clone().collect();
        {
            let cache = self.clean.lock().expect("clean cache poisoned");
            if idx.iter().all(|i| cache.contains_key(i)) {
                return Ok(idx.iter().map(|i| cache[i].clone()).collect());
            }
        }
        let (pred, prob) = self.predict(self.model, &b.x)?;
        let out: Vec<Clean> = pred
            .iter()
            .zip(&prob)
            .map(|(&pred, &prob)| Clean { pred, prob })
            .collect();
        let mut cache = self.clean.lock().expect("clean cache poisoned");
        for (i, c) in idx.iter().zip(&out) {
            cache.insert(*i, c.clone());
        }
        Ok(out)
    }

    /// Raw attributions `[B,C',H,W]` of `method` on `model` for `targets`, checked finite.
    /// `ids` key the method's random draws: a perturbed evaluation passes its own ids
    /// (see `eval_id`) so stochastic methods draw fresh noise for it.
    pub fn attribute(
        &self,
        model: &Model,
        method: &Method,
        x: &Tensor,
        targets: &[i64],
        ids: &[u64],
    ) -> Result<Tensor> {
        self.attribute_logits(model, method, x, targets, ids)
            .map(|(maps, _)| maps)
    }

    /// `attribute` plus the model's predicted class and its probability at each input of `x`.
    /// Gradient methods return the logits of their own forward pass, so for them the
    /// prediction costs no extra model pass.
    pub fn attribute_predict(
        &self,
        model: &Model,
        method: &Method,
        x: &Tensor,
        targets: &[i64],
        ids: &[u64],
    ) -> Result<(Tensor, Vec<i64>, Vec<f64>)> {
        self.attribute_predict_first(model, method, x, targets, ids, targets.len())
    }

    /// As `attribute_predict`, with predictions for the first `rows` inputs only.
    pub fn attribute_predict_first(
        &self,
        model: &Model,
        method: &Method,
        x: &Tensor,
        targets: &[i64],
        ids: &[u64],
        rows: usize,
    ) -> Result<(Tensor, Vec<i64>, Vec<f64>)> {
        let (maps, logits) = self.attribute_logits(model, method, x, targets, ids)?;
        let rows = rows.min(targets.len()) as i64;
        let (pred, prob) = match logits {
            Some(l) => self.decide(model, &l.narrow(0, 0, rows))?,
            None => self.predict(model, &x.narrow(0, 0, rows))?,
        };
        Ok((maps, pred, prob))
    }

    fn attribute_logits(
        &self,
        model: &Model,
        method: &Method,
        x: &Tensor,
        targets: &[i64],
        ids: &[u64],
    ) -> Result<(Tensor, Option<Tensor>)> {
        self.attribute_logits_seeded(model, method, x, targets, ids, self.seed)
    }

    fn attribute_logits_seeded(
        &self,
        model: &Model,
        method: &Method,
        x: &Tensor,
        targets: &[i64],
        ids: &[u64],
        seed: u64,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let a = self.attribution_seeded(model, method, x, targets, ids, seed)?;
        Ok((a.maps, a.logits))
    }

    /// The method's whole output (maps checked finite, the logits of its own pass when it has
    /// them, per-image diagnostics such as IG's completeness error): what `explain` writes.
    pub fn attribution(
        &self,
        model: &Model,
        method: &Method,
        x: &Tensor,
        targets: &[i64],
        ids: &[u64],
    ) -> Result<crate::attribution::Attribution> {
        self.attribution_seeded(model, method, x, targets, ids, self.seed)
    }

    fn attribution_seeded(
        &self,
        model: &Model,
        method: &Method,
        x: &Tensor,
        targets: &[i64],
        ids: &[u64],
        seed: u64,
    ) -> Result<crate::attribution::Attribution> {
        let t = Tensor::from_slice(targets).to_device(model.device);
        let mut a = if self.per_sample && targets.len() > 1 {
            let mut parts = Vec::with_capacity(targets.len());
            let mut logits = Vec::with_capacity(targets.len());
            let mut diagnostics: Vec<(String, Vec<f64>)> = Vec::new();
            for i in 0..targets.len() {
                let a = method.attribute(
                    &self.ctx_seeded(model, method, seed),
                    &x.narrow(0, i as i64, 1),
                    &t.narrow(0, i as i64, 1),
                    &ids[i..i + 1],
                )?;
                parts.push(a.maps);
                logits.extend(a.logits);
                for (k, v) in a.diagnostics {
                    match diagnostics.iter_mut().find(|(d, _)| *d == k) {
                        Some((_, all)) => all.extend(v),
                        None => diagnostics.push((k, v)),
                    }
                }
            }
            let logits = (logits.len() == parts.len()).then(|| Tensor::cat(&logits, 0));
            crate::attribution::Attribution {
                maps: Tensor::cat(&parts, 0),
                diagnostics,
                logits,
            }
        } else {
            method.attribute(&self.ctx_seeded(model, method, seed), x, &t, ids)?
        };
        a.maps = a.maps.to_kind(Kind::Float);
        // Never averaged in (nor written by `explain`): the run stops with an error naming
        // the images.
        crate::attribution::check_finite(method.kind().name(), &a.maps, |row| {
            let i = (ids[row] & ((1u64 << 40) - 1)) as usize;
            self.data
                .items
                .get(i)
                .map(|it| it.path.display().to_string())
                .unwrap_or_else(|| format!("input #{i}"))
        })?;
        Ok(a)
    }

    /// Clean explanations of the predicted class (computed once per method and image, then
    /// served from the spill files).
    pub fn clean_maps(&self, method: &Method, b: &Batch) -> Result<Tensor> {
        let key = serde_json::to_string(method).unwrap_or_default();
        self.cached_maps(&key, method, b, self.seed)
    }

    /// Cached clean predictions of images `idx` (after `clean` saw them), in order.
    pub fn cached_clean(&self, idx: &[usize]) -> Option<Vec<Clean>> {
        let cache = self.clean.lock().expect("clean cache poisoned");
        idx.iter().map(|i| cache.get(i).cloned()).collect()
    }

    /// Stored clean maps of any images `idx` (after `clean_maps` saw them), on the device.
    pub fn stored_clean_maps(&self, method: &Method, idx: &[usize]) -> Result<Option<Tensor>> {
        let key = serde_json::to_string(method).unwrap_or_default();
        let t = self
            .maps
            .lock()
            .expect("map cache poisoned")
            .get(&key, idx)?;
        Ok(t.map(|t| t.to_device(self.device())))
    }

    /// A second clean explanation of the batch whose Monte Carlo draws use another seed: how
    /// far two explanations of the same input differ by the method's own noise (its noise
    /// floor). `None` for deterministic methods. Cached like the clean maps.
    pub fn noise_maps(&self, method: &Method, b: &Batch) -> Result<Option<Tensor>> {
        if !method.kind().is_stochastic() {
            return Ok(None);
        }
        let key = format!(
            "{}#noise-floor",
            serde_json::to_string(method).unwrap_or_default()
        );
        let seed = crate::rng::derive(self.seed, &["noise-floor"]);
        self.cached_maps(&key, method, b, seed).map(Some)
    }

    /// Clean maps of the batch's predicted classes with draws keyed by `seed`, from the spill
    /// files when every image is there, else computed and stored under `key`.
    fn cached_maps(&self, key: &str, method: &Method, b: &Batch, seed: u64) -> Result<Tensor> {
        let idx: Vec<usize> = b.indices.clone().collect();
        if let Some(t) = self
            .maps
            .lock()
            .expect("map cache poisoned")
            .get(key, &idx)?
        {
            return Ok(t.to_device(self.device()));
        }
        let clean = self.clean(b)?;
        let targets: Vec<i64> = clean.iter().map(|c| c.pred).collect();
        let ids: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
        let (maps, _) =
            self.attribute_logits_seeded(self.model, method, &b.x, &targets, &ids, seed)?;
        self.maps
            .lock()
            .expect("map cache poisoned")
            .put(key, &idx, &maps)?;
        Ok(maps)
    }

    /// Per-channel `[1,C,1,1]` model-space size of `pixels` units of the 0-255 image.
    pub fn pixel_scale(&self, pixels: f64) -> Tensor {
        let v: Vec<f32> = self
            .pre
            .std()
            .iter()
            .map(|s| (pixels / (255.0 * *s as f64)) as f32)
            .collect();
        Tensor::from_slice(&v)
            .view([1, -1, 1, 1])
            .to_device(self.device())
    }

    /// Model-space bounds `[1,C,1,1]` of valid pixels (0 and 255 after normalisation).
    pub fn valid_range(&self) -> (Tensor, Tensor) {
        let (m, s) = (self.pre.mean(), self.pre.std());
        let lo: Vec<f32> = m.iter().zip(&s).map(|(m, s)| -m / s).collect();
        let hi: Vec<f32> = m.iter().zip(&s).map(|(m, s)| (1.0 - m) / s).collect();
        let t = |v: Vec<f32>| {
            Tensor::from_slice(&v)
                .view([1, -1, 1, 1])
                .to_device(self.device())
        };
        (t(lo), t(hi))
    }

    /// Clamps model-space images to the valid pixel range.
    pub fn clamp_valid(&self, x: &Tensor) -> Tensor {
        let (lo, hi) = self.valid_range();
        x.maximum(&lo).minimum(&hi)
    }

    /// Model-space image from `[B,C,H,W]` pixels in [0,1].
    pub fn from_unit(&self, x01: &Tensor) -> Tensor {
        crate::data::normalise(x01, self.pre)
    }

    /// Width of the model-space valid range per channel `[1,C,1,1]` (for relative radii).
    pub fn range_width(&self) -> Tensor {
        let (lo, hi) = self.valid_range();
        hi - lo
    }
}

/// Largest side of a kept picture.
const PANEL_SIDE: i64 = 96;

/// Shrinks `[1,C,H,W]` to at most `PANEL_SIDE` a side (area averaging keeps small structure).
fn shrink(t: &Tensor) -> Tensor {
    let s = t.size();
    let (h, w) = (s[2], s[3]);
    let f = (h.max(w) as f64 / PANEL_SIDE as f64).max(1.0);
    if f <= 1.0 {
        return t.shallow_clone();
    }
    let (nh, nw) = (
        ((h as f64) / f).round().max(1.0) as i64,
        ((w as f64) / f).round().max(1.0) as i64,
    );
    t.adaptive_avg_pool2d([nh, nw])
}

fn panel(t: &Tensor, label: &str, kind: super::PanelKind) -> Result<super::Panel> {
    let t = shrink(&t.to_kind(Kind::Float).to_device(Device::Cpu));
    let s = t.size();
    Ok(super::Panel {
        label: label.into(),
        kind,
        c: s[1] as usize,
        h: s[2] as usize,
        w: s[3] as usize,
        data: Vec::try_from(t.contiguous().view([-1]))?,
    })
}

impl RunCtx<'_> {
    /// Picture of a model-space image `[C,H,W]`, back in [0,1] pixels.
    pub fn image_panel(&self, x: &Tensor, label: &str) -> Result<super::Panel> {
        let m: Vec<f32> = self.pre.mean();
        let s: Vec<f32> = self.pre.std();
        let dev = x.device();
        let m = Tensor::from_slice(&m).view([-1, 1, 1]).to_device(dev);
        let s = Tensor::from_slice(&s).view([-1, 1, 1]).to_device(dev);
        let px = (x * s + m).clamp(0.0, 1.0).unsqueeze(0);
        panel(&px, label, super::PanelKind::Image)
    }
}

/// Picture of a map `[H,W]` (or `[1,H,W]`).
pub fn map_panel(m: &Tensor, label: &str) -> Result<super::Panel> {
    let s = m.size();
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    panel(&m.reshape([1, 1, h, w]), label, super::PanelKind::Map)
}

/// Picture of a map held as a vector.
pub fn vec_panel(v: &[f32], h: usize, w: usize, label: &str) -> Result<super::Panel> {
    map_panel(&Tensor::from_slice(v).view([h as i64, w as i64]), label)
}

/// Identifier of evaluation `k` of image `index`: distinct keys for every perturbed copy,
/// so the random draws of stochastic methods are independent across evaluations but fixed
/// by the seed. `k = 0` is the clean evaluation (the id `explain` uses).
pub fn eval_id(index: usize, k: u64) -> u64 {
    (k << crate::attribution::IMAGE_BITS) ^ index as u64
}

/// Keeps one image's noise floor: the `metric` between two clean explanations of the image
/// whose Monte Carlo draws use different seeds (`finish_noise_floor` summarises).
pub fn keep_noise_floor(f: &mut super::Finding, metric: &str, index: usize, value: f64) {
    f.keep(&format!("noise_floor:{metric}"), index, &[value]);
}

/// Keeps the noise floor of several images ((index, value) pairs).
pub fn keep_noise_floors(f: &mut super::Finding, metric: &str, values: &[(usize, f64)]) {
    for &(i, v) in values {
        keep_noise_floor(f, metric, i, v);
    }
}

/// The noise floor's summary (median over images) from the kept values, if any.
pub fn finish_noise_floor(f: &mut super::Finding) {
    let Some(key) = f
        .kept
        .keys()
        .find(|k| k.starts_with("noise_floor:"))
        .cloned()
    else {
        return;
    };
    let values = f.kept_values(&key);
    if values.is_empty() {
        return;
    }
    f.summary(
        "noise_floor",
        serde_json::json!({
            "metric": key.trim_start_matches("noise_floor:"),
            "median": crate::stats::median(&values),
            "n": values.len(),
            "what": "two clean explanations of the same image whose Monte Carlo draws use different seeds; values beyond this are the model's, not the method's noise",
        }),
    );
}

/// Moves `[B,H,W]` or `[B,1,H,W]` maps to per-image CPU vectors.
pub fn to_vecs(maps: &Tensor) -> Result<Vec<Vec<f32>>> {
    let b = maps.size()[0];
    let flat = maps
        .to_kind(Kind::Float)
        .to_device(Device::Cpu)
        .reshape([b, -1])
        .contiguous();
    let all: Vec<f32> = Vec::try_from(flat.view([-1]))?;
    let n = if b == 0 { 0 } else { all.len() / b as usize };
    Ok(all.chunks(n.max(1)).map(|c| c.to_vec()).collect())
}

/// Score used by a method (for reports).
pub fn score_name(s: Score) -> &'static str {
    match s {
        Score::Logit => "logit",
        Score::Softmax => "softmax",
    }
}
