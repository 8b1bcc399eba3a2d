//! Embedding models: self-supervised encoders (SimCLR, Barlow Twins, DINO-style) whose
//! `forward` returns embeddings `[N,D]`, not logits.
//!
//! The explained score is the cosine similarity of an image's embedding to a reference
//! embedding. With class prototypes as references (the mean unit embedding of each class of
//! a labelled support folder, renormalised; Snell et al. 2017's prototypes, with the cosine
//! of the SSL literature's nearest-class-mean evaluation) the encoder becomes a
//! nearest-prototype classifier: its "logits" are the K cosine similarities divided by the
//! temperature, so every method and every audit of xaudit applies unchanged. References
//! are computed once with the trained weights and held fixed: randomisation audits change
//! the encoder, not the references (as the two-image explanations of Sammani et al. 2022
//! hold the other image's embedding fixed).
use crate::config::{Config, Preprocess};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::perturb::Op;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// What the model's `forward` returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// `[N,K]` class logits.
    #[default]
    Classifier,
    /// `[N,D]` embeddings, explained through their similarity to references.
    Embedding,
    /// A video classifier: `forward(x [N,C,T,H,W]) -> [N,K]` logits (`crate::clip`).
    Video,
}

/// The reference embeddings an embedding model's score compares with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reference {
    /// One prototype per class of a labelled support folder.
    #[default]
    Prototypes,
    /// A second augmented view of each audited image (SimCLR's pretext task): image i is
    /// scored against the embedding of its own view, which is reference i.
    View,
    /// Another image: image i is scored against the embedding of its partner in
    /// `[embedding] images` (the file at the same relative path, or one image for all),
    /// which is reference i.
    Image,
}

impl Reference {
    /// Whether image i is paired with reference i (views and partner images), rather than
    /// scored against every class prototype.
    pub fn pairs(self) -> bool {
        matches!(self, Reference::View | Reference::Image)
    }
}

/// The seeded augmentation of the second view (`[embedding.view]`): each image gets its
/// own draw, uniform within these budgets, keyed by `--seed` and its path.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ViewAugment {
    /// Rotation, degrees either way.
    #[serde(default = "d_rot")]
    pub rotate_degrees: f64,
    /// Shift, whole pixels either way in each direction.
    #[serde(default = "d_shift")]
    pub translate: i64,
    /// Added to [0,1] pixels, either way.
    #[serde(default = "d_bright")]
    pub brightness: f64,
    /// Contrast factor 1 +- this.
    #[serde(default = "d_contrast")]
    pub contrast: f64,
    /// Standard deviation of Gaussian noise on [0,1] pixels.
    #[serde(default = "d_noise")]
    pub noise: f64,
}

fn d_rot() -> f64 {
    15.0
}
fn d_shift() -> i64 {
    2
}
fn d_bright() -> f64 {
    0.1
}
fn d_contrast() -> f64 {
    0.2
}
fn d_noise() -> f64 {
    0.02
}

impl Default for ViewAugment {
    fn default() -> Self {
        ViewAugment {
            rotate_degrees: d_rot(),
            translate: d_shift(),
            brightness: d_bright(),
            contrast: d_contrast(),
            noise: d_noise(),
        }
    }
}

impl ViewAugment {
    fn validate(&self) -> std::result::Result<(), String> {
        let v = [
            self.rotate_degrees,
            self.brightness,
            self.contrast,
            self.noise,
        ];
        if v.iter().any(|v| !v.is_finite() || *v < 0.0) || self.translate < 0 {
            return Err("[embedding.view] budgets must be finite and >= 0".into());
        }
        if self.contrast >= 1.0 {
            return Err("[embedding.view] contrast must be below 1 (a factor in (0, 2))".into());
        }
        Ok(())
    }

    /// The operations that make the second view of the image keyed `key` (its path
    /// relative to the data root): rotation, shift, then contrast, brightness and noise.
    pub fn ops(&self, seed: u64, key: &str) -> Vec<Op> {
        use rand::Rng;
        let mut rng = crate::rng::stream(seed, "embedding-view", crate::rng::tag(key), 0);
        let mut sym = |m: f64| {
            if m > 0.0 {
                rng.random_range(-m..=m)
            } else {
                0.0
            }
        };
        let degrees = sym(self.rotate_degrees);
        let t = self.translate as f64;
        let (dx, dy) = (sym(t).round() as i64, sym(t).round() as i64);
        let contrast = sym(self.contrast);
        let brightness = sym(self.brightness);
        let noise_seed = crate::rng::derive(seed, &["embedding-view-noise", key]);
        vec![
            Op::Rotate { degrees },
            Op::Translate { dx, dy },
            Op::Contrast { delta: contrast },
            Op::Brightness { delta: brightness },
            Op::Noise {
                sigma: self.noise,
                seed: noise_seed,
            },
        ]
    }
}

