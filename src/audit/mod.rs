//! Audits measure; they never decide. Each audit file holds its documentation (`DOC`), its
//! parameters (with the paper's defaults) and a `measure` function that turns a model, a data
//! set and one attribution method into per-image values. Thresholds, tests and verdicts live in
//! suites and in `crate::gate`.
pub mod attack;
pub mod attack_mass_center;
pub mod attack_random_sign;
pub mod attack_targeted;
pub mod attack_top_k;
pub mod average_drop;
pub mod cascading_randomization;
pub mod compare;
pub mod data_randomization;
pub mod deletion;
pub mod efficient_mprt;
pub mod equivariance;
pub mod faithfulness;
pub mod fuzz;
pub mod increase_in_confidence;
pub mod independent_randomization;
pub mod infidelity;
pub mod insertion;
pub mod local_lipschitz;
pub mod out_of_set;
pub mod random_logit;
pub mod randomize;
pub mod road;
pub mod run;
pub mod run_to_run_stability;
pub mod salience_degradation;
pub mod salience_entropy;
pub mod sampling;
pub mod sensitivity_max;
pub mod smooth_mprt;
pub mod strategy_clusters;

use crate::error::{Error, Result};
pub use run::RunCtx;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use crate::claim::Direction;

/// An audit's documentation: the text `xaudit docs CODE` prints and reports embed.
pub struct AuditDoc {
    pub code: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    pub what: &'static str,
    pub why: &'static str,
    pub how: &'static str,
    pub pass: &'static str,
    pub references: &'static [&'static str],
    /// The metric gated unless the suite names another, and its good direction.
    pub default_metric: &'static str,
    pub default_direction: Direction,
    /// Every metric the audit records per image (first is the default).
    pub metrics: &'static [&'static str],
}

impl AuditDoc {
    /// The documentation as plain text (terminal, SARIF rule help).
    pub fn render(&self) -> String {
        let refs: String = self
            .references
            .iter()
            .map(|r| format!("  - {r}\n"))
            .collect();
        format!(
            "{code} {name}: {title}\n\n## What it checks\n{what}\n\n## Why it matters\n{why}\n\n## How it is measured\n{how}\n\n## Pass criterion\n{pass}\n\nMetrics recorded per image: {metrics} (gated by default: {dm}, {dir:?} is better).\n\n## References\n{refs}",
            code = self.code,
            name = self.name,
            title = self.title,
            what = self.what,
            why = self.why,
            how = self.how,
            pass = self.pass,
            metrics = self.metrics.join(", "),
            dm = self.default_metric,
            dir = self.default_direction,
        )
    }
}

/// Per-image values of one metric; `None` marks an excluded image (reason in `Finding`).
pub type Column = Vec<Option<f64>>;

/// A curve (e.g. similarity per randomised layer): mean and median of a metric at each x.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Curve {
    pub name: String,
    pub x_label: String,
    pub y_label: String,
    pub x: Vec<String>,
    /// `None` where no image had a finite value.
    pub mean: Vec<Option<f64>>,
    pub median: Vec<Option<f64>>,
    /// Interquartile band (25th and 75th percentiles) at each x.
    #[serde(default)]
    pub q25: Vec<Option<f64>>,
    #[serde(default)]
    pub q75: Vec<Option<f64>>,
    pub n: Vec<usize>,
    /// A baseline curve drawn with it (e.g. the random order's mean), and its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Vec<Option<f64>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_label: Option<String>,
}

impl Curve {
    /// Builds a curve from per-image values at each x (non-finite values skipped).
    pub fn from_columns(
        name: &str,
        x_label: &str,
        y_label: &str,
        cols: &[(String, Vec<f64>)],
    ) -> Curve {
        let mut c = Curve {
            name: name.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x: Vec::new(),
            mean: Vec::new(),
            median: Vec::new(),
            q25: Vec::new(),
            q75: Vec::new(),
            n: Vec::new(),
            reference: None,
            reference_label: None,
        };
        for (x, v) in cols {
            let f: Vec<f64> = v.iter().copied().filter(|v| v.is_finite()).collect();
            c.x.push(x.clone());
            let some = |v: f64| v.is_finite().then_some(v);
            c.mean.push(some(crate::stats::mean(&f)));
            c.median.push(some(crate::stats::median(&f)));
            c.q25.push(some(crate::stats::quantile(&f, 0.25)));
            c.q75.push(some(crate::stats::quantile(&f, 0.75)));
            c.n.push(f.len());
        }
        c
    }

