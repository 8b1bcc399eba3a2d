//! `xaudit.toml`: how images become model inputs, class names, the methods audited and their
//! parameters, per-audit overrides and accepted exceptions. Everything is checked when the
//! file loads, before any model work.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Resampling filter used when an image must be resized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Filter {
    Nearest,
    /// Bilinear (triangle) filter, antialiased when shrinking, like PIL's BILINEAR.
    Bilinear,
    Bicubic,
}

impl Filter {
    pub const ALL: [Filter; 3] = [Filter::Nearest, Filter::Bilinear, Filter::Bicubic];
}

/// Declared preprocessing: decode → channels → resize shorter side → centre crop → /scale → (x-mean)/std.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Channels the model consumes: 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Model input [height, width].
    pub size: [usize; 2],
    /// Shorter image side is resized to this before the centre crop; default: no resize
    /// when the image already has `size`, else the larger of `size`.
    #[serde(default)]
    pub resize: Option<usize>,
    #[serde(default = "default_filter")]
    pub filter: Filter,
    /// Per-channel mean in [0,1] pixel units (after dividing by 255).
    #[serde(default)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation in [0,1] pixel units.
    #[serde(default)]
    pub std: Option<Vec<f32>>,
    /// Largest image (width × height) decoded; larger declared sizes are refused before
    /// decoding (decompression bombs).
    #[serde(default = "default_max_pixels", rename = "max-pixels")]
    pub max_pixels: u64,
    /// Video models (`[model] kind = "video"`): frames per clip the model consumes. Each
    /// clip is sampled to this many frames, every `frame-stride`-th from the clip's centre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<usize>,
    /// Step between the sampled frames of a clip (1 = consecutive frames).
    #[serde(default = "default_frame_stride", rename = "frame-stride")]
    pub frame_stride: usize,
}

fn default_frame_stride() -> usize {
    1
}

/// 100 megapixels: far above any classifier input, far below what exhausts memory.
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

fn default_max_pixels() -> u64 {
    DEFAULT_MAX_PIXELS
}

fn default_filter() -> Filter {
    Filter::Bilinear
}

impl Preprocess {
    pub fn mean(&self) -> Vec<f32> {
        self.mean
            .clone()
            .unwrap_or_else(|| vec![0.0; self.channels])
    }
    pub fn std(&self) -> Vec<f32> {
        self.std.clone().unwrap_or_else(|| vec![1.0; self.channels])
    }

    /// The model-space input shape `[C, H, W]` every pipeline stage works on: the image, or
    /// for a video model the clip's contact sheet `[C, H, T·W]` (`crate::clip`).
    pub fn input_shape(&self) -> [i64; 3] {
        let t = self.frames.unwrap_or(1) as i64;
        [
            self.channels as i64,
            self.size[0] as i64,
            self.size[1] as i64 * t,
        ]
    }

    pub fn validate(&self, origin: &str) -> Result<()> {
        if self.frames == Some(0) || self.frame_stride == 0 {
            return Err(Error::config(
                origin,
                "preprocess.frames or frame-stride is 0",
                "set frames to the clip length the video model consumes (e.g. 16) and frame-stride >= 1",
            ));
        }
        if self.channels != 1 && self.channels != 3 {
            return Err(Error::config(
                origin,
                format!("preprocess.channels = {} is not supported", self.channels),
                "set channels = 1 (greyscale models) or 3 (RGB models)",
            ));
        }
        if self.size[0] == 0 || self.size[1] == 0 {
            return Err(Error::config(
                origin,
                "preprocess.size has a zero side",
                "set size = [height, width] of the model input, e.g. [224, 224]",
            ));
        }
        for (name, v) in [("mean", self.mean()), ("std", self.std())] {
            if v.len() != self.channels {
                return Err(Error::config(
                    origin,
                    format!(
                        "preprocess.{name} has {} values but channels = {}",
                        v.len(),
                        self.channels
                    ),
                    format!("give one {name} value per channel"),
                ));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(Error::config(
                    origin,
                    format!("preprocess.{name} contains a non-finite value"),
                    format!("give finite {name} values"),
                ));
            }
        }
        if self.std().iter().any(|s| *s <= 0.0) {
            return Err(Error::config(
                origin,
                "preprocess.std must be > 0",
                "use the positive per-channel std the model was trained with",
            ));
        }
        if self.resize == Some(0) {
            return Err(Error::config(
                origin,
                "preprocess.resize = 0",
                "omit resize or give the shorter-side length",
            ));
        }
        Ok(())
    }
}