/// The images an embedding model's view references are built from: the run's images in
/// order (reference i is image i's view), keyed by their path relative to `root`.
pub struct RunImages<'a> {
    pub data: &'a Dataset,
    pub root: &'a Path,
    pub seed: u64,
}

impl RunImages<'_> {
    /// The image's key: its path relative to the root.
    pub fn key(&self, path: &Path) -> String {
        let base = if self.root.is_file() {
            self.root.parent().unwrap_or(Path::new(""))
        } else {
            self.root
        };
        path.strip_prefix(base)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }
}

/// The second views `[B,C,H,W]` (model space) of a batch `x` (model space) of images at
/// `paths`.
pub fn views(
    aug: &ViewAugment,
    run: &RunImages,
    pre: &Preprocess,
    x: &Tensor,
    paths: &[PathBuf],
) -> Tensor {
    let x01 = crate::data::denormalise(x, pre);
    let v: Vec<Tensor> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| crate::perturb::apply(&aug.ops(run.seed, &run.key(p)), &x01.get(i as i64)))
        .collect();
    crate::data::normalise(&Tensor::stack(&v, 0), pre)
}

/// `[embedding]` in xaudit.toml.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EmbeddingSection {
    #[serde(default)]
    pub reference: Reference,
    /// Labelled support images (an ImageFolder tree: one sub-folder per class), relative to
    /// the working directory: one prototype per class.
    #[serde(default)]
    pub prototypes: Option<PathBuf>,
    /// Scores are cosine / temperature (default 1: the score is the cosine similarity).
    #[serde(default)]
    pub temperature: Option<f64>,
    /// The second view's augmentation (`reference = "view"`).
    #[serde(default)]
    pub view: Option<ViewAugment>,
    /// Partner images (`reference = "image"`), relative to the working directory: one image
    /// every audited image is paired with, or a folder in which each audited image's partner
    /// is the file at the same path relative to the data folder.
    #[serde(default)]
    pub images: Option<PathBuf>,
}

/// The references of an embedding model, as attached to a loaded `Model`.
pub struct References {
    /// Unit reference embeddings `[K,D]` on the model's device.
    unit: Tensor,
    /// 1 / temperature.
    scale: f64,
    pub temperature: f64,
    pub names: Vec<String>,
    pub dim: i64,
    pub reference: Reference,
    /// Where the references came from, for doctor and the reports.
    pub source: String,
    /// Support images per reference.
    pub counts: Vec<usize>,
    /// View references: the unit embeddings of the clean images `[K,D]`, against which the
    /// views are scored in turn (the other side of the pair).
    clean: Option<Tensor>,
    /// Channel summaries `[K,C']` of each reference's feature maps (mean, max, attention;
    /// see `summaries`), when the model exports `features`: Interaction-CAM's joint weights.
    /// For a prototype, the mean over its support images.
    features: Option<[Tensor; 3]>,
    /// The same for the clean images (view references).
    clean_features: Option<[Tensor; 3]>,
    /// Paired references: each reference's own pixels `[K,C,H,W]` (model space, CPU), for
    /// the methods that perturb both images of a pair (pairwise occlusion, averaged
    /// transforms).
    pixels: Option<Tensor>,
    /// The clean images' pixels, the other side of each pair.
    clean_pixels: Option<Tensor>,
    /// The preprocessing's per-channel mean and std: model space = ([0,1] pixels − mean) / std,
    /// for the methods that augment pixels (pixel invariance).
    pub pixel_space: (Vec<f32>, Vec<f32>),
}

/// How a feature map `[C',h,w]` is summarised per channel (Sammani et al.'s reductions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reduction {
    /// Spatial mean.
    Mean,
    /// Spatial max.
    Max,
    /// Attention pooling: softmax over positions of (mean feature · feature), then the
    /// attention-weighted mean.
    Attention,
}

impl Reduction {
    /// Position in `summaries`' output.
    pub fn index(self) -> usize {
        match self {
            Reduction::Mean => 0,
            Reduction::Max => 1,
            Reduction::Attention => 2,
        }
    }
}

