//! Sub-commands. Each file owns one; this module holds the shared flags.

/// println! that ignores a closed stdout (`| head`) instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

mod calibrate;
mod check;
mod compare;
mod docs;
mod doctor;
mod explain;
mod list;
mod merge;
mod methods;
mod replay;
mod report;
mod throughput;
mod train;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use xaudit::config::{Config, Filter, Preprocess};

#[derive(Parser)]
#[command(
    name = "xaudit",
    version,
    about = "Audit the robustness of saliency explanations of a TorchScript image classifier"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Compute attribution maps (.npy + PNG overlay per image).
    Explain(explain::ExplainArgs),
    /// Report versions, devices and threads; check a model against the contract.
    Doctor(doctor::DoctorArgs),
    /// List attribution methods with their defaults.
    Methods,
    /// Run an audit suite on a model and exit with the gate (0 pass, 1 fail, 2 error).
    Check(Box<check::CheckArgs>),
    /// Write a suite whose thresholds sit between an accepted model and the model-blind controls.
    Calibrate(Box<calibrate::CalibrateArgs>),
    /// List audits, suites and methods.
    List,
    /// Print an audit's documentation and parameters.
    Docs(docs::DocsArgs),
    /// Compare runs (models or methods on the same images): per audit the paired effect, its
    /// bound and the significantly better run, then a ranking.
    Compare(compare::CompareArgs),
    /// Join the partial reports of a sharded `check --shard I/N` run and decide, as one run.
    Merge(merge::MergeArgs),
    /// Re-render a stored report.json in another format.
    Report(report::ReportArgs),
    /// Print the JSON Schema of report.json.
    Schema,
    /// Re-run one fuzz counterexample from a report exactly.
    Replay(replay::ReplayArgs),
    /// Measure the model's own forward and forward+backward throughput per batch size.
    Throughput(throughput::ThroughputArgs),
    /// Train a learned explainer (L-CAM) for a model.
    #[command(subcommand)]
    Train(train::TrainCommand),
}

/// Runs a command; the value is the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Explain(a) => explain::run(a).map(|_| 0),
        Command::Doctor(a) => doctor::run(a).map(|_| 0),
        Command::Methods => methods::run().map(|_| 0),
        Command::Train(c) => train::run(c).map(|_| 0),
        Command::Check(a) => check::run(*a),
        Command::Calibrate(a) => calibrate::run(*a),
        Command::List => list::run().map(|_| 0),
        Command::Docs(a) => docs::run(a).map(|_| 0),
        Command::Report(a) => report::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Merge(a) => merge::run(a),
        Command::Replay(a) => replay::run(a),
        Command::Throughput(a) => throughput::run(a).map(|_| 0),
        Command::Schema => {
            outln!("{}", xaudit::report::schema().trim_end());
            Ok(0)
        }
    }
}

/// Flags shared by every command that loads a model.
#[derive(Args, Clone)]
pub struct CommonArgs {
    /// Configuration file (default: ./xaudit.toml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Intra-op CPU threads for libtorch (default: libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Model input channels (overrides [preprocess] channels).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Model input size HxW or N (overrides [preprocess] size).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<[usize; 2]>,
    /// Resize the shorter image side to this before the centre crop.
    #[arg(long)]
    pub resize: Option<usize>,
    /// Per-channel mean in [0,1] units, comma-separated.
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel std in [0,1] units, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// Resampling filter for resizing.
    #[arg(long, value_parser = named(&Filter::ALL))]
    pub filter: Option<Filter>,
}

/// A clap parser for a library enum by its serde (kebab-case) names, so the library types
/// carry no clap derives: `--help` lists the names, and a typo gets clap's suggestion.
pub fn named<T>(all: &[T]) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let names: Vec<clap::builder::PossibleValue> = all
        .iter()
        .filter_map(|v| match serde_json::to_value(v) {
            Ok(serde_json::Value::String(s)) => Some(clap::builder::PossibleValue::new(s)),
            _ => None,
        })
        .collect();
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(names).try_map(|s: String| {
        serde_json::from_value::<T>(serde_json::Value::String(s.clone()))
            .map_err(|e| format!("{s}: {e}"))
    })
}

fn parse_size(s: &str) -> std::result::Result<[usize; 2], String> {
    let parts: Vec<&str> = s.split(['x', 'X', ',']).collect();
    let nums: Vec<usize> = parts
        .iter()
        .map(|p| p.trim().parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("`{s}`: use HxW (e.g. 224x224) or N"))?;
    match nums.as_slice() {
        [n] => Ok([*n, *n]),
        [h, w] => Ok([*h, *w]),
        _ => Err(format!("`{s}`: use HxW (e.g. 224x224) or N")),
    }
}

impl CommonArgs {
    /// Configuration file merged with command-line overrides, validated.
    pub fn resolve(&self) -> Result<(Config, Preprocess)> {
        // Thread policy: libtorch's intra-op pool does the model passes; rayon (image decoding,
        // bootstrap) runs between them on the same thread, never concurrently, so both pools
        // get the same size and the cores are never oversubscribed. Default: libtorch's choice
        // (the physical cores).
        if let Some(n) = self.threads {
            anyhow::ensure!(n >= 1, "--threads must be at least 1");
            // Must precede any libtorch work (PyTorch's own rule).
            tch::set_num_threads(n);
        }
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(tch::get_num_threads().max(1) as usize)
            .build_global();
        let cfg = Config::load(self.config.as_deref())?;
        let mut p = cfg.preprocess.clone().unwrap_or_default();
        let any_cli = self.channels.is_some() || self.size.is_some();
        if cfg.preprocess.is_none() && any_cli {
            // Flags describe the model from scratch: no ImageNet normalisation unless asked.
            p.resize = None;
            p.mean = None;
            p.std = None;
        }
        if let Some(c) = self.channels {
            p.channels = c;
        }
        if let Some(s) = self.size {
            p.size = s;
        }
        if self.resize.is_some() {
            p.resize = self.resize;
        }
        if self.mean.is_some() {
            p.mean = self.mean.clone();
        }
        if self.std.is_some() {
            p.std = self.std.clone();
        }
        if let Some(f) = self.filter {
            p.filter = f;
        }
        p.validate("command line / config")
            .context("invalid preprocessing")?;
        Ok((cfg, p))
    }
}