    /// Adds a baseline curve: the mean over images at each x of `cols`.
    pub fn set_reference(&mut self, label: &str, cols: &[(String, Vec<f64>)]) {
        let r = Curve::from_columns("", "", "", cols);
        self.reference = Some(r.mean);
        self.reference_label = Some(label.into());
    }
}

/// What a picture panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PanelKind {
    /// An input image, `[c][h][w]` in [0,1].
    Image,
    /// An explanation map, `[h][w]`, any range.
    Map,
}

/// A small picture kept for the report's best/worst grids (at most 96 px a side).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Panel {
    pub label: String,
    pub kind: PanelKind,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Stored bit-exactly in partial reports (little-endian f32, base64).
    #[serde(with = "f32_bits")]
    pub data: Vec<f32>,
}

/// `Vec<f32>` as base64 of its little-endian bytes: exact for every value, NaN included.
mod f32_bits {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom(
                "panel data is not a whole number of f32",
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// A curve built once every image is in (`Finding::finish`): per image, one value per x
/// kept under `Finding::kept[key]`; mean, median and quartiles over images at each x.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeferredCurve {
    pub name: String,
    pub x_label: String,
    pub y_label: String,
    pub x: Vec<String>,
    pub key: String,
    /// A baseline curve drawn with it (its mean): label and kept key.
    #[serde(default)]
    pub reference: Option<(String, String)>,
}

/// Pictures kept per finding while measuring (a quarter per end and tie order).
pub const EXAMPLE_CANDIDATES: usize = 16;

/// A titled grid of pictures: (title, [(image index, pictures)]).
pub type Gallery = (String, Vec<(usize, Vec<Panel>)>);

/// What one audit measured for one method (and one variant, e.g. one transform): the
/// "measure" step of the pipeline. Tests and verdicts are made from it in `crate::gate`.
/// A sharded run (`check --shard`) writes it unfinished to its partial report; `merge`
/// joins the shards' findings (`Finding::merge`) and finishes them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Finding {
    /// Sub-result name (`hflip`, `gaussian-noise`), empty when the audit has one result.
    pub variant: String,
    /// Data-set index of each measured image, in order.
    pub index: Vec<usize>,
    /// Metric name → one value per image (`None` = excluded).
    pub metrics: BTreeMap<String, Column>,
    /// Why an image was excluded (same order as `index`; `None` when kept).
    pub excluded: Vec<Option<String>>,
    /// Reference group for two-sample audits (e.g. in-set entropies), per metric.
    pub reference: BTreeMap<String, Vec<f64>>,
    pub curves: Vec<Curve>,
    /// Audit-specific facts (attack success rate, estimator used, per-class medians...).
    pub summary: BTreeMap<String, serde_json::Value>,
    /// Pictures per image (original, explanation, perturbed or randomised explanation).
    pub examples: BTreeMap<usize, Vec<Panel>>,
    /// Names of images that are not data-set items (generated out-of-set inputs).
    pub names: BTreeMap<usize, String>,
    /// Proportion audits: (violating images, images tested).
    pub counts: Option<(u64, u64)>,
    /// Titled picture grids beyond the best/worst examples (e.g. a few images per strategy
    /// cluster): (title, [(image index, pictures)]).
    pub galleries: Vec<Gallery>,
    /// Evidence a PASS needs besides its claim (e.g. "the targeted attack is stronger than
    /// random-sign"): when its p-value is above alpha, a PASS becomes INCONCLUSIVE.
    pub requirements: Vec<Requirement>,
    /// Per-image facts behind aggregates over images (key → image → values; non-finite
    /// values stored as `None`). Aggregates are computed from them only when every image is
    /// in (`Finding::finish` and the audit's `finish`): after a single run's measurement, or
    /// after `xaudit merge` joined the shards, so both give the same numbers in the same order.
    #[serde(default)]
    pub kept: BTreeMap<String, BTreeMap<usize, Vec<Option<f64>>>>,
    /// Curves to build from `kept` when every image is in.
    #[serde(default)]
    pub deferred_curves: Vec<DeferredCurve>,
    /// Model passes (forward + backward images) of the audit's own accounting, summed over
    /// shards (`model_passes_per_image` = this / images attacked).
    #[serde(default)]
    pub passes: u64,
}