/// The three channel summaries `[B,C']` of feature maps `[B,C',h,w]`.
pub fn summaries(feats: &Tensor) -> [Tensor; 3] {
    let s = feats.size();
    let (b, c) = (s[0], s[1]);
    let flat = feats.reshape([b, c, -1]).transpose(1, 2); // [B,hw,C']
    let mean = flat.mean_dim([1].as_slice(), false, Kind::Float);
    let max = flat.amax([1].as_slice(), false);
    let q = mean.unsqueeze(1); // [B,1,C']
    let attn = q.matmul(&flat.transpose(1, 2)).softmax(-1, Kind::Float); // [B,1,hw]
    let att = attn.matmul(&flat).squeeze_dim(1);
    [mean, max, att]
}

impl References {
    /// The summaries `[B,C']` of the references `targets` `[B]`, or None when the model
    /// exports no `features`.
    pub fn feature_summary(&self, how: Reduction, targets: &Tensor) -> Option<Tensor> {
        self.features
            .as_ref()
            .map(|f| f[how.index()].index_select(0, targets))
    }
}

impl References {
    /// Scores `[N,K]`: cosine similarity of each embedding `[N,D]` to each reference,
    /// divided by the temperature. Differentiable in `emb`.
    pub fn scores(&self, emb: &Tensor) -> Tensor {
        // F.normalize's rule: x / max(|x|, eps).
        let norm = emb
            .norm_scalaropt_dim(2, [1].as_slice(), true)
            .clamp_min(1e-12);
        (emb / norm).matmul(&self.unit.tr()) * self.scale
    }

    /// The same references for another model (a surrogate of the same encoder).
    pub fn share(&self) -> References {
        References {
            unit: self.unit.shallow_clone(),
            scale: self.scale,
            temperature: self.temperature,
            names: self.names.clone(),
            dim: self.dim,
            reference: self.reference,
            source: self.source.clone(),
            counts: self.counts.clone(),
            clean: self.clean.as_ref().map(Tensor::shallow_clone),
            features: self.features.as_ref().map(shallow3),
            clean_features: self.clean_features.as_ref().map(shallow3),
            pixels: self.pixels.as_ref().map(Tensor::shallow_clone),
            clean_pixels: self.clean_pixels.as_ref().map(Tensor::shallow_clone),
            pixel_space: self.pixel_space.clone(),
        }
    }

    /// The pixels `[B,C,H,W]` (model space, on `device`) of the references `targets`, the
    /// other image of each pair; None for class prototypes, which are no image.
    pub fn partner_pixels(&self, targets: &Tensor, device: Device) -> Option<Tensor> {
        self.pixels.as_ref().map(|p| {
            p.index_select(0, &targets.to_device(Device::Cpu))
                .to_device(device)
        })
    }

    /// For view references: the other side of each pair, the clean images' embeddings as
    /// references (so that a view is scored against its own image).
    pub fn swapped(&self) -> Option<References> {
        let clean = self.clean.as_ref()?;
        let mut r = self.share();
        r.unit = clean.shallow_clone();
        r.clean = Some(self.unit.shallow_clone());
        r.features = self.clean_features.as_ref().map(shallow3);
        r.clean_features = self.features.as_ref().map(shallow3);
        r.pixels = self.clean_pixels.as_ref().map(Tensor::shallow_clone);
        r.clean_pixels = self.pixels.as_ref().map(Tensor::shallow_clone);
        r.source = format!("the clean images of {}", self.source);
        Some(r)
    }

    pub fn describe(&self) -> String {
        match self.reference {
            Reference::Prototypes => format!(
                "{} class prototypes from {} ({} images), temperature {}",
                self.names.len(),
                self.source,
                self.counts.iter().sum::<usize>(),
                self.temperature
            ),
            Reference::View => format!(
                "a second augmented view of each of the {} images ({}), temperature {}",
                self.names.len(),
                self.source,
                self.temperature
            ),
            Reference::Image => format!(
                "a partner image for each of the {} images (from {}), temperature {}",
                self.names.len(),
                self.source,
                self.temperature
            ),
        }
    }

    /// The reference embeddings `[K,D]` (unit rows) on the CPU.
    pub fn unit_cpu(&self) -> Tensor {
        self.unit.to_device(Device::Cpu)
    }
}

fn shallow3(t: &[Tensor; 3]) -> [Tensor; 3] {
    [
        t[0].shallow_clone(),
        t[1].shallow_clone(),
        t[2].shallow_clone(),
    ]
}

