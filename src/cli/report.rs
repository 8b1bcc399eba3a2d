//! `xaudit report report.json --format FMT`: re-render a stored report without re-running.
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use xaudit::report::{self, Format};

#[derive(Args)]
pub struct ReportArgs {
    /// A report.json written by `xaudit check`.
    pub report: PathBuf,
    /// Output on stdout.
    #[arg(long, value_parser = super::named(&Format::ALL), default_value = "table")]
    pub format: Format,
    /// Also write these files (repeatable) under --out-dir.
    #[arg(long = "write", value_parser = super::named(&Format::ALL))]
    pub write: Vec<Format>,
    /// Folder for --write (default: the report's folder).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

pub fn run(a: ReportArgs) -> Result<i32> {
    let r = report::read(&a.report)?;
    if !a.write.is_empty() {
        let dir = a
            .out_dir
            .clone()
            .or_else(|| a.report.parent().map(|p| p.to_path_buf()))
            .unwrap_or_else(|| PathBuf::from("."));
        report::write_all(&dir, &r, &a.write)?;
    }
    outln!("{}", a.format.render(&r).trim_end());
    Ok(0)
}
