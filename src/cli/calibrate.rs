//! `xaudit calibrate MODEL --data DIR`: writes a suite whose thresholds sit between an
//! accepted reference model and the model-blind controls (see `xaudit::calibrate`).
use super::check::{load_inputs, progress_bar, sha256_of, Inputs};
use super::CommonArgs;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use xaudit::attribution::MethodKind;
use xaudit::audit::RunCtx;
use xaudit::calibrate::{self, Context as Facts};
use xaudit::suite::Suite;

#[derive(Args)]
pub struct CalibrateArgs {
    /// The accepted reference model (TorchScript), e.g. the release in production.
    pub model: PathBuf,
    /// Suite to calibrate: built-in name or suite file (default: `suite` in xaudit.toml, else
    /// robustness).
    #[arg(long)]
    pub suite: Option<String>,
    /// Images: folder, ImageFolder tree or CSV manifest (default: `data` in xaudit.toml).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Calibrate for these methods only (repeatable; default: the suite's).
    #[arg(long = "method", value_enum)]
    pub methods: Vec<MethodKind>,
    /// Where to write the calibrated suite.
    #[arg(long, default_value = "xaudit-calibrated.toml")]
    pub out: PathBuf,
    /// Seed of every random draw.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use at most the first N images.
    #[arg(long)]
    pub max_images: Option<usize>,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(a: CalibrateArgs) -> Result<i32> {
    let (cfg, pre) = a.common.resolve()?;
    let suite_key = a
        .suite
        .clone()
        .or(cfg.suite.clone())
        .unwrap_or_else(|| "robustness".into());
    let suite = Suite::load(&suite_key)?;
    let seed = a.seed.or(cfg.seed).unwrap_or(0);
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let plan = calibrate::plan(&suite, &cfg, &a.methods, seed, &today)?;
    let Inputs { data, model, .. } = load_inputs(
        &a.model,
        a.data.as_ref(),
        &cfg,
        a.max_images,
        &a.common.device,
        &pre,
    )?;
    let bar = progress_bar(a.no_progress);
    let tick = |n: usize| bar.inc(n as u64);
    let auto = xaudit::throughput::auto_batch(model.input_shape);
    let ctx = RunCtx::new(&model, &data, &pre, seed, auto, auto, &tick);
    let outcome = xaudit::check::run(&ctx, &plan, |g, m| {
        bar.reset();
        bar.set_length(data.len() as u64);
        bar.set_message(format!("{} {}", g.entry.doc.name, m.name()));
    })?;
    bar.finish_and_clear();
    let facts = Facts {
        model: a.model.display().to_string(),
        model_sha256: sha256_of(&a.model)?,
        images: data.len(),
        date: today,
        suite: suite.name.clone(),
    };
    let entries = calibrate::thresholds(&plan, &outcome, &facts);
    let text = calibrate::suite_toml(&plan, &entries, &facts);
    // The file must load as a suite before it replaces anything.
    let dir = a
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        a.out
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("calibrated.toml")
    ));
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    if let Err(e) = Suite::load(&tmp.display().to_string()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(anyhow::anyhow!(
            "the calibrated suite does not load (a bug, please report it): {e}"
        ));
    }
    std::fs::rename(&tmp, &a.out).with_context(|| format!("cannot write {}", a.out.display()))?;
    for e in &entries {
        let ctl: Vec<String> = e
            .controls
            .iter()
            .map(|(n, v)| format!("{n} {}", xaudit::report::fmt::num(Some(*v))))
            .collect();
        outln!(
            "{:<26} {:<20} {} {} (was {}): reference {}, controls {}",
            format!("{} {}", e.code, e.name),
            e.method,
            e.direction.symbol(),
            xaudit::report::fmt::num(Some(e.threshold)),
            e.previous,
            xaudit::report::fmt::num(Some(e.reference)),
            ctl.join(", ")
        );
    }
    outln!(
        "wrote {} ({} calibrated thresholds)",
        a.out.display(),
        entries.len()
    );
    Ok(0)
}
