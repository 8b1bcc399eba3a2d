//! XA203 salience-entropy: how focused the salience is, per image, per class and overall.
use super::run::to_vecs;
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::{aggregate, Method};
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub static DOC: AuditDoc = AuditDoc {
    code: "XA203",
    name: "salience-entropy",
    title: "Salience entropy and sparseness (Crum et al. 2023, reconstructed; Chalasani et al. 2020)",
    what: "How concentrated each explanation is: the normalised Shannon entropy of the salience distribution (0 = one pixel, 1 = uniform) and its Gini sparseness, overall and per predicted class.",
    why: "A map spread evenly over the image tells a reviewer nothing about where the evidence is. Human-guided models have lower salience entropy than cross-entropy models (Piland et al. 2023), so a rising entropy between releases is a regression in focus, and a class whose salience is diffuse deserves a closer look.",
    how: "Per image, S = the method's map for the predicted class (the method's channel reduction, absolute values), P = S / sum S, H = -sum P ln P / ln(HW). A map that is zero everywhere has no salience distribution: the image is excluded and counted rather than scored. Also recorded: entropy in bits (Crum et al.'s -sum P log2 P) and the Gini index of |S| (Quantus Sparseness). Medians per predicted class are recorded in the summary.",
    pass: "Entropy depends on the input size, the method and the domain (smooth maps on small inputs sit near 0.9), so there is no meaningful default threshold: the built-in suites run this audit as advisory (reported, not gating) with a placeholder of 0.95. `xaudit calibrate` places the threshold between an accepted reference model and the model-blind controls; the calibrated suite then gates on the median (exact binomial test in the run's error budget). Reconstructed measure, no paper value.",
    references: &[
        "Crum et al. Explain To Me: Salience-Based Explainability for Synthetic Face Detection Models. IEEE TAI 2023, arXiv:2303.11969 (reconstructed)",
        "Piland, Czajka, Sweet. Improving Model's Focus Improves Performance of Deep Learning-Based Synthetic Face Detectors. 2023",
        "Chalasani et al. Concise Explanations of Neural Networks using Adversarial Training. ICML 2020 (Gini sparseness)",
    ],
    default_metric: "entropy",
    default_direction: Direction::Lower,
    metrics: &["entropy", "entropy-bits", "gini"],
};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {}

impl super::AuditParams for Params {}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let _: Params = super::params(DOC.code, t)?;
    let mut f = Finding::new("");
    run.for_batches(|b| {
        let clean = run.clean(b)?;
        let maps = to_vecs(&aggregate(&run.clean_maps(m, b)?, m.aggregate).abs())?;
        let (h, w) = (b.x.size()[2] as usize, b.x.size()[3] as usize);
        for (j, i) in b.indices.clone().enumerate() {
            f.example(
                i,
                vec![
                    run.image_panel(&b.x.get(j as i64), "original")?,
                    super::run::vec_panel(&maps[j], h, w, "explanation")?,
                ],
            );
            if !maps[j].iter().any(|v| *v > 0.0) {
                f.push(
                    i,
                    &[],
                    Some("all-zero map: no salience distribution, entropy undefined".into()),
                );
                continue;
            }
            let e = crate::similarity::normalized_entropy(&maps[j]);
            f.keep(CLASS_ENTROPY, i, &[clean[j].pred as f64, e]);
            f.push(
                i,
                &[
                    ("entropy", e),
                    ("entropy-bits", crate::similarity::entropy_bits(&maps[j])),
                    ("gini", crate::similarity::gini(&maps[j])),
                ],
                None,
            );
        }
        (run.progress)(b.len());
        Ok(())
    })?;
    Ok(vec![f])
}

/// Per image: (predicted class, normalised entropy).
const CLASS_ENTROPY: &str = "class-and-entropy";

/// The median entropy per predicted class over every image.
fn finish(f: &mut Finding) {
    let mut per_class: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for r in f
        .kept
        .get(CLASS_ENTROPY)
        .into_iter()
        .flat_map(|m| m.values())
    {
        let class = r.first().copied().flatten().unwrap_or(-1.0) as i64;
        per_class
            .entry(class)
            .or_default()
            .push(r.get(1).copied().flatten().unwrap_or(f64::NAN));
    }
    let medians: BTreeMap<String, (usize, f64)> = per_class
        .iter()
        .map(|(k, v)| (k.to_string(), (v.len(), crate::stats::median(v))))
        .collect();
    f.summary("median_entropy_per_predicted_class", medians);
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "salience",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: Some(finish),
    shardable: true,
    clips: true,
};
