//! `xaudit compare A.json B.json [C.json ...]`: runs side by side, per audit the paired
//! effect, its bound and the significantly better run, then a ranking.
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use xaudit::claim::TestChoice;
use xaudit::compare;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    Table,
    Json,
    Markdown,
    Html,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareTest {
    /// Exact sign test of the median per-image difference (distribution-free).
    Quantile,
    /// Wilcoxon signed-rank test of the pseudo-median difference (assumes symmetry).
    Wilcoxon,
}

#[derive(Args)]
pub struct CompareArgs {
    /// Two or more report.json files written by `xaudit check` (the same images, for paired
    /// comparisons).
    #[arg(required = true, num_args = 2..)]
    pub reports: Vec<PathBuf>,
    /// Output on stdout.
    #[arg(long, value_enum, default_value = "table")]
    pub format: CompareFormat,
    /// Also write comparison.json, comparison.md and comparison.html here.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Names of the runs, in order (default: the model file's name, or the method when the
    /// runs share a model).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Family-wise error rate of all comparisons (default: the first report's alpha).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Test of the per-image differences.
    #[arg(long, value_enum, default_value = "quantile")]
    pub test: CompareTest,
}

pub fn run(a: CompareArgs) -> Result<i32> {
    if let Some(al) = a.alpha {
        anyhow::ensure!(
            al > 0.0 && al < 1.0,
            "--alpha {al} is not in (0, 1); use e.g. --alpha 0.05"
        );
    }
    let test = match a.test {
        CompareTest::Quantile => TestChoice::Quantile,
        CompareTest::Wilcoxon => TestChoice::Wilcoxon,
    };
    let c = compare::compare_files(&a.reports, &a.labels, a.alpha, test)?;
    let json = serde_json::to_string_pretty(&c)? + "\n";
    if let Some(dir) = &a.out_dir {
        // Staged then renamed: no half-written comparison.
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let files = [
            ("comparison.json", json.clone()),
            ("comparison.md", compare::markdown(&c)),
            ("comparison.html", compare::html(&c)),
        ];
        for (name, text) in &files {
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, text)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
        }
        for (name, _) in &files {
            std::fs::rename(dir.join(format!(".{name}.tmp")), dir.join(name))
                .with_context(|| format!("cannot write {}", dir.join(name).display()))?;
        }
    }
    let text = match a.format {
        CompareFormat::Table => compare::table(&c),
        CompareFormat::Json => json,
        CompareFormat::Markdown => compare::markdown(&c),
        CompareFormat::Html => compare::html(&c),
    };
    outln!("{}", text.trim_end());
    Ok(0)
}
