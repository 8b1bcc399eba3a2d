//! Suites: which audits run, on which methods, with which thresholds and parameters.
//! Built-in suites live in `audits/*.toml` (compiled in); `--suite` also takes a path.
use crate::attribution::config::{MethodSet, MethodsField};
use crate::attribution::MethodKind;
use crate::audit::{self, AuditEntry, Direction};
use crate::claim::TestChoice;
use crate::error::{Error, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Built-in suites: (name, file text).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("robustness", include_str!("../audits/robustness.toml")),
    ("sanity", include_str!("../audits/sanity.toml")),
    ("salience", include_str!("../audits/salience.toml")),
    ("faithfulness", include_str!("../audits/faithfulness.toml")),
    ("fuzz", include_str!("../audits/fuzz.toml")),
    ("full", include_str!("../audits/full.toml")),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SuiteFile {
    name: String,
    #[serde(default)]
    description: String,
    /// Other suites whose audits are added (built-in names or paths relative to this file).
    #[serde(default)]
    include: Vec<String>,
    /// Method names, or `[methods.NAME]` parameter tables.
    #[serde(default)]
    methods: Option<MethodsField>,
    #[serde(default)]
    alpha: Option<f64>,
    #[serde(default)]
    min_n: Option<usize>,
    #[serde(default, rename = "audit")]
    audits: Vec<AuditSpec>,
}

/// One gated audit in a suite.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditSpec {
    /// Audit code or name.
    pub id: String,
    /// Gated metric (default: the audit's).
    #[serde(default)]
    pub metric: Option<String>,
    pub threshold: f64,
    #[serde(default)]
    pub direction: Option<Direction>,
    /// One-sample audits with the quantile test: the share of images that must lie on the
    /// good side (0.5: the median; 0.9: "at least 90% of images").
    #[serde(default)]
    pub quantile: Option<f64>,
    /// `quantile` (default) or `wilcoxon` (a pseudo-median claim).
    #[serde(default)]
    pub test: Option<TestChoice>,
    /// Reported but never gating (placeholder thresholds until calibrated).
    #[serde(default)]
    pub advisory: bool,
    /// Must PASS for the suite to pass (INCONCLUSIVE fails it too), e.g. the model-dependence
    /// check of every built-in suite.
    #[serde(default)]
    pub prerequisite: bool,
    /// Why this threshold: printed in reports.
    #[serde(default)]
    pub rationale: Option<String>,
    /// Methods for this audit only (default: the suite's).
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    /// Audit parameters (see `xaudit docs CODE`).
    #[serde(default)]
    pub params: toml::Table,
}

/// A resolved audit of a suite.
#[derive(Clone)]
pub struct Gate {
    pub entry: &'static AuditEntry,
    pub suite: String,
    pub metric: String,
    pub threshold: f64,
    pub direction: Direction,
    pub quantile: f64,
    pub test: TestChoice,
    pub advisory: bool,
    pub prerequisite: bool,
    pub rationale: String,
    pub methods: Vec<MethodKind>,
    pub params: toml::Table,
}

impl Gate {
    /// Whether two entries would measure and decide exactly the same thing.
    pub fn same_as(&self, o: &Gate) -> bool {
        self.entry.doc.code == o.entry.doc.code
            && self.metric == o.metric
            && self.threshold == o.threshold
            && self.direction == o.direction
            && self.quantile == o.quantile
            && self.test == o.test
            && self.advisory == o.advisory
            && self.prerequisite == o.prerequisite
            && self.methods == o.methods
            && self.params == o.params
    }
}

/// A loaded suite.
pub struct Suite {
    pub name: String,
    pub description: String,
    /// `built-in` or the file path.
    pub origin: String,
    pub sha256: String,
    /// Methods audited and their parameters.
    pub methods: MethodSet,
    pub alpha: Option<f64>,
    pub min_n: Option<usize>,
    pub gates: Vec<Gate>,
}

/// Parses a method name with a suggestion on typos.
pub fn method(name: &str, origin: &str) -> Result<MethodKind> {
    crate::attribution::config::method_kind(name, origin)
}

pub use crate::tomlfile::parse_toml;

impl Suite {
    /// `key` is a built-in name or a path to a suite file.
    pub fn load(key: &str) -> Result<Suite> {
        let mut hasher = Sha256::new();
        let mut seen = Vec::new();
        let mut suite = load_into(key, None, &mut hasher, &mut seen)?;
        suite.sha256 = format!("{:x}", hasher.finalize());
        Ok(suite)
    }
}

fn read(key: &str, base: Option<&Path>) -> Result<(String, String)> {
    if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == key) {
        return Ok((text.to_string(), "built-in".into()));
    }
    let path = match base {
        Some(b) if Path::new(key).is_relative() => b.join(key),
        _ => Path::new(key).to_path_buf(),
    };
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok((t, path.display().to_string())),
        Err(e) => {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            let hint = crate::suggest::closest(key, &names)
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            Err(Error::config(
                key,
                format!("not a built-in suite and not a readable file ({e})"),
                format!(
                    "{hint}use one of {} or a path to a suite TOML file",
                    names.join(", ")
                ),
            ))
        }
    }
}