/// Feature summaries of `x`, when the model exports `features`.
fn feature_summaries(model: &Model, x: &Tensor) -> Result<Option<[Tensor; 3]>> {
    if !matches!(model.cam, crate::model::CamSupport::Available { .. }) {
        return Ok(None);
    }
    let f = model.features(x)?.to_kind(Kind::Float);
    Ok(Some(summaries(&f)))
}

fn cat3(parts: Vec<[Tensor; 3]>) -> Option<[Tensor; 3]> {
    if parts.is_empty() {
        return None;
    }
    let col = |i: usize| {
        Tensor::cat(
            &parts
                .iter()
                .map(|p| p[i].shallow_clone())
                .collect::<Vec<_>>(),
            0,
        )
    };
    Some([col(0), col(1), col(2)])
}

fn origin(cfg: &Config) -> String {
    cfg.origin
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "configuration".into())
}

/// The support folder of an embedding model's configuration, checked.
fn support_path(cfg: &Config) -> Result<&Path> {
    cfg.embedding.prototypes.as_deref().ok_or_else(|| {
        Error::config(
            origin(cfg),
            "[model] kind = \"embedding\" needs reference embeddings, and [embedding] prototypes is not set",
            "set `prototypes = \"DIR\"` under [embedding]: a labelled folder (one sub-folder per class, or a CSV with labels) from which xaudit builds one prototype per class; see docs/model-contract.md",
        )
    })
}

/// Class names of the model's outputs when the configuration defines them: `[model]
/// class_names`, or for an embedding model the support folder's classes.
pub fn class_names(cfg: &Config) -> Result<Option<Vec<String>>> {
    if cfg.model.kind != ModelKind::Embedding {
        return Ok(cfg.model.class_names.clone());
    }
    if cfg.embedding.reference.pairs() {
        return Ok(None);
    }
    let ds = support(cfg)?;
    Ok(ds.folder_classes)
}

fn support(cfg: &Config) -> Result<Dataset> {
    let p = support_path(cfg)?;
    let ds = Dataset::from_inputs(&[p.to_path_buf()])?;
    if ds.folder_classes.is_none() {
        return Err(Error::data(
            p,
            "the prototype support set has no classes: it is not a folder of class sub-folders",
            "give [embedding] prototypes a folder with one sub-folder of images per class (ImageFolder layout)",
        ));
    }
    Ok(ds)
}

/// Loads the model of `path` as the configuration declares it: a classifier, or an
/// embedding model with its references built from the support set with this very model.
///
/// View references need the run's images (`run`): reference i is the second view of image
/// i, and image i's label must be i (`label_by_position`).
pub fn load(
    path: &Path,
    device: Device,
    shape: [i64; 3],
    cfg: &Config,
    pre: &Preprocess,
    run: Option<&RunImages>,
) -> Result<Model> {
    let model = Model::load_with(path, device, shape, pre.frames.map(|t| t as i64))?;
    if cfg.model.kind != ModelKind::Embedding {
        return Ok(model);
    }
    let refs = match cfg.embedding.reference {
        Reference::Prototypes => prototypes(&model, cfg, pre)?,
        Reference::View | Reference::Image => {
            let run = run.ok_or_else(|| {
                Error::config(
                    origin(cfg),
                    "[embedding] reference = \"view\" or \"image\" scores each image against its own partner, and this command has no images",
                    "use these references with `xaudit explain` and `xaudit check`, or reference = \"prototypes\"",
                )
            })?;
            pair_references(&model, cfg, pre, run)?
        }
    };
    Ok(model.with_references(refs))
}

/// Whether the configuration scores each image against its own partner (a view or an image).
pub fn uses_pairs(cfg: &Config) -> bool {
    cfg.model.kind == ModelKind::Embedding && cfg.embedding.reference.pairs()
}

/// Paired references score image i against reference i: its label is its position.
pub fn label_by_position(data: &mut Dataset) {
    for (i, it) in data.items.iter_mut().enumerate() {
        it.label = Some(i as i64);
    }
    data.folder_classes = None;
}

fn temperature(cfg: &Config) -> Result<f64> {
    let t = cfg.embedding.temperature.unwrap_or(1.0);
    if !(t.is_finite() && t > 0.0) {
        return Err(Error::config(
            origin(cfg),
            format!("[embedding] temperature = {t} is not a positive number"),
            "omit it (scores are then the cosine similarity) or give e.g. 0.1",
        ));
    }
    Ok(t)
}

