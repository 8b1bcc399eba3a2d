//! The canonical result of a run (`report.json`) and its renderings, one module per format.
//! Renderers read only these types, never the audits.
pub mod github;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod plots;
pub mod sarif;
pub mod table;

use crate::audit::{Curve, Direction};
use crate::gate::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: &str = "1.0";

/// Output formats; every one is a pure rendering of `Report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Table,
    Json,
    Junit,
    Sarif,
    Markdown,
    Github,
    Html,
}

impl Format {
    /// File written for this format under `--out-dir` (`None`: terminal only).
    pub fn file_name(self) -> Option<&'static str> {
        match self {
            Format::Table | Format::Github => None,
            Format::Json => Some("report.json"),
            Format::Junit => Some("junit.xml"),
            Format::Sarif => Some("report.sarif"),
            Format::Markdown => Some("report.md"),
            Format::Html => Some("report.html"),
        }
    }

    pub fn render(self, r: &Report) -> String {
        match self {
            Format::Table => table::render(r),
            Format::Json => json::render(r),
            Format::Junit => junit::render(r),
            Format::Sarif => sarif::render(r),
            Format::Markdown => markdown::render(r),
            Format::Github => github::render(r),
            Format::Html => html::render(r),
        }
    }
}

/// Files written under `--out-dir` unless `formats` says otherwise.
pub const DEFAULT_FILES: [Format; 5] = [
    Format::Json,
    Format::Html,
    Format::Junit,
    Format::Sarif,
    Format::Markdown,
];

/// Writes every format's file into `dir`: each to a temporary name first, then all renamed,
/// so an interrupted or failed run never leaves a half-written report.
pub fn write_all(
    dir: &std::path::Path,
    r: &Report,
    formats: &[Format],
) -> crate::Result<Vec<std::path::PathBuf>> {
    let err = |p: &std::path::Path, e: std::io::Error| crate::Error::output(p, e.to_string());
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let mut staged = Vec::new();
    for f in formats {
        let Some(name) = f.file_name() else { continue };
        let tmp = dir.join(format!(".{name}.tmp"));
        if let Err(e) = std::fs::write(&tmp, f.render(r)) {
            for (t, _) in &staged {
                let _ = std::fs::remove_file(t);
            }
            let _ = std::fs::remove_file(&tmp);
            return Err(err(&tmp, e));
        }
        staged.push((tmp, dir.join(name)));
    }
    if let Err(e) = crate::interrupt::check() {
        for (t, _) in &staged {
            let _ = std::fs::remove_file(t);
        }
        return Err(e);
    }
    let mut out = Vec::new();
    for (tmp, path) in staged {
        std::fs::rename(&tmp, &path).map_err(|e| err(&path, e))?;
        out.push(path);
    }
    Ok(out)
}

/// Reads a stored report (for `xaudit report`).
pub fn read(path: &std::path::Path) -> crate::Result<Report> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::Error::data(
            path,
            format!("cannot read: {e}"),
            "pass the report.json written by `xaudit check --out-dir`",
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        crate::Error::data(path, format!("not an xaudit report: {e}"), "pass the report.json written by `xaudit check --out-dir` (schema in docs/report.schema.json)")
    })
}

/// JSON Schema of `report.json`, generated from these types.
pub fn schema() -> String {
    serde_json::to_string_pretty(&schemars::schema_for!(Report)).unwrap_or_default() + "\n"
}

fn yes() -> bool {
    true
}

/// One image's gated value.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SampleValue {
    pub index: usize,
    pub path: String,
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub excluded: Option<String>,
}

/// Median and mean of a recorded, non-gated metric.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricSummary {
    pub n: usize,
    /// `None` when no value was finite.
    pub median: Option<f64>,
    pub mean: Option<f64>,
}

/// One picture of an example image.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PanelImage {
    pub label: String,
    /// `data:image/png;base64,...`
    pub png: String,
}

/// A best or worst image of an audit, with its pictures.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Example {
    /// `best` or `worst` (by the gated metric and its direction).
    pub role: String,
    pub index: usize,
    pub path: String,
    pub value: f64,
    pub panels: Vec<PanelImage>,
}