/// A condition a PASS depends on, with the one-sided p-value of its test.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Requirement {
    pub what: String,
    pub p: f64,
}

impl Finding {
    pub fn new(variant: &str) -> Self {
        Finding {
            variant: variant.into(),
            ..Default::default()
        }
    }

    /// Records one image: its metric values, or the reason it is excluded.
    pub fn push(&mut self, index: usize, values: &[(&str, f64)], excluded: Option<String>) {
        let row = self.index.len();
        self.index.push(index);
        for (name, v) in values {
            let col = self.metrics.entry((*name).to_string()).or_default();
            col.resize(row, None);
            col.push(if excluded.is_none() { Some(*v) } else { None });
        }
        self.excluded.push(excluded);
        for col in self.metrics.values_mut() {
            col.resize(row + 1, None);
        }
    }

    /// Keeps pictures of `index`. Only images that can still be chosen as a best or worst
    /// example are kept (see `prune_examples`), so memory does not grow with the data set.
    pub fn example(&mut self, index: usize, panels: Vec<Panel>) {
        self.examples.insert(index, panels);
        if self.examples.len() > 4 * EXAMPLE_CANDIDATES {
            self.prune_examples();
        }
    }

    /// Drops pictures of images that are not among the `EXAMPLE_CANDIDATES / 2` lowest or
    /// highest values of any metric (ties broken both ways by index), so the final choice of
    /// best and worst examples (`check::pick_examples`, at most 2 per end) is unchanged.
    pub fn prune_examples(&mut self) {
        let per_end = EXAMPLE_CANDIDATES / 4;
        let mut keep = std::collections::BTreeSet::new();
        for col in self.metrics.values() {
            let mut v: Vec<(f64, usize)> = self
                .index
                .iter()
                .zip(col)
                .zip(&self.excluded)
                .filter(|((i, _), e)| e.is_none() && self.examples.contains_key(i))
                .filter_map(|((i, x), _)| x.filter(|x| x.is_finite()).map(|x| (x, *i)))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            keep.extend(v.iter().take(per_end).map(|p| p.1));
            keep.extend(v.iter().rev().take(per_end).map(|p| p.1));
            v.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
            keep.extend(v.iter().take(per_end).map(|p| p.1));
            keep.extend(v.iter().rev().take(per_end).map(|p| p.1));
        }
        // Pictures registered before their values are not judged yet.
        let measured: std::collections::BTreeSet<usize> = self.index.iter().copied().collect();
        self.examples
            .retain(|i, _| keep.contains(i) || !measured.contains(i));
    }

    /// Keeps per-image `values` under `key` for an aggregate computed when every image is in.
    pub fn keep(&mut self, key: &str, index: usize, values: &[f64]) {
        self.kept.entry(key.into()).or_default().insert(
            index,
            values.iter().map(|v| v.is_finite().then_some(*v)).collect(),
        );
    }

