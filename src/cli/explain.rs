//! `xaudit explain MODEL INPUT... --method M --out DIR`.
use super::CommonArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use xaudit::attribution::{Aggregate, Method, MethodKind, Normalize, Score};
use xaudit::data::Dataset;
use xaudit::explain::{Request, Target};

#[derive(Args)]
pub struct ExplainArgs {
    /// TorchScript model file (see docs/model-contract.md).
    pub model: PathBuf,
    /// Images, folders (flat or ImageFolder) or CSV manifests (`path,label`).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Attribution method (`xaudit methods` lists them).
    #[arg(long, value_parser = super::named(MethodKind::ALL), default_value = "saliency")]
    pub method: MethodKind,
    /// Class to explain: predicted, label, or a class index (default: predicted; with
    /// `[embedding] reference = "view"`, label: each image's own second view).
    #[arg(long)]
    pub target: Option<Target>,
    /// Explained score (default: the method's reference choice).
    #[arg(long, value_parser = super::named(&Score::ALL))]
    pub score: Option<Score>,
    /// Channel aggregation (default: the method's reference choice).
    #[arg(long, value_parser = super::named(&Aggregate::ALL))]
    pub aggregate: Option<Aggregate>,
    /// Normalisation applied to the written maps.
    #[arg(long, value_parser = super::named(&Normalize::ALL), default_value = "none")]
    pub normalize: Normalize,
    /// Output folder.
    #[arg(long, default_value = "reports/explain")]
    pub out: PathBuf,
    /// Images decoded and explained together.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Most perturbed samples per forward pass (IG steps, SmoothGrad noise, masks, windows).
    /// Default: measured as for `check` (the smallest power of two within 5% of the fastest
    /// forward+backward rate up to the memory bound; probed once per model, device, input
    /// shape and threads, then cached under ~/.cache/xaudit).
    #[arg(long)]
    pub internal_batch_size: Option<usize>,
    /// Seed of every random draw.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write the unaggregated [C,H,W] attribution as <name>.raw.npy.
    #[arg(long)]
    pub raw: bool,
    /// Shorter side of the PNG overlays in pixels (small inputs are enlarged).
    #[arg(long, default_value_t = 224)]
    pub png_size: u32,

    /// A method parameter as KEY=VALUE (repeatable), e.g. `--param steps=64 --param
    /// rule=gauss-legendre`: the keys of a `[methods.NAME]` table (`xaudit methods` lists
    /// them with their defaults), over those of the --config file, checked the same way.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// L-CAM: the trained module (`xaudit train l-cam`); the same as --param weights=FILE.
    #[arg(long, value_name = "FILE")]
    pub lcam: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl ExplainArgs {
    /// The method as `check` would audit it: reference defaults, the config file's
    /// `[methods.NAME]` table, then `--param`, `--score` and `--aggregate`.
    fn method(&self, cfg: &xaudit::config::Config) -> Result<Method> {
        let kind = self.method;
        let mut opts = cfg.method_set.options_of(kind).cloned().unwrap_or_default();
        for kv in &self.params {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("--param {kv}: expected KEY=VALUE\n  fix: e.g. --param steps=64")
            })?;
            opts.set(kind, k.trim(), param_value(v.trim()))
                .map_err(|(what, fix)| anyhow::anyhow!("--param {kv}: {what}\n  fix: {fix}"))?;
        }
        if let Some(f) = &self.lcam {
            anyhow::ensure!(
                matches!(kind, MethodKind::LCamImg | MethodKind::LCamFm),
                "--lcam is for --method l-cam-img or l-cam-fm (got {})",
                kind.name()
            );
            opts.set(
                kind,
                "weights",
                toml::Value::String(f.display().to_string()),
            )
            .map_err(|(what, fix)| anyhow::anyhow!("--lcam: {what}\n  fix: {fix}"))?;
        }
        let mut m = Method::defaults(kind);
        opts.apply(&mut m);
        if let Some(s) = self.score {
            m.score = s;
        }
        if let Some(a) = self.aggregate {
            m.aggregate = a;
        }
        Ok(m)
    }
}