/// Cosine similarity of the rows of `a` and `b` `[N,D]` (F.cosine_similarity's eps).
pub fn cosine(a: &Tensor, b: &Tensor) -> Tensor {
    (unit(a) * unit(b)).sum_dim_intlist(1, false, Kind::Float)
}

/// Rows scaled to unit length (F.normalize's rule: x / max(|x|, eps)).
pub fn unit(e: &Tensor) -> Tensor {
    e / e
        .norm_scalaropt_dim(2, [1].as_slice(), true)
        .clamp_min(1e-12)
}

fn embeddings(model: &Model, x: &Tensor, what: &str) -> Result<Tensor> {
    let e = model.embed(x)?.to_kind(Kind::Float);
    if e.dim() != 2 {
        return Err(Error::model(
            &model.path,
            format!(
                "forward returned shape {:?}; an embedding model returns [N,D]",
                e.size()
            ),
            "make forward return the embedding as a 2-D tensor [batch, dim]",
        ));
    }
    if !bool::try_from(e.isfinite().all()).unwrap_or(false) {
        return Err(Error::model(
            &model.path,
            format!("forward returned NaN or infinite embeddings for {what}"),
            "check the model and the preprocessing (mean/std) in xaudit.toml",
        ));
    }
    Ok(e)
}

/// The partner image of the audited image at `path` (`reference = "image"`): the one
/// partner file, or the file at the same relative path under the partner folder.
pub fn partner_of(cfg: &Config, run: &RunImages, path: &Path) -> Result<PathBuf> {
    let dir = cfg.embedding.images.as_deref().ok_or_else(|| {
        Error::config(
            origin(cfg),
            "[embedding] reference = \"image\" needs partner images, and [embedding] images is not set",
            "set `images = \"FILE-or-DIR\"` under [embedding]: one image every audited image is paired with, or a folder holding each audited image's partner at the same relative path",
        )
    })?;
    if dir.is_file() {
        return Ok(dir.to_path_buf());
    }
    let p = dir.join(run.key(path));
    if !p.is_file() {
        return Err(Error::data(
            &p,
            format!("no partner image for {}", path.display()),
            format!(
                "put each audited image's partner in {} at the same relative path, or give [embedding] images one image for all",
                dir.display()
            ),
        ));
    }
    Ok(p)
}