fn load_into(
    key: &str,
    base: Option<&Path>,
    hasher: &mut Sha256,
    seen: &mut Vec<String>,
) -> Result<Suite> {
    let (text, origin) = read(key, base)?;
    let ident = if origin == "built-in" {
        key.to_string()
    } else {
        origin.clone()
    };
    if seen.contains(&ident) {
        return Err(Error::config(
            &origin,
            "suite includes itself",
            "remove the include cycle",
        ));
    }
    seen.push(ident);
    hasher.update(text.as_bytes());
    let origin_name = if origin == "built-in" {
        format!("audits/{key}.toml")
    } else {
        origin.clone()
    };
    let f: SuiteFile = parse_toml(
        &text,
        &origin_name,
        "see the suite format in README.md (section Suites) or audits/robustness.toml",
    )?;
    let here = if origin == "built-in" {
        None
    } else {
        Path::new(&origin).parent()
    };
    let own = match &f.methods {
        Some(m) => m.resolve(&text, &origin_name)?,
        None => MethodSet::default(),
    };
    // The suite's methods: its own list when it names one, else the union of its includes'.
    // Parameters: the includes' first, this file's last (it wins key by key).
    let mut methods = MethodSet::default();
    let mut union: Vec<MethodKind> = Vec::new();
    let mut gates = Vec::new();
    for inc in &f.include {
        let sub = load_into(inc, here, hasher, seen)?;
        for m in &sub.methods.kinds {
            if !union.contains(m) {
                union.push(*m);
            }
        }
        methods.overlay(&MethodSet {
            kinds: Vec::new(),
            options: sub.methods.options.clone(),
        });
        // The same entry from two included suites (e.g. their shared prerequisite) runs once.
        for g in sub.gates {
            if !gates.iter().any(|h: &Gate| h.same_as(&g)) {
                gates.push(g);
            }
        }
    }
    methods.kinds = if own.kinds.is_empty() {
        union
    } else {
        own.kinds.clone()
    };
    methods.overlay(&MethodSet {
        kinds: Vec::new(),
        options: own.options.clone(),
    });
    for a in &f.audits {
        gates.push(resolve(a, &f.name, &origin_name)?);
    }
    if let Some(a) = f.alpha {
        if !(a > 0.0 && a < 1.0) {
            return Err(Error::config(
                &origin_name,
                format!("alpha = {a} is not in (0, 1)"),
                "use e.g. alpha = 0.05",
            ));
        }
    }
    Ok(Suite {
        name: f.name,
        description: f.description,
        origin,
        sha256: String::new(),
        methods,
        alpha: f.alpha,
        min_n: f.min_n,
        gates,
    })
}

