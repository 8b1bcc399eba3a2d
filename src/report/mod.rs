//! The canonical result of a run (`report.json`) and its renderings, one module per format.
//! Renderers read only these types (the audits' documentation travels inside the report),
//! never the audits or the decision code, and print numbers through [`fmt`].
pub use crate::fmt;
pub use crate::output::Format;
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

/// Bumped in the minor part for additive changes (older readers ignore new fields; a
/// baseline from the same major version stays comparable), in the major part otherwise.
pub const SCHEMA_VERSION: &str = "2.1";

impl Format {
    /// The format's rendering of `r` (each format is a pure function of the report).
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

/// What a result's test claimed, before the decision: the two one-sided claims and their
/// raw p-values.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Claim {
    /// `quantile-binomial`, `wilcoxon-signed-rank`, `hoeffding-relative-effect` or `binomial`.
    pub test: String,
    /// The PASS claim, in words.
    pub pass: String,
    /// The FAIL claim, in words.
    pub fail: String,
    /// Quantile test: the share of images that must lie on the good side.
    pub quantile: Option<f64>,
    /// What the claims are about (median, a quantile, pseudo-median, rank-biserial r, rate).
    pub estimate: Option<f64>,
    pub estimate_label: String,
    /// Observations strictly on the good / bad side and equal to the threshold (images, or
    /// Walsh averages for Wilcoxon).
    pub good: Option<usize>,
    pub bad: Option<usize>,
    pub ties: Option<usize>,
    /// One-sided raw p-values of the PASS and FAIL claims.
    pub p_pass: f64,
    pub p_fail: f64,
}

/// One audit × method × variant.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditResult {
    /// Position of the audit's entry in the suite (an audit may appear more than once).
    #[serde(default)]
    pub entry: usize,
    pub code: String,
    pub name: String,
    pub title: String,
    pub suite: String,
    pub method: String,
    /// Sub-result (transform, out-of-set kind); empty when the audit has one result.
    pub variant: String,
    pub metric: String,
    /// Usable images (the unit of every test).
    pub n: usize,
    pub excluded: usize,
    pub excluded_reasons: BTreeMap<String, usize>,
    pub threshold: f64,
    pub direction: Direction,
    pub rationale: String,
    /// The test's claims (evaluate step); absent when nothing was tested.
    pub claim: Option<Claim>,
    /// Median, quartiles and a bootstrap interval: context only, not used by the decision.
    pub descriptive: Option<crate::gate::Descriptive>,
    pub verdict: Verdict,
    pub reason: String,
    /// Holm-adjusted p-values of the two claims in the run's single family.
    pub p_pass_adjusted: Option<f64>,
    pub p_fail_adjusted: Option<f64>,
    /// The one-sided level at which the decisive claim was tested (INCONCLUSIVE: the level
    /// at which the step-down stopped).
    pub level: Option<f64>,
    /// The decision's confidence bound(s) on `claim.estimate` at `level`.
    pub bound_low: Option<f64>,
    pub bound_high: Option<f64>,
    /// INCONCLUSIVE: about how many images would likely decide it at the observed effect.
    pub images_to_decide: Option<f64>,
    /// Counts towards the exit code (false: advisory or ignored).
    pub gated: bool,
    /// Reported, never gating (placeholder threshold until calibrated).
    pub advisory: bool,
    /// Must PASS for the suite to pass.
    pub prerequisite: bool,
    pub ignored: Option<Ignored>,
    /// Set on a PASS of a method that did not pass its suite's prerequisite.
    pub note: Option<String>,
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
    /// Against the baseline report, when one was given and it holds this result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regression: Option<Regression>,
    /// Sequential runs (`check` without `--fixed-n`): images used and why the audit stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<Stopping>,
}

/// How far one audit of a sequential run went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Stopping {
    /// The looks it took, as image counts in the run's seeded order (empty when it measured
    /// every image at once).
    pub looks: Vec<usize>,
    /// Looks the run's schedule allows (the Bonferroni factor of a PASS's precondition).
    pub planned_looks: usize,
    /// Images measured: the first `images` of the run's order (before exclusions).
    pub images: usize,
    /// Images the run could use (the cap: --max-images, or every image).
    pub available: usize,
    /// `decided` (stopped early), `cap` (ran to the cap undecided or decided only there), or
    /// `fixed-n: why` (a test without a sequential form, measured on every image).
    pub stopped: String,
}

