//! XA401 deletion: does removing pixels in the map's order destroy the prediction faster
//! than removing them in a random order?
use super::faithfulness::{self, CurveParams, Deleting};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;

pub static DOC: AuditDoc = AuditDoc {
    code: "XA401",
    name: "deletion",
    title: "Deletion curve against a random order (Petsiuk et al. 2018, RISE)",
    what: "Whether the pixels the map ranks highest are the ones the model needs: the probability of the predicted class as pixels are replaced by a baseline in the map's order (most relevant first, MoRF, by default), compared with the same curve for a random order of the same pixels.",
    why: "A robust or focused map can still point at the wrong evidence. If deleting the top-ranked pixels hurts the model no more than deleting random pixels, the map does not show what the model uses, however stable it is. Gating against a random order (rather than an absolute AUC) makes the verdict independent of how fragile the model is to any deletion.",
    how: "Per image, the method's map of the predicted class, reduced to one value per pixel by the method's channel reduction, gives a removal order (ties broken by a seeded random permutation). After step s of `steps` (default 20), the round(s/steps * H * W) first pixels (all channels) are replaced by the baseline: `zero` (0 in model space, the normalisation's mean colour, as RISE's code deletes), `blur` (a Gaussian blur, sigma 5 px at 224 px, scaled) or `mean` (the image's per-channel mean). The softmax probability (or with `score = \"logit\"` the logit) of the clean predicted class is recorded at every step, and the curve's area (trapezoid rule over the fraction removed, as RISE's code) is the AUC. The same is done for `random-orders` (default 1) seeded random orders, averaged. gain = AUC(random) - AUC(map) for MoRF (positive: the map's order destroys the evidence faster), AUC(map) - AUC(random) for `order = \"lerf\"` (least relevant first should keep the prediction longer). All steps of all images of a batch go through the model in shared passes: (steps + 1) * (1 + random-orders) forward passes per image. Quantus' RegionPerturbation differs: 8-pixel square patches ranked by their summed attribution, a 'black' baseline that is each image's minimum over all channels, the drops f(x) - f(x_k) without the clean point and an unnormalised trapezoid (dx = 1): its numbers are not comparable. Regions instead of pixels: `unit = \"frame\"` (video models) moves whole frames, ranked by the map's mass in each, and `unit = \"tube\"` squares of `tube-size` pixels (default a seventh of the frame's shorter side) through every frame of a clip (on images: squares, Samek et al.'s regions); the curve then has one step per unit at most. `baseline = \"black\"` uses black pixels (0 in [0,1]), the frames video pipelines pad with.",
    pass: "Default gate: the median gain is above 0, i.e. the map's order beats a random order on most images (exact binomial test of the median in the run's error budget). A model-blind map (edge detector, fixed random map) removes pixels no better than chance on average and does not pass.",
    references: &[
        "Petsiuk, Das, Saenko. RISE: Randomized Input Sampling for Explanation of Black-box Models. BMVC 2018, arXiv:1806.07421 (deletion and insertion metrics)",
        "Samek et al. Evaluating the Visualization of What a Deep Neural Network Has Learned. IEEE TNNLS 2017 (MoRF/LeRF region perturbation)",
    ],
    default_metric: "gain",
    default_direction: Direction::Higher,
    metrics: &["gain", "auc", "auc-random"],
};

/// Deletion and insertion share their parameters (`faithfulness::CurveParams`).
pub type Params = CurveParams<Deleting>;

fn measure(run: &RunCtx, m: &Method, t: &toml::Table) -> Result<Vec<Finding>> {
    let p: Params = super::params(DOC.code, t)?;
    faithfulness::measure_curves(run, m, &p, DOC.name)
}

pub const ENTRY: AuditEntry = AuditEntry {
    doc: &DOC,
    measure,
    family: "faithfulness",
    design: super::Design::OneSample,
    default_params: super::defaults::<Params>,
    check: super::check::<Params>,
    finish: None,
    shardable: true,
    clips: true,
};
