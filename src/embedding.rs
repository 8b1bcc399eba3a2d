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
}

/// The reference embeddings an embedding model's score compares with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reference {
    /// One prototype per class of a labelled support folder.
    #[default]
    Prototypes,
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
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "{} class prototypes from {} ({} images), temperature {}",
            self.names.len(),
            self.source,
            self.counts.iter().sum::<usize>(),
            self.temperature
        )
    }

    /// The reference embeddings `[K,D]` (unit rows) on the CPU.
    pub fn unit_cpu(&self) -> Tensor {
        self.unit.to_device(Device::Cpu)
    }
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
pub fn load(
    path: &Path,
    device: Device,
    shape: [i64; 3],
    cfg: &Config,
    pre: &Preprocess,
) -> Result<Model> {
    let model = Model::load(path, device, shape)?;
    if cfg.model.kind != ModelKind::Embedding {
        return Ok(model);
    }
    let refs = prototypes(&model, cfg, pre)?;
    Ok(model.with_references(refs))
}

/// As `load`, with the references of `main` (a surrogate of the same encoder, whose
/// scores must compare with the same references).
pub fn load_like(main: &Model, path: &Path, shape: [i64; 3]) -> Result<Model> {
    let m = Model::load(path, main.device, shape)?;
    Ok(match &main.embedding {
        Some(r) => m.with_references(r.share()),
        None => m,
    })
}

/// One prototype per class of the support set: the mean unit embedding, renormalised.
pub fn prototypes(model: &Model, cfg: &Config, pre: &Preprocess) -> Result<References> {
    let temperature = cfg.embedding.temperature.unwrap_or(1.0);
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::config(
            origin(cfg),
            format!("[embedding] temperature = {temperature} is not a positive number"),
            "omit it (scores are then the cosine similarity) or give e.g. 0.1",
        ));
    }
    let path = support_path(cfg)?;
    let ds = support(cfg)?;
    let names = ds.folder_classes.clone().unwrap_or_default();
    let k = names.len();
    let mut sums: Option<Tensor> = None;
    let mut counts = vec![0usize; k];
    let mut dim = 0;
    for r in ds.batch_ranges(64) {
        let b = ds.load_batch(r.clone(), pre, model.device)?;
        let e = model.embed(&b.x)?.to_kind(Kind::Float);
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
        dim = e.size()[1];
        if !bool::try_from(e.isfinite().all()).unwrap_or(false) {
            return Err(Error::model(
                &model.path,
                format!(
                    "forward returned NaN or infinite embeddings for support images of {}",
                    path.display()
                ),
                "check the model and the preprocessing (mean/std) in xaudit.toml",
            ));
        }
        let unit = &e
            / e.norm_scalaropt_dim(2, [1].as_slice(), true)
                .clamp_min(1e-12);
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
        let s = onehot.tr().matmul(&unit);
        sums = Some(match sums {
            Some(t) => t + s,
            None => s,
        });
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
    let sums = sums.expect("a support set with classes has images");
    let unit = &sums
        / sums
            .norm_scalaropt_dim(2, [1].as_slice(), true)
            .clamp_min(1e-12);
    Ok(References {
        unit,
        scale: 1.0 / temperature,
        temperature,
        names,
        dim,
        reference: Reference::Prototypes,
        source: path.display().to_string(),
        counts,
    })
}