    /// The first kept value of every image under `key`, in data-set order (NaN for `None`).
    pub fn kept_values(&self, key: &str) -> Vec<f64> {
        self.kept
            .get(key)
            .map(|m| {
                m.values()
                    .map(|v| v.first().copied().flatten().unwrap_or(f64::NAN))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Images kept under `key`.
    pub fn kept_count(&self, key: &str) -> usize {
        self.kept.get(key).map_or(0, |m| m.len())
    }

    /// A curve over `x` built from per-image rows kept under `curve:NAME` (one value per
    /// x, `Finding::keep`) when every image is in.
    pub fn defer_curve(&mut self, name: &str, x_label: &str, y_label: &str, x: Vec<String>) {
        self.deferred_curves.push(DeferredCurve {
            name: name.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x,
            key: format!("curve:{name}"),
            reference: None,
        });
    }

    /// As `defer_curve`, with a reference curve (its mean is drawn) from rows kept under
    /// `curve:NAME:reference`.
    pub fn defer_curve_with_reference(
        &mut self,
        name: &str,
        x_label: &str,
        y_label: &str,
        x: Vec<String>,
        reference_label: &str,
    ) {
        self.defer_curve(name, x_label, y_label, x);
        if let Some(d) = self.deferred_curves.last_mut() {
            d.reference = Some((reference_label.into(), format!("curve:{name}:reference")));
        }
    }

    /// Joins the findings of disjoint image sets (the shards of one run), in data-set
    /// order. Everything that is not per image must agree.
    pub fn merge(parts: Vec<Finding>) -> std::result::Result<Finding, String> {
        let mut parts: Vec<Finding> = parts;
        // A shard without images (more shards than batches) adds nothing.
        if parts.iter().any(|f| !f.index.is_empty()) {
            parts.retain(|f| !f.index.is_empty());
        }
        parts.sort_by_key(|f| f.index.first().copied().unwrap_or(usize::MAX));
        let mut it = parts.into_iter();
        let Some(mut out) = it.next() else {
            return Err("no finding to merge".into());
        };
        for f in it {
            if f.variant != out.variant {
                return Err(format!(
                    "variants differ: `{}` and `{}`",
                    out.variant, f.variant
                ));
            }
            if f.summary != out.summary {
                let key = f
                    .summary
                    .keys()
                    .chain(out.summary.keys())
                    .find(|k| f.summary.get(*k) != out.summary.get(*k))
                    .cloned()
                    .unwrap_or_default();
                return Err(format!("the shards disagree on `{key}`"));
            }
            if f.deferred_curves != out.deferred_curves || f.names != out.names {
                return Err("the shards disagree on the curves or generated inputs".into());
            }
            if let Some(last) = out.index.last() {
                if f.index.first().is_some_and(|i| i <= last) {
                    return Err(format!("image {last} is in two shards"));
                }
            }
            let rows = out.index.len();
            out.index.extend(&f.index);
            out.excluded.extend(f.excluded);
            let names: std::collections::BTreeSet<String> = out
                .metrics
                .keys()
                .chain(f.metrics.keys())
                .cloned()
                .collect();
            for name in names {
                let add = f
                    .metrics
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| vec![None; f.index.len()]);
                let col = out.metrics.entry(name).or_insert_with(|| vec![None; rows]);
                col.extend(add);
            }
            for (k, v) in f.reference {
                out.reference.entry(k).or_default().extend(v);
            }
            out.examples.extend(f.examples);
            out.counts = match (out.counts, f.counts) {
                (Some((a, b)), Some((c, d))) => Some((a + c, b + d)),
                (a, b) => a.or(b),
            };
            if !f.galleries.is_empty() || !f.requirements.is_empty() || !f.curves.is_empty() {
                return Err("a shard holds finished aggregates".into());
            }
            for (k, m) in f.kept {
                out.kept.entry(k).or_default().extend(m);
            }
            out.passes += f.passes;
        }
        out.prune_examples();
        Ok(out)
    }

    /// Builds the deferred curves (the generic part of finishing; the audit's own `finish`
    /// runs before this).
    pub fn finish_curves(&mut self) {
        for d in std::mem::take(&mut self.deferred_curves) {
            let cols = |key: &str| -> Vec<(String, Vec<f64>)> {
                let rows: Vec<&Vec<Option<f64>>> = self
                    .kept
                    .get(key)
                    .map(|m| m.values().collect())
                    .unwrap_or_default();
                d.x.iter()
                    .enumerate()
                    .map(|(j, x)| {
                        (
                            x.clone(),
                            rows.iter()
                                .map(|r| r.get(j).copied().flatten().unwrap_or(f64::NAN))
                                .collect(),
                        )
                    })
                    .collect()
            };
            let mut c = Curve::from_columns(&d.name, &d.x_label, &d.y_label, &cols(&d.key));
            if let Some((label, key)) = &d.reference {
                c.set_reference(label, &cols(key));
            }
            self.curves.push(c);
        }
    }

    pub fn summary(&mut self, key: &str, v: impl Serialize) {
        self.summary
            .insert(key.into(), serde_json::to_value(v).unwrap_or_default());
    }
}

/// How an audit's measurements are tested against its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    /// Per-image values against the threshold (exact quantile test, or Wilcoxon).
    OneSample,
    /// Per-image values against `Finding::reference` (relative effect, Hoeffding bound).
    TwoSample,
    /// A count of violating images (`Finding::counts`) against a rate (exact binomial,
    /// Clopper-Pearson bound).
    Proportion,
}

/// The function type every audit implements.
pub type MeasureFn = fn(&RunCtx, &crate::attribution::Method, &toml::Table) -> Result<Vec<Finding>>;

/// Turns the per-image facts an audit kept (`Finding::kept`) into its aggregates (summary,
/// requirements) once every image is in.
pub type FinishFn = fn(&mut Finding);

/// Finishes a measured finding: the audit's own aggregates, then the deferred curves. Run
/// exactly once per finding, on the whole data set.
pub fn finish(entry: &AuditEntry, f: &mut Finding) {
    if let Some(fin) = entry.finish {
        fin(f);
    }
    run::finish_noise_floor(f);
    f.finish_curves();
    // The facts are consumed; the report carries the aggregates.
    f.kept.clear();
}

/// An audit in the registry.
pub struct AuditEntry {
    pub doc: &'static AuditDoc,
    pub measure: MeasureFn,
    /// Suite where it belongs (`robustness`, `sanity`, `salience`).
    pub family: &'static str,
    /// How its values are tested.
    pub design: Design,
    /// The parameters with their defaults, for `xaudit docs` and reports.
    pub default_params: fn() -> toml::Table,
    /// Parses a parameter table (types, unknown keys) without running anything.
    pub check: fn(&toml::Table) -> Result<()>,
    /// Aggregates over images from the kept per-image facts (see `Finding::kept`).
    pub finish: Option<FinishFn>,
    /// Whether the audit measures each image on its own, so `check --shard` may split the
    /// data set (false: it needs every image in one process).
    pub shardable: bool,
    /// Whether it measures video models (clips as contact sheets, `crate::clip`): audits
    /// whose perturbations, transforms or map geometry are per pixel or per model. The
    /// others are NOT RUN on video models, with the reason.
    pub clips: bool,
}

/// An audit's typed parameters: parsed over their defaults and range-checked when the suite
/// and configuration load, before any model work (`measure` may assume they are valid).
pub trait AuditParams: Serialize + serde::de::DeserializeOwned {
    /// Range checks; the message says what is wrong and what is allowed.
    fn validate(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// An audit's parameter defaults as a table.
pub fn defaults<T: AuditParams>() -> toml::Table {
    T::deserialize(toml::Value::Table(toml::Table::new()))
        .map(|p| to_table(&p))
        .unwrap_or_default()
}

/// Parses `t` as the audit's parameters and checks their ranges.
pub fn check<T: AuditParams>(t: &toml::Table) -> Result<()> {
    let p = params::<T>("audit", t)?;
    p.validate()
        .map_err(|m| Error::config("audit parameters", m, "see `xaudit docs` for the ranges"))
}

/// Every audit xaudit knows. Adding an audit: its file, one line here, its suite entry.
pub static REGISTRY: &[AuditEntry] = &[
    attack_random_sign::ENTRY,
    attack_top_k::ENTRY,
    attack_mass_center::ENTRY,
    attack_targeted::ENTRY,
    sensitivity_max::ENTRY,
    local_lipschitz::ENTRY,
    cascading_randomization::ENTRY,
    independent_randomization::ENTRY,
    random_logit::ENTRY,
    data_randomization::ENTRY,
    smooth_mprt::ENTRY,
    efficient_mprt::ENTRY,
    equivariance::ENTRY,
    out_of_set::ENTRY,
    salience_entropy::ENTRY,
    run_to_run_stability::ENTRY,
    salience_degradation::ENTRY,
    strategy_clusters::ENTRY,
    fuzz::ENTRY,
    deletion::ENTRY,
    insertion::ENTRY,
    average_drop::ENTRY,
    increase_in_confidence::ENTRY,
    infidelity::ENTRY,
    road::ENTRY,
];

/// Looks an audit up by code (`XA002`) or name (`attack-top-k`), case-insensitively.
pub fn find(key: &str) -> Option<&'static AuditEntry> {
    REGISTRY
        .iter()
        .find(|a| a.doc.code.eq_ignore_ascii_case(key) || a.doc.name.eq_ignore_ascii_case(key))
}

/// Like `find`, with an error that suggests the closest known name.
pub fn lookup(key: &str, origin: &str) -> Result<&'static AuditEntry> {
    find(key).ok_or_else(|| {
        let names: Vec<&str> = REGISTRY.iter().map(|a| a.doc.name).collect();
        let hint = crate::suggest::closest(key, &names)
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        Error::config(
            origin,
            format!("unknown audit `{key}`"),
            format!("{hint}run `xaudit list` to see the audits"),
        )
    })
}

/// Deserialises an audit's parameter table over its defaults, naming the audit on error.
pub fn params<T: serde::de::DeserializeOwned>(code: &str, t: &toml::Table) -> Result<T> {
    T::deserialize(toml::Value::Table(t.clone())).map_err(|e| {
        Error::config(
            format!("parameters of {code}"),
            e.message().to_string(),
            format!("see `xaudit docs {code}` for the parameters and their types"),
        )
    })
}

/// True for finite numbers > 0 (rejects NaN, which `!(x > 0.0)` would also do, less readably).
pub fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}