/// Resolves one suite entry against the registry, checking metric, direction and threshold.
pub fn resolve(a: &AuditSpec, suite: &str, origin: &str) -> Result<Gate> {
    let entry = audit::lookup(&a.id, origin)?;
    let metric = a
        .metric
        .clone()
        .unwrap_or_else(|| entry.doc.default_metric.to_string());
    if !entry.doc.metrics.contains(&metric.as_str()) {
        let hint = crate::suggest::closest(&metric, entry.doc.metrics)
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        return Err(Error::config(
            origin,
            format!("{} has no metric `{metric}`", entry.doc.name),
            format!("{hint}its metrics are {}", entry.doc.metrics.join(", ")),
        ));
    }
    let direction = a.direction.unwrap_or(entry.doc.default_direction);
    let test = a.test.unwrap_or_default();
    let quantile = a.quantile.unwrap_or(0.5);
    check_test(entry, test, a.quantile, &a.id, origin)?;
    let threshold_metric = if entry.design == crate::audit::Design::TwoSample {
        // The threshold is a rank-biserial effect, not a value of the metric.
        "rank-biserial"
    } else {
        metric.as_str()
    };
    check_threshold(
        threshold_metric,
        a.threshold,
        &format!("threshold of {}", a.id),
        origin,
    )?;
    // Parameters are checked now so a typo fails before any model work.
    check_params(entry, &a.params)?;
    let mut params = (entry.default_params)();
    for (k, v) in &a.params {
        params.insert(k.clone(), v.clone());
    }
    let methods = match &a.methods {
        Some(ms) => ms
            .iter()
            .map(|m| method(m, origin))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    Ok(Gate {
        entry,
        suite: suite.to_string(),
        metric,
        threshold: a.threshold,
        direction,
        quantile,
        test,
        advisory: a.advisory,
        prerequisite: a.prerequisite,
        rationale: a.rationale.clone().unwrap_or_default(),
        methods,
        params,
    })
}

/// `test` and `quantile` apply to one-sample audits only, and `quantile` to the quantile test;
/// a quantile must lie strictly between 0 and 1.
pub fn check_test(
    entry: &AuditEntry,
    test: TestChoice,
    quantile: Option<f64>,
    id: &str,
    origin: &str,
) -> Result<()> {
    let one_sample = entry.design == crate::audit::Design::OneSample;
    if !one_sample && (test != TestChoice::Quantile || quantile.is_some()) {
        return Err(Error::config(
            origin,
            format!("`test` and `quantile` do not apply to {id}"),
            "they choose the test of one-sample audits; remove them here",
        ));
    }
    if let Some(q) = quantile {
        if test == TestChoice::Wilcoxon {
            return Err(Error::config(
                origin,
                format!("{id}: `quantile` is a parameter of the quantile test, not of wilcoxon"),
                "remove `quantile`, or use test = \"quantile\"",
            ));
        }
        if !(q > 0.0 && q < 1.0) {
            return Err(Error::config(
                origin,
                format!("{id}: quantile = {q} is not in (0, 1)"),
                "give the share of images that must be on the good side, e.g. 0.5 (median) or 0.9",
            ));
        }
    }
    Ok(())
}

/// The values a metric can take, so a threshold that can never be met (or never missed) is
/// caught before the run.
pub fn metric_range(metric: &str) -> (f64, f64) {
    match metric {
        "spearman" | "spearman-abs" | "pearson" | "ssim" => (-1.0, 1.0),
        "rank-biserial" | "pcc-gain" => (-1.0, 1.0),
        "top-k-intersection"
        | "entropy"
        | "gini"
        | "violated"
        | "violation-rate"
        | "min-similarity"
        | "center-of-mass-shift-relative"
        | "confidence"
        | "output-change" => (0.0, 1.0),
        "pcc-after" | "pcc-before" | "ssim-after" | "ssim-before" => (-1.0, 1.0),
        _ => (0.0, f64::INFINITY),
    }
}

/// Errors when `t` is not finite or outside the metric's range.
pub fn check_threshold(metric: &str, t: f64, what: &str, origin: &str) -> Result<()> {
    let (lo, hi) = metric_range(metric);
    if !t.is_finite() || t < lo || t > hi {
        return Err(Error::config(
            origin,
            format!("{what} = {t} is outside the range of {metric} ([{lo}, {hi}])"),
            format!("give a threshold in [{lo}, {hi}]"),
        ));
    }
    Ok(())
}

/// Rejects unknown parameter keys and wrong types by parsing over the defaults.
pub fn check_params(entry: &AuditEntry, t: &toml::Table) -> Result<()> {
    let known: Vec<String> = (entry.default_params)().keys().cloned().collect();
    for (k, v) in t {
        // An optional parameter has no default to list; it is known when it parses (every
        // audit's parameters deny unknown fields).
        let optional = || {
            let mut one = (entry.default_params)();
            one.insert(k.clone(), v.clone());
            (entry.check)(&one).is_ok()
        };
        if !known.contains(k) && !optional() {
            let names: Vec<&str> = known.iter().map(String::as_str).collect();
            let hint = crate::suggest::closest(k, &names)
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            return Err(Error::config(
                format!("parameters of {}", entry.doc.code),
                format!("unknown parameter `{k}`"),
                format!(
                    "{hint}parameters: {}",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
    }
    let mut all = (entry.default_params)();
    for (k, v) in t {
        all.insert(k.clone(), v.clone());
    }
    // Type and range errors surface here, before any model work.
    (entry.check)(&all).map_err(|e| match e {
        Error::Config { msg, .. } => Error::config(
            format!("parameters of {} ({})", entry.doc.code, entry.doc.name),
            msg,
            format!(
                "see `xaudit docs {}` for the parameters and their ranges",
                entry.doc.name
            ),
        ),
        e => e,
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_suites_load() {
        for (name, _) in BUILT_IN {
            let s = Suite::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!s.gates.is_empty(), "{name}");
            assert!(!s.methods.kinds.is_empty(), "{name}");
        }
        let full = Suite::load("full").unwrap();
        for a in audit::REGISTRY {
            assert!(
                full.gates.iter().any(|g| g.entry.doc.code == a.doc.code),
                "{} not in full",
                a.doc.code
            );
        }
    }

    #[test]
    fn typos_get_suggestions() {
        let e = Suite::load("robustnes").err().unwrap().to_string();
        assert!(e.contains("did you mean `robustness`"), "{e}");
        let spec = AuditSpec {
            id: "atack-top-k".into(),
            metric: None,
            threshold: 0.5,
            direction: None,
            quantile: None,
            test: None,
            advisory: false,
            prerequisite: false,
            rationale: None,
            methods: None,
            params: toml::Table::new(),
        };
        let e = resolve(&spec, "t", "t.toml").err().unwrap().to_string();
        assert!(e.contains("attack-top-k"), "{e}");
    }
}
