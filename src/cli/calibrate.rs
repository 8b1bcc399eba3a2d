//! `xaudit calibrate MODEL --data DIR`: writes a suite whose thresholds sit between an
//! accepted reference model and the model-blind controls (see `xaudit::calibrate`).
use super::check::{progress_bar, sha256_of, Inputs, RunArgs};
use super::CommonArgs;
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use xaudit::audit::RunCtx;
use xaudit::calibrate::{self, Context as Facts};
use xaudit::suite::Suite;

#[derive(Args)]
pub struct CalibrateArgs {
    /// The run: MODEL is the accepted reference model (e.g. the release in production),
    /// `--method` narrows the methods to calibrate.
    #[command(flatten)]
    pub run: RunArgs,
    /// Where to write the calibrated suite.
    #[arg(long, default_value = "xaudit-calibrated.toml")]
    pub out: PathBuf,
    /// No progress bars.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(a: CalibrateArgs) -> Result<i32> {
    let (cfg, pre) = a.common.resolve()?;
    let (suite, seed) = a.run.suite_and_seed(&cfg)?;
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let plan = calibrate::plan(&suite, &cfg, &a.run.methods, seed, &today)?;
    let Inputs { data, model, .. } = a.run.inputs(&cfg, &a.common.device, &pre)?;
    let surrogate = a.run.surrogate(&cfg, &model, model.input_shape)?;
    let bar = progress_bar(a.no_progress);
    let tick = |n: usize| bar.inc(n as u64);
    let auto = xaudit::throughput::auto_batch(model.input_shape);
    let internal = super::check::internal_batch(None, &model, &sha256_of(&a.run.model)?)?.size;
    let mut ctx = RunCtx::new(&model, &data, &pre, seed, auto, internal, &tick);
    ctx.surrogate = surrogate.as_ref();
    let outcome = xaudit::check::run(&ctx, &plan, |g, m| {
        bar.reset();
        bar.set_length(data.len() as u64);
        bar.set_message(format!("{} {}", g.entry.doc.name, m.name()));
    })?;
    bar.finish_and_clear();
    let facts = Facts {
        model: a.run.model.display().to_string(),
        model_sha256: sha256_of(&a.run.model)?,
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