impl Default for Preprocess {
    fn default() -> Self {
        // ImageNet convention, what most torchvision classifiers expect.
        Preprocess {
            channels: 3,
            size: [224, 224],
            resize: Some(256),
            filter: Filter::Bilinear,
            mean: Some(vec![0.485, 0.456, 0.406]),
            std: Some(vec![0.229, 0.224, 0.225]),
            max_pixels: DEFAULT_MAX_PIXELS,
            frames: None,
            frame_stride: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// Class names in logit order; optional.
    #[serde(default)]
    pub class_names: Option<Vec<String>>,
    /// A smooth surrogate of the model (ReLU replaced by softplus) for the attacks' gradients.
    #[serde(default)]
    pub surrogate: Option<PathBuf>,
    /// Independently trained copies of the model (same architecture and data, other seeds)
    /// for the run-to-run stability audit.
    #[serde(default)]
    pub replicas: Vec<PathBuf>,
    /// How ImageFolder class folders become class indices: `folder-index` (sorted position,
    /// torchvision's rule) or `folder-name` (the folder name is the class index). Default:
    /// by `class_names` when every folder is named there, else folder-index (with a note
    /// when folder names are integers that disagree with their positions).
    #[serde(default)]
    pub labels: Option<crate::data::LabelRule>,
    /// `classifier` (forward returns logits, the default) or `embedding` (forward returns
    /// embeddings, explained through their similarity to `[embedding]` references).
    #[serde(default)]
    pub kind: crate::embedding::ModelKind,
}

/// Per-audit overrides: threshold, metric and parameters (keys: audit code or name).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditOverride {
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default)]
    pub rationale: Option<String>,
    /// Share of images that must lie on the good side (quantile test).
    #[serde(default)]
    pub quantile: Option<f64>,
    /// `quantile` or `wilcoxon`.
    #[serde(default)]
    pub test: Option<crate::claim::TestChoice>,
    /// Report without gating (true), or make a suite's advisory audit gate (false).
    #[serde(default)]
    pub advisory: Option<bool>,
    /// Allowed regression against the baseline, in the metric's units (default: the
    /// `[baseline]` section's, else 0).
    #[serde(default)]
    pub max_regression: Option<f64>,
    #[serde(default)]
    pub params: toml::Table,
}

/// `[baseline]`: compare with a previous run's report.json and fail on a regression.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BaselineSection {
    /// The previous release's report.json (relative to the working directory).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Allowed regression of every audit, in its metric's units (default 0).
    #[serde(default)]
    pub max_regression: Option<f64>,
    /// Test of the per-image differences: `quantile` (exact sign test of the median, the
    /// default) or `wilcoxon` (signed-rank, pseudo-median).
    #[serde(default)]
    pub test: Option<crate::claim::TestChoice>,
}

/// An accepted exception: the audit still runs and is reported, but does not gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IgnoreEntry {
    /// Audit code or name.
    pub audit: String,
    /// Only this method (default: every method).
    #[serde(default)]
    pub method: Option<String>,
    /// Required: why the failure is accepted.
    pub reason: String,
    /// YYYY-MM-DD after which the ignore no longer applies.
    #[serde(default)]
    pub expires: Option<String>,
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    #[serde(default)]
    pub preprocess: Option<Preprocess>,
    #[serde(default)]
    pub model: ModelSection,
    /// References of an embedding model (`[model] kind = "embedding"`).
    #[serde(default)]
    pub embedding: crate::embedding::EmbeddingSection,
    /// Built-in suite name or suite file for `xaudit check`.
    #[serde(default)]
    pub suite: Option<String>,
    /// Images for `xaudit check` (folder, ImageFolder tree or CSV manifest).
    #[serde(default)]
    pub data: Option<PathBuf>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Methods audited (overrides the suite's list): names, or `[methods.NAME]` tables of
    /// parameters (see `crate::attribution::config`).
    #[serde(default)]
    pub methods: Option<crate::attribution::config::MethodsField>,
    /// `methods` after validation.
    #[serde(skip)]
    pub method_set: crate::attribution::config::MethodSet,
    /// Significance level of every test (Holm-adjusted across the run).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Fewer usable images than this gives INCONCLUSIVE.
    #[serde(default)]
    pub min_n: Option<usize>,
    /// Whether INCONCLUSIVE fails the gate (default true: an unproven audit never passes).
    #[serde(default)]
    pub fail_on_inconclusive: Option<bool>,
    /// Whether an audit that could not be evaluated (ERROR) makes the run exit 2 (default
    /// true). With false it is still reported, and the exit code follows the other audits.
    #[serde(default)]
    pub fail_on_error: Option<bool>,
    /// One input per model pass (bitwise-identical results whatever the batch sizes; slower).
    #[serde(default)]
    pub per_sample: Option<bool>,
    /// Report files written under the output folder.
    #[serde(default)]
    pub formats: Option<Vec<crate::output::Format>>,
    /// Output folder for `xaudit check` (default: none unless --out-dir).
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
    #[serde(default)]
    pub audits: std::collections::BTreeMap<String, AuditOverride>,
    #[serde(default)]
    pub ignore: Vec<IgnoreEntry>,
    #[serde(default)]
    pub baseline: BaselineSection,
    /// Where the configuration came from (for messages and provenance).
    #[serde(skip)]
    pub origin: Option<PathBuf>,
}

