//! `xaudit explain MODEL INPUT... --method M --out DIR`.
use super::CommonArgs;
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use xaudit::attribution::{
    grad_cam, grad_cam_plus_plus, integrated_gradients, occlusion, rise, score_cam, sidu,
    smoothgrad, sobol, Aggregate, MethodKind, MethodSpec, Normalize, Score,
};
use xaudit::data::Dataset;
use xaudit::explain::{Request, Target};
use xaudit::model::Model;

#[derive(Args)]
pub struct ExplainArgs {
    /// TorchScript model file (see docs/model-contract.md).
    pub model: PathBuf,
    /// Images, folders (flat or ImageFolder) or CSV manifests (`path,label`).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Attribution method (`xaudit methods` lists them).
    #[arg(long, value_enum, default_value = "saliency")]
    pub method: MethodKind,
    /// Class to explain: predicted, label, or a class index.
    #[arg(long, default_value = "predicted")]
    pub target: Target,
    /// Explained score (default: the method's reference choice).
    #[arg(long, value_enum)]
    pub score: Option<Score>,
    /// Channel aggregation (default: the method's reference choice).
    #[arg(long, value_enum)]
    pub aggregate: Option<Aggregate>,
    /// Normalisation applied to the written maps.
    #[arg(long, value_enum, default_value = "none")]
    pub normalize: Normalize,
    /// Output folder.
    #[arg(long, default_value = "reports/explain")]
    pub out: PathBuf,
    /// Images decoded and explained together.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Most perturbed samples per forward pass (IG steps, SmoothGrad noise, masks, windows).
    /// Default: auto, from the input size (256 up to ~64k values per image, then fewer so
    /// one pass holds about 16M input values); `xaudit throughput` shows what this machine likes.
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

    /// Integrated Gradients: number of steps.
    #[arg(long, default_value_t = 50, help_heading = "Integrated Gradients")]
    pub ig_steps: usize,
    /// Integrated Gradients: quadrature rule.
    #[arg(
        long,
        value_enum,
        default_value = "trapezoid",
        help_heading = "Integrated Gradients"
    )]
    pub ig_rule: integrated_gradients::Rule,
    /// Integrated Gradients: baseline value in model space.
    #[arg(
        long,
        default_value_t = 0.0,
        allow_hyphen_values = true,
        help_heading = "Integrated Gradients"
    )]
    pub ig_baseline: f64,

    /// SmoothGrad: number of noisy samples.
    #[arg(long, default_value_t = 50, help_heading = "SmoothGrad")]
    pub sg_samples: usize,
    /// SmoothGrad: noise σ as a fraction of the image's value range.
    #[arg(long, default_value_t = 0.15, help_heading = "SmoothGrad")]
    pub sg_noise: f64,
    /// SmoothGrad: average squared gradients (SmoothGrad²).
    #[arg(long, help_heading = "SmoothGrad")]
    pub sg_magnitude: bool,

    /// Grad-CAM: keep negative values (no ReLU).
    #[arg(long, help_heading = "Grad-CAM")]
    pub cam_no_relu: bool,
    /// Grad-CAM, Grad-CAM++, Score-CAM: upsampling to the input size.
    #[arg(
        long,
        value_enum,
        default_value = "bilinear",
        help_heading = "Grad-CAM"
    )]
    pub cam_upsample: grad_cam::Upsample,
    /// Grad-CAM++: the paper's α (pytorch-grad-cam) or the authors' code (α normalised per channel).
    #[arg(long, value_enum, default_value = "paper", help_heading = "Grad-CAM++")]
    pub campp_variant: grad_cam_plus_plus::Variant,
    /// Score-CAM: pytorch-grad-cam's softmax across channels, or the official code's raw scores.
    #[arg(
        long,
        value_enum,
        default_value = "channel-softmax",
        help_heading = "Score-CAM"
    )]
    pub score_cam_mode: score_cam::Mode,

    /// SIDU: activation threshold that turns a feature channel into a mask.
    #[arg(
        long,
        default_value_t = 0.1,
        allow_hyphen_values = true,
        help_heading = "SIDU"
    )]
    pub sidu_threshold: f64,
    /// SIDU: width σ of the similarity kernel on score differences.
    #[arg(long, default_value_t = 0.25, help_heading = "SIDU")]
    pub sidu_sigma: f64,
    /// SIDU: do not min-max normalise the uniqueness (the paper; the code normalises).
    #[arg(long, help_heading = "SIDU")]
    pub sidu_raw_uniqueness: bool,

    /// Sobol: side of the grid of perturbed cells.
    #[arg(long, default_value_t = 8, help_heading = "Sobol")]
    pub sobol_grid: usize,
    /// Sobol: quasi-Monte Carlo design points (a power of two); cost = designs·(grid²+2) passes.
    #[arg(long, default_value_t = 32, help_heading = "Sobol")]
    pub sobol_designs: usize,

    /// Occlusion: square window side in pixels.
    #[arg(long, default_value_t = 15, help_heading = "Occlusion")]
    pub occ_window: usize,
    /// Occlusion: stride in pixels.
    #[arg(long, default_value_t = 8, help_heading = "Occlusion")]
    pub occ_stride: usize,
    /// Occlusion: value written into the window, model space.
    #[arg(
        long,
        default_value_t = 0.0,
        allow_hyphen_values = true,
        help_heading = "Occlusion"
    )]
    pub occ_baseline: f64,

    /// RISE: number of masks.
    #[arg(long, default_value_t = 4000, help_heading = "RISE")]
    pub rise_masks: usize,
    /// RISE: grid side s.
    #[arg(long, default_value_t = 7, help_heading = "RISE")]
    pub rise_grid: usize,
    /// RISE: probability that a grid cell is kept.
    #[arg(long, default_value_t = 0.5, help_heading = "RISE")]
    pub rise_p: f64,
    /// RISE: normalisation of the weighted mask sum.
    #[arg(long, value_enum, default_value = "official", help_heading = "RISE")]
    pub rise_norm: rise::Norm,

    #[command(flatten)]
    pub common: CommonArgs,
}