/// Serialises a parameter struct back to a table (defaults listing, report `params`).
pub fn to_table<T: Serialize>(p: &T) -> toml::Table {
    toml::Table::try_from(p).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_documented() {
        let mut codes = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for a in REGISTRY {
            assert!(codes.insert(a.doc.code), "duplicate code {}", a.doc.code);
            assert!(names.insert(a.doc.name), "duplicate name {}", a.doc.name);
            assert!(a.doc.metrics.contains(&a.doc.default_metric));
            for s in [a.doc.what, a.doc.why, a.doc.how, a.doc.pass] {
                assert!(s.len() > 40, "{} has a thin doc section", a.doc.code);
            }
            assert!(!a.doc.references.is_empty());
            // Defaults must round-trip through the parameter parser.
            (a.check)(&(a.default_params)()).unwrap();
        }
    }

    #[test]
    fn finding_push_keeps_columns_aligned() {
        let mut f = Finding::new("");
        f.push(0, &[("a", 1.0), ("b", 2.0)], None);
        f.push(3, &[("a", 5.0)], Some("label changed".into()));
        f.push(4, &[("b", 7.0)], None);
        assert_eq!(f.metrics["a"], vec![Some(1.0), None, None]);
        assert_eq!(f.metrics["b"], vec![Some(2.0), None, Some(7.0)]);
        assert_eq!(f.index, vec![0, 3, 4]);
    }

    /// The pictures kept while measuring always include every image `check::pick_examples`
    /// can choose (the 2 best and 2 worst by any metric, in either direction, ties by index).
    #[test]
    fn pruned_examples_keep_every_possible_pick() {
        let mut f = Finding::new("");
        for i in 0..300usize {
            // Many ties and a few exclusions.
            let a = ((i * 7919) % 13) as f64;
            let b = ((i * 104729) % 29) as f64 / 3.0;
            let excluded = (i % 17 == 5).then(|| "x".to_string());
            f.push(i, &[("a", a), ("b", b)], excluded);
            f.example(i, Vec::new());
        }
        f.prune_examples();
        assert!(
            f.examples.len() <= 2 * 2 * EXAMPLE_CANDIDATES,
            "{}",
            f.examples.len()
        );
        for name in ["a", "b"] {
            let mut v: Vec<(f64, usize)> = f
                .index
                .iter()
                .zip(&f.metrics[name])
                .zip(&f.excluded)
                .filter(|(_, e)| e.is_none())
                .filter_map(|((i, x), _)| x.map(|x| (x, *i)))
                .collect();
            for higher_good in [false, true] {
                v.sort_by(|a, b| {
                    let o = a.0.total_cmp(&b.0);
                    (if higher_good { o.reverse() } else { o }).then(a.1.cmp(&b.1))
                });
                for (_, i) in v.iter().take(2).chain(v.iter().rev().take(2)) {
                    assert!(f.examples.contains_key(i), "{name}: pick {i} was pruned");
                }
            }
        }
    }
}