impl Stopping {
    /// One line for readers: images used of those available, the looks, why it stopped.
    pub fn describe(&self) -> String {
        let looks = self
            .looks
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let why = match self.stopped.as_str() {
            "decided" => "stopped early: the verdict was decided".to_string(),
            "cap" => "ran to the cap".to_string(),
            other => other
                .strip_prefix("fixed-n: ")
                .map(|w| format!("measured every image: {w}"))
                .unwrap_or_else(|| other.to_string()),
        };
        if self.looks.is_empty() {
            format!(
                "{} of {} images (seeded random order); {why}",
                self.images, self.available
            )
        } else {
            format!(
                "{} of {} images (seeded random order), looks at {looks}; {why}",
                self.images, self.available
            )
        }
    }
}

/// One image's value in the baseline and in this run (paired comparison).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PairedValue {
    pub path: String,
    pub baseline: f64,
    pub current: f64,
}

/// A result compared with the same result (audit, method, variant) of a baseline report.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Regression {
    /// `paired` (images shared by both runs, matched by file sha256) or `two-sample`.
    pub design: String,
    /// `quantile-binomial` (exact sign test of the median difference), `wilcoxon-signed-rank`
    /// or `hoeffding-relative-effect` (two-sample).
    pub test: String,
    /// Why this design (e.g. how many images were shared).
    pub design_reason: String,
    pub baseline_n: usize,
    pub current_n: usize,
    /// Images compared paired (0 for two-sample).
    pub paired_n: usize,
    pub baseline_median: Option<f64>,
    pub current_median: Option<f64>,
    /// Current minus baseline in the metric's units: the median (or pseudo-median) of the
    /// per-image differences when paired, the difference of the medians when two-sample.
    pub difference: Option<f64>,
    pub difference_label: String,
    /// Which change is a regression: `higher` or `lower` values of the metric.
    pub worse: String,
    /// Allowed regression in the metric's units.
    pub max_regression: f64,
    /// The claims tested (REGRESSED, NOT WORSE).
    pub claim_regressed: String,
    pub claim_not_worse: String,
    /// FAIL = regressed, PASS = shown not worse, INCONCLUSIVE = no significant change.
    pub verdict: Verdict,
    pub reason: String,
    pub p_regressed_adjusted: Option<f64>,
    pub p_not_worse_adjusted: Option<f64>,
    pub level: Option<f64>,
    /// The decision's confidence bound(s) on `bound_of` at `level`.
    pub bound_low: Option<f64>,
    pub bound_high: Option<f64>,
    /// `difference` (paired, metric units) or the rank-biserial r (two-sample).
    pub bound_of: String,
    /// Counts towards the exit code (the result gates and the regression is decided).
    pub gated: bool,
    /// Paired designs: every shared image's two values (for the HTML plot).
    pub pairs: Vec<PairedValue>,
}

/// The adjusted p-value behind a verdict: the FAIL claim's for FAIL, the PASS claim's for
/// PASS, the smaller of the two when undecided.
pub fn decisive_p(v: Verdict, p_pass: Option<f64>, p_fail: Option<f64>) -> Option<f64> {
    match v {
        Verdict::Fail => p_fail,
        Verdict::Pass => p_pass,
        _ => match (p_pass, p_fail) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        },
    }
}

impl Regression {
    /// The adjusted p-value behind the regression verdict.
    pub fn decisive_p(&self) -> Option<f64> {
        decisive_p(
            self.verdict,
            self.p_not_worse_adjusted,
            self.p_regressed_adjusted,
        )
    }

    /// `REGRESSED`, `NOT WORSE` or `NO SIGNIFICANT CHANGE`.
    pub fn label(&self) -> &'static str {
        match self.verdict {
            Verdict::Fail => "REGRESSED",
            Verdict::Pass => "NOT WORSE",
            Verdict::Inconclusive => "NO SIGNIFICANT CHANGE",
            Verdict::Error => "ERROR",
            Verdict::NotRun => "NOT COMPARED",
        }
    }

    /// The decision's bound as text (`≤ 0.0100`, `[−0.02, 0.03]`).
    pub fn bound_text(&self) -> String {
        fmt::bounds(self.bound_low, self.bound_high)
    }

    /// One line every format prints: baseline, current, difference with its bound, verdict.
    pub fn line(&self) -> String {
        format!(
            "{}: baseline {} -> current {}, {} {} ({} bound on the {} {}), {}; adjusted p = {}",
            self.label(),
            fmt::num(self.baseline_median),
            fmt::num(self.current_median),
            self.difference_label,
            fmt::signed(self.difference),
            self.level
                .map(|l| fmt::percent(1.0 - l))
                .unwrap_or_else(|| "-".into()),
            self.bound_of,
            self.bound_text(),
            self.design_reason,
            fmt::p(self.decisive_p())
        )
    }
}