/// A `--param` value as TOML (numbers, booleans, quoted strings), else a bare string
/// (`rule=gauss-legendre`).
fn param_value(v: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {v}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_string()))
}

pub fn run(a: ExplainArgs) -> Result<()> {
    let (cfg, pre) = a.common.resolve()?;
    let method = a.method(&cfg)?;
    let device = xaudit::device::parse_device(&a.common.device)?;
    let mut data = Dataset::open(&a.inputs, &pre)?;
    let shape = pre.input_shape();
    let views = xaudit::embedding::uses_pairs(&cfg);
    if views {
        xaudit::embedding::label_by_position(&mut data);
    }
    // View draws are keyed by the path relative to the one input folder (or file's folder).
    let root = match a.inputs.as_slice() {
        [one] => one.clone(),
        _ => PathBuf::new(),
    };
    let run_images = xaudit::embedding::RunImages {
        data: &data,
        root: &root,
        seed: a.seed,
    };
    let model = xaudit::embedding::load(&a.model, device, shape, &cfg, &pre, Some(&run_images))?;
    // The other side of each pair: the same encoder scoring views against clean images.
    let other = match model.embedding.as_ref().and_then(|r| r.swapped()) {
        Some(r) => Some(xaudit::model::Model::load(&a.model, device, shape)?.with_references(r)),
        None => None,
    };
    let pairs = other.as_ref().map(|o| xaudit::explain::Pairs {
        other: o,
        augment: (cfg.embedding.reference == xaudit::embedding::Reference::View)
            .then(|| cfg.embedding.view.clone().unwrap_or_default()),
        config: &cfg,
        run: xaudit::embedding::RunImages {
            data: &data,
            root: &root,
            seed: a.seed,
        },
    });
    if method.kind().needs_cam() {
        model.require_cam(method.kind().name())?;
    }
    let reference_names = model.embedding.as_ref().map(|r| r.names.clone());
    let class_names = reference_names
        .or(xaudit::embedding::class_names(&cfg)?)
        .or_else(|| {
            data.folder_classes
                .clone()
                .filter(|c| c.len() as i64 == model.num_classes)
        });
    if let Some(n) = &cfg.model.class_names {
        anyhow::ensure!(
            n.len() as i64 == model.num_classes,
            "config {}: model.class_names lists {} names but the model has {} outputs\n  fix: give one name per logit",
            cfg.origin.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            n.len(),
            model.num_classes
        );
    }
    let kind = method.kind();
    let req = Request {
        method: method.spec.clone(),
        target: a.target.unwrap_or(if views {
            Target::Label
        } else {
            Target::Predicted
        }),
        score: method.score,
        aggregate: method.aggregate,
        normalize: a.normalize,
        batch_size: a.batch_size.max(1),
        internal_batch: super::check::internal_batch(
            a.internal_batch_size,
            &model,
            &super::check::sha256_of(&a.model)?,
        )?
        .size
        .max(1),
        seed: a.seed,
        out_dir: a.out.clone(),
        write_raw: a.raw,
        png_min_side: a.png_size,
    };
    eprintln!(
        "xaudit explain: {} image(s), method {}, score {:?}, device {}",
        data.len(),
        kind.name(),
        req.score,
        xaudit::device::describe(device)
    );
    let summary = xaudit::explain::run(
        &model,
        &data,
        &pre,
        class_names.as_deref(),
        &req,
        pairs.as_ref(),
        |r| {
            let diag: String = r
                .diagnostics
                .iter()
                .map(|(k, v)| format!("  {k}={v:.2e}"))
                .collect();
            // A closed pipe (`| head`) must not abort the run: the files are the product.
            outln!(
                "{}  predicted={} p={:.4}  target={}{}",
                r.path.display(),
                r.predicted_name,
                r.probability,
                r.target_name,
                diag
            );
        },
    )?;
    eprintln!(
        "wrote {} map(s) and overlays to {}",
        summary.images.len(),
        a.out.display()
    );
    Ok(())
}
