//! Method parameters from suite files and `xaudit.toml`: `methods` is either a list of names
//! or a table of per-method parameter tables,
//!
//! ```toml
//! [methods.integrated-gradients]
//! steps = 64
//! baseline = -1.0
//! [methods.smoothgrad]
//! samples = 25
//! magnitude = true
//! ```
//!
//! Every key is checked when the file loads (unknown key, a key another method owns, a value
//! out of range: an error naming the file and the line), so a typo never surfaces after
//! minutes of computation, and every audit explains with exactly the configuration the team
//! ships.
use super::{Aggregate, Method, MethodKind, MethodSpec, Score};
use crate::error::{Error, Result};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// One `[methods.NAME]` table as written: its keys with spans, for messages.
#[derive(Debug, Clone, Default)]
pub struct MethodOptions(pub Vec<(Spanned<String>, Spanned<toml::Value>)>);

impl<'de> Deserialize<'de> for MethodOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MethodOptions;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table of the method's parameters")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    v.push((k, map.next_value::<Spanned<toml::Value>>()?));
                }
                Ok(MethodOptions(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Parameters of one method after loading: checked values, later files overriding earlier
/// ones key by key. `params` holds the method's own keys, typed by its `Params` on use.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<Score>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
    #[serde(flatten)]
    pub params: toml::Table,
}

/// The parameter keys of `kind` (beyond `score` and `aggregate`, which every method takes),
/// read off its `Params`, so they are never listed twice.
pub fn keys(kind: MethodKind) -> Vec<String> {
    match serde_json::to_value(MethodSpec::with_defaults(kind)) {
        Ok(serde_json::Value::Object(o)) => o.keys().filter(|k| *k != "method").cloned().collect(),
        _ => Vec::new(),
    }
}

/// `methods = [...]` or `[methods.NAME]` tables.
#[derive(Debug, Clone)]
pub enum MethodsField {
    List(Vec<Spanned<String>>),
    Table(Vec<(Spanned<String>, MethodOptions)>),
}

impl<'de> Deserialize<'de> for MethodsField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MethodsField;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of method names, or [methods.NAME] tables of parameters")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<Spanned<String>>()? {
                    v.push(s);
                }
                Ok(MethodsField::List(v))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let o: MethodOptions = map.next_value()?;
                    v.push((k, o));
                }
                Ok(MethodsField::Table(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// Methods and their parameters, validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MethodSet {
    /// Methods audited, in the order given (empty: none named here).
    pub kinds: Vec<MethodKind>,
    /// Parameters per method (only those given).
    pub options: Vec<(MethodKind, Options)>,
}

impl MethodSet {
    pub fn options_of(&self, kind: MethodKind) -> Option<&Options> {
        self.options
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, o)| o)
    }

    /// Adds `later`'s parameters over these, key by key; its method list (if any) replaces ours.
    pub fn overlay(&mut self, later: &MethodSet) {
        if !later.kinds.is_empty() {
            self.kinds = later.kinds.clone();
        }
        for (k, o) in &later.options {
            match self.options.iter_mut().find(|(kk, _)| kk == k) {
                Some((_, mine)) => mine.overlay(o),
                None => self.options.push((*k, o.clone())),
            }
        }
    }

    /// The method as audited: reference defaults with the given parameters applied.
    pub fn method(&self, kind: MethodKind) -> Method {
        let mut m = Method::defaults(kind);
        if let Some(o) = self.options_of(kind) {
            o.apply(&mut m);
        }
        m
    }
}

impl Options {
    fn overlay(&mut self, o: &Options) {
        if o.score.is_some() {
            self.score = o.score;
        }
        if o.aggregate.is_some() {
            self.aggregate = o.aggregate;
        }
        for (k, v) in &o.params {
            self.params.insert(k.clone(), v.clone());
        }
    }

    /// Writes the given values into `m`.
    pub fn apply(&self, m: &mut Method) {
        if let Some(s) = self.score {
            m.score = s;
        }
        if let Some(a) = self.aggregate {
            m.aggregate = a;
        }
        // Every key was typed and range-checked on its own when it was read, and no method's
        // parameters constrain each other, so the merged table is valid too.
        m.spec = MethodSpec::from_table(m.kind(), &self.params)
            .expect("method parameters are validated key by key when they are read");
    }

    /// Reads one `key = value` of `kind`: where it goes, or why it is wrong (`Err((what, fix))`).
    pub fn set(
        &mut self,
        kind: MethodKind,
        key: &str,
        value: toml::Value,
    ) -> std::result::Result<(), (String, String)> {
        let name = kind.name();
        let own = keys(kind);
        match key {
            "score" => {
                self.score = Some(value.try_into().map_err(|e: toml::de::Error| {
                    (
                        format!("[methods.{name}] score: {}", e.message().trim()),
                        "use \"logit\" or \"softmax\"".to_string(),
                    )
                })?);
            }
            "aggregate" => {
                self.aggregate = Some(value.try_into().map_err(|e: toml::de::Error| {
                    (
                        format!("[methods.{name}] aggregate: {}", e.message().trim()),
                        "use \"max-abs\", \"sum-abs\" or \"sum\"".to_string(),
                    )
                })?);
            }
            key if !own.iter().any(|k| k == key) => {
                return Err((
                    format!("[methods.{name}] has no parameter `{key}`"),
                    format!(
                        "{name} takes score, aggregate{}{} (see `xaudit methods`)",
                        if own.is_empty() { "" } else { ", " },
                        own.join(", ")
                    ),
                ));
            }
            key => {
                let mut one = toml::Table::new();
                one.insert(key.to_string(), value.clone());
                MethodSpec::from_table(kind, &one).map_err(|why| {
                    (
                        format!("[methods.{name}] {key} is invalid: {why}"),
                        format!("see `xaudit methods` for {name}'s parameters and defaults"),
                    )
                })?;
                self.params.insert(key.to_string(), value);
            }
        }
        Ok(())
    }
}