/// The baseline a run was compared with.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BaselineInfo {
    pub path: String,
    pub schema_version: String,
    pub xaudit_version: String,
    pub model_sha256: String,
    pub data_sha256: String,
    pub started: String,
    /// Allowed regression unless an audit sets its own (`max-regression`).
    pub max_regression: f64,
    /// What differs between the two runs (model, data, suite, seed, methods, parameters).
    pub differences: Vec<String>,
    /// Results of this run without a counterpart in the baseline, and why.
    pub unmatched: Vec<String>,
    /// Results compared, and how many regressed (gated or not).
    pub compared: usize,
    pub regressed: usize,
}

/// One input image: its position in the data set, path and file hash (pairs images across
/// runs for baseline comparisons).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImageRecord {
    pub index: usize,
    pub path: String,
    pub sha256: String,
}

/// The model under audit.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelInfo {
    pub path: String,
    pub sha256: String,
    pub num_classes: i64,
    pub num_parameters: i64,
    /// For an embedding model: what its scores compare with (absent for a classifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<EmbeddingInfo>,
    /// For a video model: frames per clip (absent for image models). Its maps are `[T,H,W]`,
    /// shown as contact sheets (the frames side by side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<i64>,
}

/// An embedding model's score: cosine similarity to references, divided by a temperature.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EmbeddingInfo {
    /// Embedding dimension.
    pub dim: i64,
    /// `prototypes`.
    pub reference: String,
    /// The support folder the references were built from.
    pub source: String,
    pub temperature: f64,
    /// Reference names (classes) and the support images behind each.
    pub names: Vec<String>,
    pub counts: Vec<usize>,
    /// One line for people.
    pub describe: String,
}

impl EmbeddingInfo {
    pub fn of(r: &crate::embedding::References) -> EmbeddingInfo {
        EmbeddingInfo {
            dim: r.dim,
            reference: serde_json::to_value(r.reference)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            source: r.source.clone(),
            temperature: r.temperature,
            names: r.names.clone(),
            counts: r.counts.clone(),
            describe: r.describe(),
        }
    }
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
    /// Inputs per model pass and how they were chosen (flag, probe or cache).
    #[serde(default)]
    pub internal_batch: Option<crate::throughput::BatchChoice>,
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
    /// Results reported without gating (placeholder thresholds).
    #[serde(default)]
    pub advisory: usize,
    /// Results significantly worse than in the baseline (gated or not).
    #[serde(default)]
    pub regressed: usize,
}

/// An audit's documentation as shipped inside the report (renderers never look it up).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditDocView {
    pub code: String,
    pub name: String,
    pub title: String,
    pub family: String,
    pub what: String,
    pub why: String,
    pub how: String,
    pub pass: String,
    pub references: Vec<String>,
    /// The plain-text rendering (`xaudit docs`, SARIF rule help).
    pub text: String,
}

