//! `xaudit merge partial-*.json --out-dir reports`: joins the partial reports of a sharded
//! `check` and decides, exactly as a single run on the whole data set would.
use super::check::{emit, report_files};
use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use xaudit::check::{self, Plan};
use xaudit::config::Config;
use xaudit::report::{Format, ReportInputs};
use xaudit::suite::Suite;

#[derive(Args)]
pub struct MergeArgs {
    /// The partial reports of every shard (partial-I-of-N.json, written by
    /// `xaudit check ... --shard I/N --out-dir DIR`).
    #[arg(required = true, value_name = "PARTIAL_JSON")]
    pub partials: Vec<PathBuf>,
    /// Output on stdout.
    #[arg(long, value_parser = super::named(&Format::ALL), default_value = "table", env = "XAUDIT_FORMAT")]
    pub format: Format,
    /// Write the report files here (as `check --out-dir`).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Files to write under --out-dir (repeatable; overrides `formats` in xaudit.toml).
    #[arg(long = "write", value_parser = super::named(&Format::ALL))]
    pub write: Vec<Format>,
    /// A previous run's report.json to gate regressions against (default: the shards'
    /// --baseline, else `[baseline] path` in their configuration).
    #[arg(long, value_name = "REPORT_JSON")]
    pub baseline: Option<PathBuf>,
    /// Always exit 0 unless xaudit itself failed (default: as the shards were told).
    #[arg(long)]
    pub exit_zero: bool,
}

/// What a merge needs besides the partials' own contents.
pub(super) struct MergeOptions {
    pub partials: Vec<PathBuf>,
    pub out_dir: Option<PathBuf>,
    /// Empty: the configuration's `formats`, else the defaults.
    pub files: Vec<Format>,
    pub format: Format,
    pub baseline: Option<PathBuf>,
    pub exit_zero: bool,
}

pub fn run(a: MergeArgs) -> Result<i32> {
    merge_and_report(MergeOptions {
        partials: a.partials,
        out_dir: a.out_dir,
        files: a.write,
        format: a.format,
        baseline: a.baseline,
        exit_zero: a.exit_zero,
    })
}

/// Reads and joins the partials, rebuilds the run's plan from its suite and configuration
/// (which must be unchanged since the shards ran), then finish -> evaluate -> decide ->
/// report, as `check` does.
pub(super) fn merge_and_report(o: MergeOptions) -> Result<i32> {
    let started = chrono::Local::now();
    let parts = o
        .partials
        .iter()
        .map(|p| Ok((p.clone(), xaudit::shard::Partial::read(p)?)))
        .collect::<Result<Vec<_>>>()?;
    let merged = xaudit::shard::merge(parts)?;
    let inv = &merged.invocation;
    // The shards' configuration file, or none (defaults), whatever is in this folder.
    let cfg = match &inv.config {
        Some(p) => Config::load(Some(p))?,
        None => Config::default(),
    };
    let cfg_sha = match &inv.config {
        Some(p) => Some(xaudit::data::sha256_file(p)?),
        None => None,
    };
    anyhow::ensure!(
        cfg_sha == merged.run.config_sha256,
        "the configuration {} changed since the shards ran; merge with the configuration they used",
        inv.config
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    let suite = Suite::load(&inv.suite)?;
    anyhow::ensure!(
        suite.sha256 == merged.run.suite_sha256,
        "the suite {} changed since the shards ran; merge with the suite they used",
        inv.suite
    );
    let methods = inv
        .methods
        .iter()
        .map(|m| Ok(xaudit::suite::method(m, "the partial report")?))
        .collect::<Result<Vec<_>>>()?;
    let today = started.format("%Y-%m-%d").to_string();
    let mut plan = Plan::new(&suite, &cfg, &methods, merged.run.seed, &today)?;
    if let Some(b) = o
        .baseline
        .as_ref()
        .or(inv.baseline.as_ref())
        .or(cfg.baseline.path.as_ref())
    {
        plan.set_baseline(b, &cfg)?;
    }
    let warnings = check::preflight_warnings(&merged.preflight);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let mut measured = merged.measured;
    check::finish(&plan, &mut measured);
    let images = merged.images;
    let evaluated = check::evaluate(&images, &plan, measured);
    let outcome = check::decide(evaluated, &plan, images);
    let exit_code = if (o.exit_zero || inv.exit_zero) && outcome.exit_code == 1 {
        0
    } else {
        outcome.exit_code
    };
    let mut provenance = merged.provenance;
    provenance.command_line = std::env::args().collect();
    provenance.data_sha256 = merged.run.data_sha256.clone();
    provenance.finished = chrono::Local::now().to_rfc3339();
    provenance.device = format!("{} ({} shards)", provenance.device, merged.shards);
    let report = check::report(
        &plan,
        outcome,
        ReportInputs {
            model: merged.model,
            provenance,
            exit_code,
            warnings,
        },
    );
    let out_dir = o.out_dir.or(cfg.out_dir.clone());
    let files = report_files(&o.files, &cfg);
    emit(&report, out_dir.as_deref(), &files, o.format)
        .context("cannot write the merged report")?;
    Ok(exit_code)
}