/// The partners `[B,C,H,W]` (model space, on the model's device) of a batch of audited
/// images: their second views, or their partner images.
fn partners(
    cfg: &Config,
    pre: &Preprocess,
    run: &RunImages,
    b: &crate::data::Batch,
) -> Result<Tensor> {
    match cfg.embedding.reference {
        Reference::View => {
            let aug = cfg.embedding.view.clone().unwrap_or_default();
            Ok(views(&aug, run, pre, &b.x, &b.paths))
        }
        _ => {
            let items = b
                .paths
                .iter()
                .map(|p| {
                    Ok(crate::data::Item {
                        path: partner_of(cfg, run, p)?,
                        label: None,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let ds = Dataset {
                items,
                ..Default::default()
            };
            Ok(ds.load_batch(0..ds.len(), pre, b.x.device())?.x)
        }
    }
}

/// Reference i: the unit embedding of image i's partner (its second view or its partner
/// image); also the clean images' embeddings, and both sides' pixels.
pub fn pair_references(
    model: &Model,
    cfg: &Config,
    pre: &Preprocess,
    run: &RunImages,
) -> Result<References> {
    let temperature = temperature(cfg)?;
    let reference = cfg.embedding.reference;
    if reference == Reference::View {
        let aug = cfg.embedding.view.clone().unwrap_or_default();
        aug.validate().map_err(|e| {
            Error::config(origin(cfg), e, "give finite budgets >= 0 (contrast < 1)")
        })?;
    }
    let (mut seen, mut clean) = (Vec::new(), Vec::new());
    let (mut seen_f, mut clean_f) = (Vec::new(), Vec::new());
    let (mut seen_px, mut clean_px) = (Vec::new(), Vec::new());
    let mut dim = 0;
    for r in run.data.batch_ranges(64) {
        let b = run.data.load_batch(r, pre, model.device)?;
        let what = format!("the images of {}", run.root.display());
        let v = partners(cfg, pre, run, &b)?;
        let ev = embeddings(model, &v, &what)?;
        dim = ev.size()[1];
        seen.push(unit(&ev));
        clean.push(unit(&embeddings(model, &b.x, &what)?));
        if let Some(f) = feature_summaries(model, &v)? {
            seen_f.push(f);
        }
        if let Some(f) = feature_summaries(model, &b.x)? {
            clean_f.push(f);
        }
        seen_px.push(v.to_device(Device::Cpu));
        clean_px.push(b.x.to_device(Device::Cpu));
    }
    let names = run
        .data
        .items
        .iter()
        .map(|it| {
            let what = match reference {
                Reference::View => "view",
                _ => "partner",
            };
            format!("{what} of {}", run.key(&it.path))
        })
        .collect::<Vec<_>>();
    let source = match (reference, cfg.embedding.images.as_deref()) {
        (Reference::Image, Some(p)) => p.display().to_string(),
        _ => run.root.display().to_string(),
    };
    Ok(References {
        unit: Tensor::cat(&seen, 0),
        scale: 1.0 / temperature,
        temperature,
        names,
        dim,
        reference,
        source,
        counts: vec![1; run.data.len()],
        clean: Some(Tensor::cat(&clean, 0)),
        features: cat3(seen_f),
        clean_features: cat3(clean_f),
        pixels: Some(Tensor::cat(&seen_px, 0)),
        clean_pixels: Some(Tensor::cat(&clean_px, 0)),
        pixel_space: (pre.mean(), pre.std()),
    })
}

/// As `load`, with the references of `main` (a surrogate of the same encoder, whose
/// scores must compare with the same references).
pub fn load_like(main: &Model, path: &Path, shape: [i64; 3]) -> Result<Model> {
    let m = Model::load_with(path, main.device, shape, main.clip.map(|c| c.frames))?;
    Ok(match &main.embedding {
        Some(r) => m.with_references(r.share()),
        None => m,
    })
}

/// One prototype per class of the support set: the mean unit embedding, renormalised.
pub fn prototypes(model: &Model, cfg: &Config, pre: &Preprocess) -> Result<References> {
    let temperature = temperature(cfg)?;
    let path = support_path(cfg)?;
    let ds = support(cfg)?;
    let names = ds.folder_classes.clone().unwrap_or_default();
    let k = names.len();
    let mut sums: Option<Tensor> = None;
    let mut fsums: Option<[Tensor; 3]> = None;
    let mut counts = vec![0usize; k];
    let mut dim = 0;
    for r in ds.batch_ranges(64) {
        let b = ds.load_batch(r.clone(), pre, model.device)?;
        let e = embeddings(
            model,
            &b.x,
            &format!("support images of {}", path.display()),
        )?;
        dim = e.size()[1];
        let u = unit(&e);
        let labels: Vec<i64> = ds.items[r]
            .iter()
            .map(|it| it.label.unwrap_or(-1))
            .collect();
        let onehot = Tensor::from_slice(&labels)
            .to_device(model.device)
            .one_hot(k as i64)
            .to_kind(Kind::Float);
        for l in &labels {
            counts[*l as usize] += 1;
        }
        let s = onehot.tr().matmul(&u);
        sums = Some(match sums {
            Some(t) => t + s,
            None => s,
        });
        if let Some(f) = feature_summaries(model, &b.x)? {
            let add = |i: usize| onehot.tr().matmul(&f[i]);
            fsums = Some(match fsums {
                Some(t) => [&t[0] + add(0), &t[1] + add(1), &t[2] + add(2)],
                None => [add(0), add(1), add(2)],
            });
        }
    }
    if let Some(i) = counts.iter().position(|c| *c == 0) {
        return Err(Error::data(
            path,
            format!(
                "class folder `{}` of the prototype support set has no image",
                names[i]
            ),
            "put at least one image (10 or more is better) in every class folder",
        ));
    }
    let sums = sums.ok_or_else(|| {
        Error::data(
            path,
            "the prototype support set has no images",
            "put images in <folder>/<class>/*.png",
        )
    })?;
    let n = Tensor::from_slice(&counts.iter().map(|c| *c as f32).collect::<Vec<_>>())
        .to_device(model.device)
        .view([-1, 1]);
    let features = fsums.map(|f| [&f[0] / &n, &f[1] / &n, &f[2] / &n]);
    Ok(References {
        unit: unit(&sums),
        scale: 1.0 / temperature,
        temperature,
        names,
        dim,
        reference: Reference::Prototypes,
        source: path.display().to_string(),
        counts,
        clean: None,
        features,
        clean_features: None,
        pixels: None,
        clean_pixels: None,
        pixel_space: (pre.mean(), pre.std()),
    })
}