impl ExplainArgs {
    fn spec(&self) -> Result<MethodSpec> {
        Ok(match self.method {
            MethodKind::IntegratedGradients => {
                anyhow::ensure!(self.ig_steps >= 1, "--ig-steps must be at least 1");
                MethodSpec::IntegratedGradients(integrated_gradients::Params {
                    steps: self.ig_steps,
                    rule: self.ig_rule,
                    baseline: self.ig_baseline,
                })
            }
            MethodKind::Smoothgrad => {
                anyhow::ensure!(self.sg_samples >= 1, "--sg-samples must be at least 1");
                anyhow::ensure!(
                    self.sg_noise >= 0.0 && self.sg_noise.is_finite(),
                    "--sg-noise must be >= 0"
                );
                MethodSpec::Smoothgrad(smoothgrad::Params {
                    samples: self.sg_samples,
                    noise_level: self.sg_noise,
                    magnitude: self.sg_magnitude,
                })
            }
            MethodKind::GradCam => MethodSpec::GradCam(grad_cam::Params {
                relu: !self.cam_no_relu,
                upsample: self.cam_upsample,
            }),
            MethodKind::GradCamPlusPlus => {
                MethodSpec::GradCamPlusPlus(grad_cam_plus_plus::Params {
                    variant: self.campp_variant,
                    upsample: self.cam_upsample,
                })
            }
            MethodKind::ScoreCam => MethodSpec::ScoreCam(score_cam::Params {
                mode: self.score_cam_mode,
                upsample: self.cam_upsample,
            }),
            MethodKind::Sobol => {
                let p = sobol::Params {
                    grid: self.sobol_grid,
                    designs: self.sobol_designs,
                };
                if let Err(why) = p.check() {
                    anyhow::bail!("--sobol-grid/--sobol-designs: {why}");
                }
                MethodSpec::Sobol(p)
            }
            MethodKind::Sidu => {
                anyhow::ensure!(
                    self.sidu_threshold.is_finite(),
                    "--sidu-threshold must be finite"
                );
                anyhow::ensure!(
                    self.sidu_sigma.is_finite() && self.sidu_sigma > 0.0,
                    "--sidu-sigma must be > 0"
                );
                MethodSpec::Sidu(sidu::Params {
                    threshold: self.sidu_threshold,
                    sigma: self.sidu_sigma,
                    normalize_uniqueness: !self.sidu_raw_uniqueness,
                })
            }
            MethodKind::Occlusion => {
                anyhow::ensure!(
                    self.occ_window >= 1 && self.occ_stride >= 1,
                    "--occ-window and --occ-stride must be at least 1"
                );
                MethodSpec::Occlusion(occlusion::Params {
                    window: self.occ_window,
                    stride: self.occ_stride,
                    baseline: self.occ_baseline,
                })
            }
            MethodKind::Rise => {
                anyhow::ensure!(
                    self.rise_masks >= 1 && self.rise_grid >= 1,
                    "--rise-masks and --rise-grid must be at least 1"
                );
                anyhow::ensure!(
                    self.rise_p > 0.0 && self.rise_p <= 1.0,
                    "--rise-p must be in (0, 1]"
                );
                MethodSpec::Rise(rise::Params {
                    masks: self.rise_masks,
                    grid: self.rise_grid,
                    p: self.rise_p,
                    norm: self.rise_norm,
                })
            }
            k => MethodSpec::with_defaults(k),
        })
    }
}

pub fn run(a: ExplainArgs) -> Result<()> {
    let (cfg, pre) = a.common.resolve()?;
    let method = a.spec()?;
    let device = xaudit::device::parse_device(&a.common.device)?;
    let data = Dataset::from_inputs(&a.inputs)?;
    let shape = [pre.channels as i64, pre.size[0] as i64, pre.size[1] as i64];
    let model = Model::load(&a.model, device, shape)?;
    if method.kind().needs_cam() {
        model.require_cam(method.kind().name())?;
    }
    let class_names = cfg.model.class_names.clone().or_else(|| {
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
        method,
        target: a.target,
        score: a.score.unwrap_or(kind.default_score()),
        aggregate: a.aggregate.unwrap_or(kind.default_aggregate()),
        normalize: a.normalize,
        batch_size: a.batch_size.max(1),
        internal_batch: a
            .internal_batch_size
            .unwrap_or_else(|| xaudit::throughput::auto_batch(shape))
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
    let summary = xaudit::explain::run(&model, &data, &pre, class_names.as_deref(), &req, |r| {
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
    })?;
    eprintln!(
        "wrote {} map(s) and overlays to {}",
        summary.images.len(),
        a.out.display()
    );
    Ok(())
}
