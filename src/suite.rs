//! Suites: which audits run, on which methods, with which thresholds and parameters.
//! Built-in suites live in `audits/*.toml` (compiled in); `--suite` also takes a path.
use crate::attribution::MethodKind;
use crate::audit::{self, AuditEntry, Direction};
use crate::error::{Error, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Built-in suites: (name, file text).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("robustness", include_str!("../audits/robustness.toml")),
    ("sanity", include_str!("../audits/sanity.toml")),
    ("salience", include_str!("../audits/salience.toml")),
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
    #[serde(default)]
    methods: Vec<String>,
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

/// A resolved gated audit.
#[derive(Clone)]
pub struct Gate {
    pub entry: &'static AuditEntry,
    pub suite: String,
    pub metric: String,
    pub threshold: f64,
    pub direction: Direction,
    pub rationale: String,
    pub methods: Vec<MethodKind>,
    pub params: toml::Table,
}

/// A loaded suite.
pub struct Suite {
    pub name: String,
    pub description: String,
    /// `built-in` or the file path.
    pub origin: String,
    pub sha256: String,
    pub methods: Vec<MethodKind>,
    pub alpha: Option<f64>,
    pub min_n: Option<usize>,
    pub gates: Vec<Gate>,
}

/// Parses a method name with a suggestion on typos.
pub fn method(name: &str, origin: &str) -> Result<MethodKind> {
    let names: Vec<&str> = MethodKind::ALL.iter().map(|m| m.name()).collect();
    MethodKind::ALL
        .iter()
        .copied()
        .find(|m| m.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let hint = crate::suggest::closest(name, &names)
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            Error::config(
                origin,
                format!("unknown method `{name}`"),
                format!("{hint}run `xaudit methods` to see the methods"),
            )
        })
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// Parses TOML with errors that name the line.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
    fix: &str,
) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" (line {})", line_of(text, s.start)))
            .unwrap_or_default();
        Error::config(origin, format!("{}{at}", e.message().trim()), fix)
    })
}

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
    let mut methods = f
        .methods
        .iter()
        .map(|m| method(m, &origin_name))
        .collect::<Result<Vec<_>>>()?;
    let mut gates = Vec::new();
    for inc in &f.include {
        let sub = load_into(inc, here, hasher, seen)?;
        for m in sub.methods {
            if !methods.contains(&m) {
                methods.push(m);
            }
        }
        gates.extend(sub.gates);
    }
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
    let two_sample = entry.design == crate::audit::Design::TwoSample;
    if (direction == Direction::Different) != two_sample {
        return Err(Error::config(
            origin,
            format!("direction {direction:?} does not fit {}", entry.doc.name),
            if two_sample {
                "two-sample audits use direction = \"different\""
            } else {
                "use direction = \"higher\" or \"lower\""
            },
        ));
    }
    check_threshold(
        &metric,
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
        rationale: a.rationale.clone().unwrap_or_default(),
        methods,
        params,
    })
}

/// The values a metric can take, so a threshold that can never be met (or never missed) is
/// caught before the run.
pub fn metric_range(metric: &str) -> (f64, f64) {
    match metric {
        "spearman" | "spearman-abs" | "pearson" | "ssim" => (-1.0, 1.0),
        "top-k-intersection"
        | "entropy"
        | "gini"
        | "violation-rate"
        | "min-similarity"
        | "center-of-mass-shift-relative"
        | "confidence" => (0.0, 1.0),
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
    for k in t.keys() {
        if !known.contains(k) {
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
    // Type errors surface here, before any model work.
    (entry.check)(&all).map_err(|e| match e {
        Error::Config { msg, fix, .. } => {
            Error::config(format!("parameters of {}", entry.doc.code), msg, fix)
        }
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
            assert!(!s.methods.is_empty(), "{name}");
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
            rationale: None,
            methods: None,
            params: toml::Table::new(),
        };
        let e = resolve(&spec, "t", "t.toml").err().unwrap().to_string();
        assert!(e.contains("attack-top-k"), "{e}");
    }
}
