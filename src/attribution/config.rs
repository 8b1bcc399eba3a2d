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
use super::{
    grad_cam, grad_cam_plus_plus, integrated_gradients, rise, score_cam, sobol, Aggregate, Method,
    MethodKind, MethodSpec, Score,
};
use crate::error::{Error, Result};
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// Parameters of one method as written in a file (every key optional; spans for messages).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MethodOptions {
    pub score: Option<Spanned<Score>>,
    pub aggregate: Option<Spanned<Aggregate>>,
    /// Integrated Gradients.
    pub steps: Option<Spanned<usize>>,
    pub rule: Option<Spanned<integrated_gradients::Rule>>,
    /// Integrated Gradients and occlusion: baseline value in model space.
    pub baseline: Option<Spanned<f64>>,
    /// SmoothGrad.
    pub samples: Option<Spanned<usize>>,
    pub noise_level: Option<Spanned<f64>>,
    pub magnitude: Option<Spanned<bool>>,
    /// Grad-CAM.
    pub relu: Option<Spanned<bool>>,
    pub upsample: Option<Spanned<grad_cam::Upsample>>,
    /// Grad-CAM++.
    pub variant: Option<Spanned<grad_cam_plus_plus::Variant>>,
    /// Score-CAM.
    pub mode: Option<Spanned<score_cam::Mode>>,
    /// SIDU.
    pub threshold: Option<Spanned<f64>>,
    pub sigma: Option<Spanned<f64>>,
    pub normalize_uniqueness: Option<Spanned<bool>>,
    /// Sobol (and `grid` as RISE).
    pub designs: Option<Spanned<usize>>,
    /// Occlusion.
    pub window: Option<Spanned<usize>>,
    pub stride: Option<Spanned<usize>>,
    /// RISE.
    pub masks: Option<Spanned<usize>>,
    pub grid: Option<Spanned<usize>>,
    pub p: Option<Spanned<f64>>,
    pub norm: Option<Spanned<rise::Norm>>,
}

/// Parameters of one method after loading: plain values, later files overriding earlier ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<Score>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<integrated_gradients::Rule>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_level: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub magnitude: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relu: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upsample: Option<grad_cam::Upsample>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<grad_cam_plus_plus::Variant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<score_cam::Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalize_uniqueness: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub designs: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masks: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grid: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub norm: Option<rise::Norm>,
}

/// The keys each method accepts (beyond `score` and `aggregate`, which every method takes).
pub fn keys(kind: MethodKind) -> &'static [&'static str] {
    match kind {
        MethodKind::IntegratedGradients => &["steps", "rule", "baseline"],
        MethodKind::Smoothgrad => &["samples", "noise-level", "magnitude"],
        MethodKind::GradCam => &["relu", "upsample"],
        MethodKind::GradCamPlusPlus => &["variant", "upsample"],
        MethodKind::ScoreCam => &["mode", "upsample"],
        MethodKind::Sidu => &["threshold", "sigma", "normalize-uniqueness"],
        MethodKind::Sobol => &["grid", "designs"],
        MethodKind::Occlusion => &["window", "stride", "baseline"],
        MethodKind::Rise => &["masks", "grid", "p", "norm"],
        _ => &[],
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
        macro_rules! take {
            ($($f:ident),*) => { $( if o.$f.is_some() { self.$f = o.$f; } )* };
        }
        take!(
            score,
            aggregate,
            steps,
            rule,
            baseline,
            samples,
            noise_level,
            magnitude,
            relu,
            upsample,
            variant,
            mode,
            threshold,
            sigma,
            normalize_uniqueness,
            designs,
            window,
            stride,
            masks,
            grid,
            p,
            norm
        );
    }

    /// Writes the given values into `m` (keys were checked against the method at load).
    pub fn apply(&self, m: &mut Method) {
        if let Some(s) = self.score {
            m.score = s;
        }
        if let Some(a) = self.aggregate {
            m.aggregate = a;
        }
        match &mut m.spec {
            MethodSpec::IntegratedGradients(p) => {
                set(&mut p.steps, self.steps);
                set(&mut p.rule, self.rule);
                set(&mut p.baseline, self.baseline);
            }
            MethodSpec::Smoothgrad(p) => {
                set(&mut p.samples, self.samples);
                set(&mut p.noise_level, self.noise_level);
                set(&mut p.magnitude, self.magnitude);
            }
            MethodSpec::GradCam(p) => {
                set(&mut p.relu, self.relu);
                set(&mut p.upsample, self.upsample);
            }
            MethodSpec::GradCamPlusPlus(p) => {
                set(&mut p.variant, self.variant);
                set(&mut p.upsample, self.upsample);
            }
            MethodSpec::ScoreCam(p) => {
                set(&mut p.mode, self.mode);
                set(&mut p.upsample, self.upsample);
            }
            MethodSpec::Sidu(p) => {
                set(&mut p.threshold, self.threshold);
                set(&mut p.sigma, self.sigma);
                set(&mut p.normalize_uniqueness, self.normalize_uniqueness);
            }
            MethodSpec::Sobol(p) => {
                set(&mut p.grid, self.grid);
                set(&mut p.designs, self.designs);
            }
            MethodSpec::Occlusion(p) => {
                set(&mut p.window, self.window);
                set(&mut p.stride, self.stride);
                set(&mut p.baseline, self.baseline);
            }
            MethodSpec::Rise(p) => {
                set(&mut p.masks, self.masks);
                set(&mut p.grid, self.grid);
                set(&mut p.p, self.p);
                set(&mut p.norm, self.norm);
            }
            _ => {}
        }
    }
}

fn set<T: Copy>(dst: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *dst = v;
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
    /// Validates names, keys and ranges; `text` is the file's text (for line numbers).
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
                    out.options.push((k, validate(k, o, &at)?));
                }
            }
        }
        Ok(out)
    }
}