/// Parses a method name with a suggestion on typos.
pub fn method_kind(name: &str, origin: &str) -> Result<MethodKind> {
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

impl MethodsField {
    /// Validates names, keys and values; `text` is the file's text (for line numbers).
    pub fn resolve(&self, text: &str, origin: &str) -> Result<MethodSet> {
        let at = |span: std::ops::Range<usize>| {
            format!(
                "{origin} (line {})",
                crate::tomlfile::line_of(text, span.start)
            )
        };
        let mut out = MethodSet::default();
        match self {
            MethodsField::List(names) => {
                for n in names {
                    let k = method_kind(n.get_ref(), &at(n.span()))?;
                    if !out.kinds.contains(&k) {
                        out.kinds.push(k);
                    }
                }
            }
            MethodsField::Table(tables) => {
                for (name, o) in tables {
                    let k = method_kind(name.get_ref(), &at(name.span()))?;
                    out.kinds.push(k);
                    let mut opts = Options::default();
                    for (key, value) in &o.0 {
                        opts.set(k, key.get_ref(), value.get_ref().clone())
                            .map_err(|(what, fix)| Error::config(at(key.span()), what, fix))?;
                    }
                    out.options.push((k, opts));
                }
            }
        }
        Ok(out)
    }
}

/// Parameter defaults of `kind` as TOML-like `key = value` pairs (for `xaudit methods`).
pub fn defaults_of(kind: MethodKind) -> Vec<(String, String)> {
    let m = Method::defaults(kind);
    let v = serde_json::to_value(&m).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if k != "method" {
                // An optional parameter without a default (L-CAM's weights; extremal
                // perturbation's scaled step/sigma/max-blur) has no TOML spelling.
                let shown = if val.is_null() {
                    "(not set)".to_string()
                } else {
                    val.to_string()
                };
                out.push((k.replace('_', "-"), shown));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct F {
        methods: MethodsField,
    }

    fn parse(text: &str) -> Result<MethodSet> {
        let f: F = toml::from_str(text).map_err(|e| Error::config("t", e.to_string(), "-"))?;
        f.methods.resolve(text, "t.toml")
    }

    #[test]
    fn list_and_table_forms() {
        let s = parse("methods = [\"saliency\", \"grad-cam\"]\n").unwrap();
        assert_eq!(s.kinds, vec![MethodKind::Saliency, MethodKind::GradCam]);
        let s = parse("[methods.integrated-gradients]\nsteps = 64\nbaseline = -1.0\n[methods.smoothgrad]\nsamples = 25\nmagnitude = true\n").unwrap();
        assert_eq!(
            s.kinds,
            vec![MethodKind::IntegratedGradients, MethodKind::Smoothgrad]
        );
        let ig = s.method(MethodKind::IntegratedGradients);
        match ig.spec {
            MethodSpec::IntegratedGradients(p) => {
                assert_eq!(p.steps, 64);
                assert_eq!(p.baseline, -1.0);
            }
            _ => panic!(),
        }
        match s.method(MethodKind::Smoothgrad).spec {
            MethodSpec::Smoothgrad(p) => assert!(p.magnitude && p.samples == 25),
            _ => panic!(),
        }
    }

    #[test]
    fn bad_keys_and_values_name_the_line() {
        let e = parse("[methods.saliency]\n\nsteps = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("no parameter `steps`"),
            "{e}"
        );
        // Types are checked too, and the message says what was expected.
        let e = parse("[methods.integrated-gradients]\nsteps = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("steps is invalid"),
            "{e}"
        );
        let e = parse("[methods.smoothgrad]\nnoise-level = 2.0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains("noise-level"), "{e}");
        let e = parse("[methods.rise]\nmasks = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse("[methods.integrated-gradient]\nsteps = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `integrated-gradients`"), "{e}");
        assert!(parse("[methods.smoothgrad]\nsampels = 3\n").is_err());
    }

    #[test]
    fn later_files_override_key_by_key() {
        let mut a = parse("[methods.integrated-gradients]\nsteps = 64\nbaseline = -1.0\n").unwrap();
        let b = parse("[methods.integrated-gradients]\nsteps = 32\n").unwrap();
        a.overlay(&b);
        match a.method(MethodKind::IntegratedGradients).spec {
            MethodSpec::IntegratedGradients(p) => assert_eq!((p.steps, p.baseline), (32, -1.0)),
            _ => panic!(),
        }
        // Defaults of a method nobody configured.
        let m = a.method(MethodKind::Smoothgrad);
        assert_eq!(m.score, MethodKind::Smoothgrad.default_score());
    }
}
