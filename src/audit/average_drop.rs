//! XA403 average-drop: does keeping only what the map shows keep the model's confidence
//! better than the same map placed at random?
use super::faithfulness::{self, drop};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;
use serde::{Deserialize, Serialize};

pub static DOC: AuditDoc = AuditDoc {
    code: "XA403",
    name: "average-drop",
    title: "Average Drop against a randomly placed map (Chattopadhay et al. 2018; L-CAM's AD(a))",
    what: "How much of the model's confidence survives when the image is seen only through its explanation: the drop in the predicted class's probability when the image is multiplied by the normalised map, compared with the drop when the same map is placed at a random position.",
    why: "Average Drop is the faithfulness measure the CAM papers report (Grad-CAM++, Score-CAM, L-CAM). An absolute AD depends on the model and the data as much as on the map; comparing with the same map at a random place isolates what the map's placement contributes, so a map that merely dims the image evenly, or a model-blind one, cannot pass.",
    how: "Per image, Y = softmax probability of the clean predicted class; the method's map of that class, reduced to one value per pixel, min-max normalised to [0, 1] (a flat map is excluded: it makes no mask). O = the probability after multiplying the model's input tensor (after normalisation) by the map, as the reference implementations do (pytorch-grad-cam's CamMultImageConfidenceChange and the L-CAM code multiply the normalised tensor; the paper says \"the image\"); with `area = a` the input is instead kept on the map's top-a fraction of pixels and set to 0 (the normalisation's mean colour) elsewhere (the L-CAM paper's AD at a top-k% area). O_random = the same with the mask cyclically shifted by a seeded random offset per image (the same map, shape and smoothness, at another place; a pixel permutation would turn a smooth map into salt-and-pepper noise and make any smooth map look faithful). drop = max(0, Y - O) / Y (Average Drop in % is 100 x its mean); gain = drop(random) - drop(map). Two forward passes per image. The summary gives AD and IC in % for the map and the random placement.",
    pass: "Default gate: the median gain is above 0, i.e. on most images the map's placement keeps more confidence than the same map shifted to a random place (exact binomial test of the median in the run's error budget; xaudit convention, as for the other faithfulness audits: relative to a baseline that cannot be faithful, not an absolute AD).",
    references: &[
        "Chattopadhay, Sarkar, Howlader, Balasubramanian. Grad-CAM++: Improved Visual Explanations for Deep Convolutional Networks. WACV 2018, arXiv:1710.11063 (Average Drop, Increase in Confidence)",
        "Gkartzonika, Gkalelis, Mezaris. Learning Visual Explanations for DCNN-Based Image Classifiers Using an Attention Mechanism (L-CAM). ECCV Workshops 2022, arXiv:2209.11189 (AD and IC at top-k% areas)",
    ],
    default_metric: "gain",
    default_direction: Direction::Higher,
    metrics: &["gain", "drop", "drop-random"],
};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Params {
    /// Keep only the map's top fraction of pixels (absent: multiply by the whole map).
    pub area: Option<f64>,
}

impl super::AuditParams for Params {
    fn validate(&self) -> std::result::Result<(), String> {
        match self.area {
            Some(a) if !(a > 0.0 && a < 1.0) => {
                Err("area is a fraction of the image in (0, 1) (L-CAM reports 0.5, 0.15)".into())
            }
            _ => Ok(()),
        }
    }
}

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    let mut f = Finding::new("");
    run.for_batches(|b| {
        let res = faithfulness::masked_confidences(run, m, b, p.area, DOC.name)?;
        for (i, r) in b.indices.clone().zip(res) {
            let Some(r) = r else {
                f.push(i, &[], Some("flat map: no mask can be made from it".into()));
                continue;
            };
            let (a, ar) = (drop(r.clean, r.map), drop(r.clean, r.random));
            f.keep(
                MASKED,
                i,
                &[
                    a,
                    ar,
                    f64::from(u8::from(r.map > r.clean)),
                    f64::from(u8::from(r.random > r.clean)),
                ],
            );
            f.push(
                i,
                &[("gain", ar - a), ("drop", a), ("drop-random", ar)],
                None,
            );
        }
        (run.progress)(b.len());
        Ok(())
    })?;
    Ok(vec![f])
}

/// Per image: (drop, random drop, map raises confidence, random placement does).
const MASKED: &str = "drops-and-increases";

/// AD and IC in % over every image with a mask.
fn finish(f: &mut Finding) {
    let rows: Vec<Vec<f64>> = f
        .kept
        .get(MASKED)
        .map(|m| {
            m.values()
                .map(|r| r.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
                .collect()
        })
        .unwrap_or_default();
    let col = |k: usize| -> Vec<f64> { rows.iter().map(|r| r[k]).collect() };
    let count = |k: usize| rows.iter().filter(|r| r[k] > 0.0).count();
    let pct = |v: &[f64]| 100.0 * crate::stats::mean(v);
    let n = rows.len().max(1) as f64;
    f.summary("average_drop_percent", pct(&col(0)));
    f.summary("average_drop_random_percent", pct(&col(1)));
    f.summary(
        "increase_in_confidence_percent",
        100.0 * count(2) as f64 / n,
    );
    f.summary(
        "increase_in_confidence_random_percent",
        100.0 * count(3) as f64 / n,
    );
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "faithfulness",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: Some(finish),
    shardable: true,
    clips: true,
};
