//! `xaudit train l-cam MODEL --data DIR --variant img|fm --out FILE.safetensors`: trains the
//! L-CAM attention module with the classifier frozen (see `xaudit docs l-cam-img`).
use super::CommonArgs;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use tch::Tensor;
use xaudit::attribution::l_cam::{self, Training, Variant};
use xaudit::data::Dataset;

#[derive(Subcommand)]
pub enum TrainCommand {
    /// Train an L-CAM attention module for a model (one 1x1 convolution on its `features`).
    LCam(LCamArgs),
}

#[derive(Args)]
pub struct LCamArgs {
    /// TorchScript model that exports `features`/`head` (docs/model-contract.md).
    pub model: PathBuf,
    /// Training images (folder, ImageFolder tree or CSV); labels are the model's predictions.
    #[arg(long)]
    pub data: PathBuf,
    /// img: the masked image goes through the classifier; fm: the masked feature maps do.
    #[arg(long, value_parser = super::named(&Variant::ALL))]
    pub variant: Variant,
    /// Output file (safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Epochs (official code: 26).
    #[arg(long, default_value_t = 26)]
    pub epochs: usize,
    /// Images per step (official code: 64).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// SGD learning rate (official code: 1e-4, biases 2x; x0.95 per epoch for 12 epochs).
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Seed of the initialisation and the shuffling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(c: TrainCommand) -> Result<()> {
    let TrainCommand::LCam(a) = c;
    anyhow::ensure!(
        a.epochs >= 1 && a.batch_size >= 1 && a.lr > 0.0 && a.lr.is_finite(),
        "--epochs and --batch-size must be >= 1 and --lr > 0"
    );
    let (cfg, pre) = a.common.resolve()?;
    let device = xaudit::device::parse_device(&a.common.device)?;
    let data = Dataset::from_inputs(std::slice::from_ref(&a.data))?;
    let shape = pre.input_shape();
    let model = xaudit::embedding::load(&a.model, device, shape, &cfg, &pre, None)?;
    model.require_cam("l-cam")?;
    // The training set is held on the device once: L-CAM's own examples are small data sets
    // or samples of one; the frozen features are computed once too.
    let mut parts = Vec::new();
    for range in data.batch_ranges(64) {
        parts.push(data.load_batch(range, &pre, device)?.x);
    }
    let x = Tensor::cat(&parts, 0);
    let t = Training {
        variant: a.variant,
        epochs: a.epochs,
        batch_size: a.batch_size,
        learning_rate: a.lr,
        seed: a.seed,
    };
    eprintln!(
        "xaudit train l-cam: {} image(s), variant {}, {} epoch(s)",
        data.len(),
        a.variant.name(),
        a.epochs
    );
    let (w, b) = l_cam::train(&model, &x, &t, |epoch, loss| {
        eprintln!("epoch {epoch}/{}: loss {loss:.4}", t.epochs);
    })?;
    l_cam::save(&a.out, &w, &b, &model, &t)?;
    let (file, v) = (a.out.display(), a.variant.name());
    eprintln!(
        "wrote {file}\n  explain: --method l-cam-{v} --lcam {file}\n  check: [methods.l-cam-{v}] weights = \"{file}\" in xaudit.toml"
    );
    Ok(())
}