impl Config {
    /// Parses a configuration from text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config> {
        let mut cfg: Config = crate::tomlfile::parse_toml(
            text,
            origin,
            "see the configuration reference in README.md (section xaudit.toml)",
        )?;
        if let Some(m) = &cfg.methods {
            cfg.method_set = m.resolve(text, origin)?;
        }
        if let Some(n) = cfg.min_n {
            if n == 0 {
                return Err(Error::config(
                    origin,
                    "min-n = 0",
                    "give the fewest usable images a verdict needs (default 30)",
                ));
            }
        }
        if let Some(a) = cfg.alpha {
            if !(a > 0.0 && a < 1.0) {
                return Err(Error::config(
                    origin,
                    format!("alpha = {a} is not in (0, 1)"),
                    "use e.g. alpha = 0.05",
                ));
            }
        }
        let emb = &cfg.embedding;
        use crate::embedding::Reference;
        let view = emb.reference == Reference::View;
        let image = emb.reference == Reference::Image;
        let emb_set = emb.prototypes.is_some()
            || emb.temperature.is_some()
            || emb.view.is_some()
            || emb.images.is_some()
            || emb.reference.pairs();
        if emb.reference.pairs() && emb.prototypes.is_some() {
            return Err(Error::config(
                origin,
                "[embedding] prototypes is set with paired references (reference = \"view\" or \"image\")",
                "remove prototypes (pairs need no support set), or set reference = \"prototypes\"",
            ));
        }
        if !view && emb.view.is_some() {
            return Err(Error::config(
                origin,
                "[embedding.view] is set but reference is not \"view\"",
                "set reference = \"view\" under [embedding], or remove [embedding.view]",
            ));
        }
        if !image && emb.images.is_some() {
            return Err(Error::config(
                origin,
                "[embedding] images is set but reference is not \"image\"",
                "set reference = \"image\" under [embedding] to pair each image with a partner, or remove images",
            ));
        }
        if image && emb.images.is_none() {
            return Err(Error::config(
                origin,
                "[embedding] reference = \"image\" needs partner images, and images is not set",
                "set `images = \"FILE-or-DIR\"` under [embedding]: one image for all, or a folder holding each image's partner at the same relative path",
            ));
        }
        match cfg.model.kind {
            crate::embedding::ModelKind::Classifier if emb_set => {
                return Err(Error::config(
                    origin,
                    "[embedding] is set but [model] kind is \"classifier\"",
                    "set `kind = \"embedding\"` under [model] for a model whose forward returns embeddings, or remove [embedding]",
                ));
            }
            crate::embedding::ModelKind::Video
                if cfg.preprocess.as_ref().and_then(|p| p.frames).is_none() =>
            {
                return Err(Error::config(
                    origin,
                    "[model] kind = \"video\" but [preprocess] frames is not set",
                    "set `frames = 16` (the clip length the model consumes) under [preprocess]",
                ));
            }
            crate::embedding::ModelKind::Classifier | crate::embedding::ModelKind::Embedding
                if cfg.preprocess.as_ref().and_then(|p| p.frames).is_some() =>
            {
                return Err(Error::config(
                    origin,
                    "[preprocess] frames is set but [model] kind is not \"video\"",
                    "set `kind = \"video\"` under [model] for a model that takes clips [N,C,T,H,W], or remove frames",
                ));
            }
            crate::embedding::ModelKind::Embedding if cfg.model.class_names.is_some() => {
                return Err(Error::config(
                    origin,
                    "[model] class_names is set for an embedding model",
                    "remove it: an embedding model's classes are the class folders of [embedding] prototypes",
                ));
            }
            _ => {}
        }
        for ig in &cfg.ignore {
            if ig.reason.trim().is_empty() {
                return Err(Error::config(
                    origin,
                    format!("ignore of `{}` has an empty reason", ig.audit),
                    "say why the failure is accepted (reason = \"...\")",
                ));
            }
            if let Some(d) = &ig.expires {
                if chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_err() {
                    return Err(Error::config(
                        origin,
                        format!("ignore of `{}`: expires = \"{d}\" is not a date", ig.audit),
                        "use YYYY-MM-DD",
                    ));
                }
            }
        }
        if let Some(p) = &cfg.preprocess {
            p.validate(origin)?;
        }
        let regressions = cfg
            .audits
            .iter()
            .map(|(k, o)| (format!("[audits.{k}] max-regression"), o.max_regression))
            .chain([(
                "[baseline] max-regression".to_string(),
                cfg.baseline.max_regression,
            )]);
        for (what, m) in regressions {
            if let Some(m) = m {
                if !(m.is_finite() && m >= 0.0) {
                    return Err(Error::config(
                        origin,
                        format!("{what} = {m}"),
                        "give the allowed worsening in the metric's units, >= 0 (0: any significant worsening fails)",
                    ));
                }
            }
        }
        if let Some(names) = &cfg.model.class_names {
            if names.is_empty() {
                return Err(Error::config(
                    origin,
                    "model.class_names is empty",
                    "list one name per logit, or remove the key",
                ));
            }
        }
        Ok(cfg)
    }

    /// Loads `path`, or `./xaudit.toml`, or `[tool.xaudit]` of `./pyproject.toml`, else defaults.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from("xaudit.toml");
                if !p.exists() {
                    return Config::from_pyproject(Path::new("pyproject.toml"));
                }
                p
            }
        };
        let origin = path.display().to_string();
        let text = std::fs::read(&path).map_err(|e| {
            Error::config(
                &origin,
                format!("cannot read: {e}"),
                "pass an existing file with --config",
            )
        })?;
        let text = String::from_utf8(text).map_err(|_| {
            Error::config(
                &origin,
                "not UTF-8 text",
                "save the configuration as UTF-8 TOML",
            )
        })?;
        let mut cfg = if path.file_name().is_some_and(|n| n == "pyproject.toml") {
            Config::from_pyproject_text(&text, &origin)?
        } else {
            Config::parse(&text, &origin)?
        };
        cfg.origin = Some(path);
        Ok(cfg)
    }

    fn from_pyproject(path: &Path) -> Result<Config> {
        let Ok(text) = std::fs::read_to_string(path) else {
            return Ok(Config::default());
        };
        let mut cfg = Config::from_pyproject_text(&text, &path.display().to_string())?;
        if cfg.origin.is_some() {
            cfg.origin = Some(path.to_path_buf());
        }
        Ok(cfg)
    }

    /// `[tool.xaudit]` of a pyproject.toml (absent: defaults).
    fn from_pyproject_text(text: &str, origin: &str) -> Result<Config> {
        let doc: toml::Table = toml::from_str(text).map_err(|e| {
            Error::config(
                origin,
                e.message().to_string(),
                "fix the TOML syntax of pyproject.toml",
            )
        })?;
        let Some(t) = doc.get("tool").and_then(|t| t.get("xaudit")) else {
            return Ok(Config::default());
        };
        let inner = toml::to_string(t).unwrap_or_default();
        let mut cfg = Config::parse(&inner, &format!("{origin} [tool.xaudit]"))?;
        cfg.origin = Some(PathBuf::from(origin));
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_config() {
        let c = Config::parse(
            "[preprocess]\nchannels = 1\nsize = [28, 28]\nmean = [0.5]\nstd = [0.5]\n[model]\nclass_names = [\"a\",\"b\"]\n",
            "t",
        )
        .unwrap();
        let p = c.preprocess.unwrap();
        assert_eq!(p.size, [28, 28]);
        assert_eq!(p.mean(), vec![0.5]);
        assert_eq!(c.model.class_names.unwrap().len(), 2);
    }

    #[test]
    fn rejects_mismatched_mean() {
        let e = Config::parse(
            "[preprocess]\nchannels = 3\nsize = [8, 8]\nmean = [0.5]\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("mean has 1 values"), "{e}");
    }

    #[test]
    fn rejects_unknown_key() {
        let e = Config::parse(
            "[preprocess]\nchannels = 3\nsize = [8, 8]\nsizes = 3\n",
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("sizes"), "{e}");
    }
}