/// Checks that every key given belongs to `kind` and every value is in range.
fn validate(
    kind: MethodKind,
    o: &MethodOptions,
    at: &dyn Fn(std::ops::Range<usize>) -> String,
) -> Result<Options> {
    let own = keys(kind);
    let name = kind.name();
    let foreign = |key: &str, span: std::ops::Range<usize>| -> Error {
        Error::config(
            at(span),
            format!("[methods.{name}] has no parameter `{key}`"),
            format!(
                "{name} takes score, aggregate{}{} (see `xaudit methods`)",
                if own.is_empty() { "" } else { ", " },
                own.join(", ")
            ),
        )
    };
    let range = |key: &str, span: std::ops::Range<usize>, what: &str| -> Error {
        Error::config(
            at(span),
            format!("[methods.{name}] {key} is out of range"),
            what.to_string(),
        )
    };
    macro_rules! own_key {
        ($field:ident, $key:literal) => {
            if let Some(v) = &o.$field {
                if !own.contains(&$key) {
                    return Err(foreign($key, v.span()));
                }
            }
        };
    }
    own_key!(steps, "steps");
    own_key!(rule, "rule");
    own_key!(baseline, "baseline");
    own_key!(samples, "samples");
    own_key!(noise_level, "noise-level");
    own_key!(magnitude, "magnitude");
    own_key!(relu, "relu");
    own_key!(upsample, "upsample");
    own_key!(variant, "variant");
    own_key!(mode, "mode");
    own_key!(threshold, "threshold");
    own_key!(sigma, "sigma");
    own_key!(normalize_uniqueness, "normalize-uniqueness");
    own_key!(designs, "designs");
    own_key!(window, "window");
    own_key!(stride, "stride");
    own_key!(masks, "masks");
    own_key!(grid, "grid");
    own_key!(p, "p");
    own_key!(norm, "norm");
    let positive_int = |v: &Option<Spanned<usize>>, key: &str| -> Result<()> {
        match v {
            Some(s) if *s.get_ref() == 0 => {
                Err(range(key, s.span(), &format!("{key} must be >= 1")))
            }
            _ => Ok(()),
        }
    };
    positive_int(&o.steps, "steps")?;
    positive_int(&o.samples, "samples")?;
    positive_int(&o.window, "window")?;
    positive_int(&o.stride, "stride")?;
    positive_int(&o.masks, "masks")?;
    positive_int(&o.grid, "grid")?;
    if let Some(s) = &o.baseline {
        if !s.get_ref().is_finite() {
            return Err(range(
                "baseline",
                s.span(),
                "give a finite baseline (model space)",
            ));
        }
    }
    if let Some(s) = &o.noise_level {
        let v = *s.get_ref();
        if !(v.is_finite() && v > 0.0 && v <= 1.0) {
            return Err(range(
                "noise-level",
                s.span(),
                "noise-level is sigma as a fraction of the image's value range: give a value in (0, 1] (paper: 0.15)",
            ));
        }
    }
    if kind == MethodKind::Sobol {
        let mut p = sobol::Params::default();
        if let Some(v) = &o.grid {
            p.grid = *v.get_ref();
        }
        if let Some(v) = &o.designs {
            p.designs = *v.get_ref();
        }
        if let Err(why) = p.check() {
            let span = o
                .designs
                .as_ref()
                .or(o.grid.as_ref())
                .map(|s| s.span())
                .unwrap_or_default();
            return Err(range("grid/designs", span, &why));
        }
    }
    if let Some(s) = &o.threshold {
        if !s.get_ref().is_finite() {
            return Err(range(
                "threshold",
                s.span(),
                "give a finite activation threshold (official code: 0.1)",
            ));
        }
    }
    if let Some(s) = &o.sigma {
        let v = *s.get_ref();
        if !(v.is_finite() && v > 0.0) {
            return Err(range(
                "sigma",
                s.span(),
                "sigma is the width of the similarity kernel: give a value > 0 (official code: 0.25)",
            ));
        }
    }
    if let Some(s) = &o.p {
        let v = *s.get_ref();
        if !(v > 0.0 && v < 1.0) {
            return Err(range("p", s.span(), "p is the probability that a grid cell is kept: give a value in (0, 1) (paper: 0.5)"));
        }
    }
    fn g<T: Copy>(v: &Option<Spanned<T>>) -> Option<T> {
        v.as_ref().map(|s| *s.get_ref())
    }
    Ok(Options {
        score: g(&o.score),
        aggregate: g(&o.aggregate),
        steps: g(&o.steps),
        rule: g(&o.rule),
        baseline: g(&o.baseline),
        samples: g(&o.samples),
        noise_level: g(&o.noise_level),
        magnitude: g(&o.magnitude),
        relu: g(&o.relu),
        upsample: g(&o.upsample),
        variant: g(&o.variant),
        mode: g(&o.mode),
        threshold: g(&o.threshold),
        sigma: g(&o.sigma),
        normalize_uniqueness: g(&o.normalize_uniqueness),
        designs: g(&o.designs),
        window: g(&o.window),
        stride: g(&o.stride),
        masks: g(&o.masks),
        grid: g(&o.grid),
        p: g(&o.p),
        norm: g(&o.norm),
    })
}

/// Parameter defaults of `kind` as TOML-like `key = value` pairs (for `xaudit methods`).
pub fn defaults_of(kind: MethodKind) -> Vec<(String, String)> {
    let m = Method::defaults(kind);
    let v = serde_json::to_value(&m).unwrap_or_default();
    let mut out = Vec::new();
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if k != "method" {
                out.push((k.replace('_', "-"), val.to_string()));
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
