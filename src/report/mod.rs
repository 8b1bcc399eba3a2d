//! The canonical result of a run (`report.json`) and its renderings, one module per format.
//! Renderers read only these types, never the audits.
pub mod table;

use crate::audit::{Curve, Direction};
use crate::gate::Verdict;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: &str = "1.0";

/// One image's gated value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SampleValue {
    pub index: usize,
    pub path: String,
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub excluded: Option<String>,
}

/// Median and mean of a recorded, non-gated metric.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricSummary {
    pub n: usize,
    pub median: f64,
    pub mean: f64,
}

/// An accepted exception: the result is reported but does not gate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ignored {
    pub reason: String,
    pub expires: Option<String>,
}

/// One gated audit × method × variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

/// The model under audit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    pub path: String,
    pub sha256: String,
    pub num_classes: i64,
    pub num_parameters: i64,
}

/// What was run where (extended by the provenance work of the reports issue).
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    pub data: String,
    pub data_count: usize,
    pub started: String,
    pub finished: String,
}

/// Overall counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub inconclusive: usize,
    pub error: usize,
    pub not_run: usize,
    pub ignored: usize,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: String,
    /// `pass` or `fail` (the gate), `error` when an audit could not be evaluated.
    pub verdict: String,
    pub exit_code: i32,
    pub seed: u64,
    pub alpha: f64,
    pub min_n: usize,
    pub fail_on_inconclusive: bool,
    pub multiplicity: String,
    pub model: ModelInfo,
    pub provenance: Provenance,
    pub counts: Counts,
    pub audits: Vec<AuditResult>,
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