impl AuditDocView {
    pub fn of(e: &crate::audit::AuditEntry) -> AuditDocView {
        let d = e.doc;
        AuditDocView {
            code: d.code.into(),
            name: d.name.into(),
            title: d.title.into(),
            family: e.family.into(),
            what: d.what.into(),
            why: d.why.into(),
            how: d.how.into(),
            pass: d.pass.into(),
            references: d.references.iter().map(|s| s.to_string()).collect(),
            text: d.render(),
        }
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: String,
    /// Sequential run: audits stopped as soon as they were decided (each result's
    /// `sequential` says how far it went); false for `--fixed-n`, sharded and baseline runs.
    #[serde(default)]
    pub sequential: bool,
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
    /// The decision rule in words, with this run's alpha and minimum n.
    pub decision_rule: String,
    /// Claims in the run's single error budget.
    pub family_size: usize,
    /// Every method as audited: name -> parameters, score and aggregation.
    pub methods: BTreeMap<String, serde_json::Value>,
    /// Documentation of every audit in the report, by code.
    pub docs: BTreeMap<String, AuditDocView>,
    pub model: ModelInfo,
    pub provenance: Provenance,
    pub counts: Counts,
    /// Problems with the inputs that likely make verdicts meaningless (labels that do not
    /// match the model, most images excluded for one reason); every format shows them first.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The baseline this run was compared with (`--baseline`, `[baseline]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineInfo>,
    pub audits: Vec<AuditResult>,
    /// Every input image with its file hash.
    #[serde(default)]
    pub images: Vec<ImageRecord>,
}

impl AuditResult {
    /// The adjusted p-value behind the verdict: the FAIL claim's for FAIL, the PASS claim's
    /// for PASS, the smaller of the two when undecided.
    pub fn decisive_p(&self) -> Option<f64> {
        decisive_p(self.verdict, self.p_pass_adjusted, self.p_fail_adjusted)
    }

    /// The median of the usable per-image values (descriptive).
    pub fn median(&self) -> Option<f64> {
        self.descriptive.as_ref().and_then(|d| d.median)
    }

    /// The decision's bound as text, e.g. `≤ 0.3100` (PASS of a lower-is-better claim),
    /// `[0.41, 0.62]` when undecided, `-` when none.
    pub fn bound_text(&self) -> String {
        fmt::bounds(self.bound_low, self.bound_high)
    }

    /// The estimate the claims are about, with its name (`median 0.1234`).
    /// For an attack: which estimator found the attack (and why), its cost in model passes
    /// per image, and its strength against the random-sign baseline; `None` otherwise.
    pub fn attack_text(&self) -> Option<String> {
        let s = &self.summary;
        let est = s.get("estimator")?.as_str()?;
        let mut t = format!("estimator {est}");
        if let Some(why) = s.get("estimator_reason").and_then(|v| v.as_str()) {
            t.push_str(&format!(" ({why})"));
        }
        if let Some(n) = s.get("model_passes_per_image").and_then(|v| v.as_f64()) {
            t.push_str(&format!("; {n:.0} model passes per image"));
        }
        if let Some(st) = s.get("strength_vs_random_sign") {
            let g = |k: &str| st.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            t.push_str(&format!(
                "; stronger than random-sign on {} images, weaker on {}, tied on {} (one-sided sign test p = {})",
                g("targeted_stronger"),
                g("random_sign_stronger"),
                g("ties"),
                fmt::p(st.get("p_one_sided_sign_test").and_then(|v| v.as_f64()))
            ));
        }
        Some(t)
    }

    pub fn estimate_text(&self) -> String {
        match &self.claim {
            Some(c) => format!("{} {}", c.estimate_label, fmt::num(c.estimate)),
            None => "-".into(),
        }
    }

    /// Confidence of the decision's bound (`1 - level`), e.g. `99.9%`.
    pub fn confidence_text(&self) -> String {
        match self.level {
            Some(l) => fmt::percent(1.0 - l),
            None => "-".into(),
        }
    }

    /// One line every format prints for this result: estimate, the decision's bound and its
    /// confidence, threshold, n, adjusted p.
    pub fn stats_line(&self) -> String {
        format!(
            "{}: {} ({} bound {}) vs threshold {} {}, n = {}, adjusted p = {}",
            self.metric,
            self.estimate_text(),
            self.confidence_text(),
            self.bound_text(),
            self.direction.symbol(),
            fmt::threshold(self.threshold),
            self.n,
            fmt::p(self.decisive_p())
        )
    }

    /// How the verdict is shown: `FAIL`, `PASS (advisory)`, `FAIL (ignored)`.
    pub fn verdict_text(&self) -> String {
        let v = self.verdict.label();
        if self.ignored.is_some() {
            format!("{v} (ignored)")
        } else if self.advisory {
            format!("{v} (advisory)")
        } else {
            v.to_string()
        }
    }
}

/// What `check::report` needs besides the outcome: facts only the caller knows.
pub struct ReportInputs {
    pub model: ModelInfo,
    pub provenance: Provenance,
    /// The exit code after `--exit-zero`.
    pub exit_code: i32,
    /// Input problems found before the run (see [`Report::warnings`]).
    pub warnings: Vec<String>,
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