/// An accepted exception: the result is reported but does not gate.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Ignored {
    pub reason: String,
    pub expires: Option<String>,
}

/// One gated audit × method × variant.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditResult {
    pub code: String,
    pub name: String,
    pub title: String,
    pub suite: String,
    pub method: String,
    /// Sub-result (transform, out-of-set kind); empty when the audit has one result.
    pub variant: String,
    pub metric: String,
    pub n: usize,
    pub excluded: usize,
    pub excluded_reasons: BTreeMap<String, usize>,
    pub median: Option<f64>,
    pub mean: Option<f64>,
    pub q25: Option<f64>,
    pub q75: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub ci_method: Option<String>,
    pub threshold: f64,
    pub direction: Direction,
    pub rationale: String,
    pub test: Option<String>,
    pub test_method: Option<String>,
    pub test_note: Option<String>,
    pub statistic: Option<f64>,
    pub effect_size: Option<f64>,
    pub effect_ci: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    pub p_adjusted: Option<f64>,
    pub p_value_bad: Option<f64>,
    pub p_adjusted_bad: Option<f64>,
    pub verdict: Verdict,
    pub reason: String,
    pub gated: bool,
    pub ignored: Option<Ignored>,
    pub per_sample: Vec<SampleValue>,
    /// Two-sample audits: the reference group's size and median.
    pub reference: Option<MetricSummary>,
    pub secondary: BTreeMap<String, MetricSummary>,
    pub curves: Vec<Curve>,
    pub summary: BTreeMap<String, serde_json::Value>,
    pub params: serde_json::Value,
    pub duration_s: f64,
    /// Best and worst images with pictures (for the HTML report).
    #[serde(default)]
    pub examples: Vec<Example>,
}

/// The model under audit.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelInfo {
    pub path: String,
    pub sha256: String,
    pub num_classes: i64,
    pub num_parameters: i64,
}

/// What was run where (extended by the provenance work of the reports issue).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Provenance {
    pub xaudit_version: String,
    pub libtorch_version: String,
    pub device: String,
    pub threads: i32,
    pub command_line: Vec<String>,
    pub suite: String,
    pub suite_origin: String,
    pub suite_sha256: String,
    pub config: Option<String>,
    pub config_sha256: Option<String>,
    pub data: String,
    pub data_count: usize,
    /// sha256 over the sorted list of "sha256  path" lines of every image used.
    pub data_sha256: String,
    pub random_label_model: Option<String>,
    pub out_of_set: Option<String>,
    pub started: String,
    pub finished: String,
}

/// Overall counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub inconclusive: usize,
    pub error: usize,
    pub not_run: usize,
    pub ignored: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: String,
    /// `pass` or `fail` (the gate), `error` when an audit could not be evaluated.
    pub verdict: String,
    pub exit_code: i32,
    pub seed: u64,
    pub alpha: f64,
    pub min_n: usize,
    pub fail_on_inconclusive: bool,
    /// Whether an audit that could not be evaluated makes the run exit 2.
    #[serde(default = "yes")]
    pub fail_on_error: bool,
    pub multiplicity: String,
    pub model: ModelInfo,
    pub provenance: Provenance,
    pub counts: Counts,
    pub audits: Vec<AuditResult>,
}

impl AuditResult {
    /// The Holm-adjusted p-value behind the verdict: the bad-direction test for FAIL.
    pub fn decisive_p(&self) -> Option<f64> {
        match self.verdict {
            Verdict::Fail => self.p_adjusted_bad.or(self.p_adjusted),
            _ => self.p_adjusted,
        }
    }
}

impl Report {
    /// The report with timestamps and durations blanked (for reproducibility checks).
    pub fn without_times(&self) -> Report {
        let mut r = self.clone();
        r.provenance.started.clear();
        r.provenance.finished.clear();
        for a in &mut r.audits {
            a.duration_s = 0.0;
        }
        r
    }
}
