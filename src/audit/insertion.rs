//! XA402 insertion: does adding pixels in the map's order restore the prediction faster
//! than adding them in a random order?
use super::faithfulness::{self, CurveParams, Inserting};
use super::{AuditDoc, AuditEntry, Direction, Finding, RunCtx};
use crate::attribution::Method;
use crate::error::Result;

pub static DOC: AuditDoc = AuditDoc {
    code: "XA402",
    name: "insertion",
    title: "Insertion curve against a random order (Petsiuk et al. 2018, RISE)",
    what: "Whether the pixels the map ranks highest are enough for the model: the probability of the predicted class as pixels of the image are put back into a baseline (blurred by default) in the map's order (most relevant first, MoRF), compared with the same curve for a random order.",
    why: "Deletion can be won by destroying the image with out-of-distribution artefacts; insertion asks the complementary question, whether the top-ranked pixels alone bring the prediction back. A map that shows what the model uses restores its confidence with few pixels; a model-blind map does not, beyond chance.",
    how: "Per image, the method's map of the predicted class, reduced to one value per pixel by the method's channel reduction, gives an insertion order (ties broken by a seeded random permutation). The curve starts from the baseline: `blur` (default; a Gaussian blur, sigma 5 px at 224 px scaled, at least 1 px; RISE's code uses an 11x11 kernel of sigma 5), `zero` (0 in model space) or `mean` (the image's per-channel mean). After step s of `steps` (default 20), the round(s/steps * H * W) first pixels (all channels) are the image's own. The softmax probability (or with `score = \"logit\"` the logit) of the clean predicted class is recorded at every step, and the curve's area (trapezoid rule, as RISE's code) is the AUC. The same is done for `random-orders` (default 1) seeded random orders, averaged. gain = AUC(map) - AUC(random) for MoRF (positive: the map's pixels restore the prediction faster), AUC(random) - AUC(map) for `order = \"lerf\"`. All steps of all images of a batch go through the model in shared passes: (steps + 1) * (1 + random-orders) forward passes per image. Regions instead of pixels: `unit = \"frame\"` (video models) moves whole frames, ranked by the map's mass in each, and `unit = \"tube\"` squares of `tube-size` pixels (default a seventh of the frame's shorter side) through every frame of a clip (on images: squares, Samek et al.'s regions); the curve then has one step per unit at most. `baseline = \"black\"` uses black pixels (0 in [0,1]), the frames video pipelines pad with.",
    pass: "Default gate: the median gain is above 0, i.e. the map's order beats a random order on most images (exact binomial test of the median in the run's error budget). A model-blind map inserts pixels no better than chance on average and does not pass.",
    references: &[
        "Petsiuk, Das, Saenko. RISE: Randomized Input Sampling for Explanation of Black-box Models. BMVC 2018, arXiv:1806.07421 (deletion and insertion metrics)",
        "Samek et al. Evaluating the Visualization of What a Deep Neural Network Has Learned. IEEE TNNLS 2017 (MoRF/LeRF region perturbation)",
    ],
    default_metric: "gain",
    default_direction: Direction::Higher,
    metrics: &["gain", "auc", "auc-random"],
};

/// Deletion and insertion share their parameters (`faithfulness::CurveParams`).
pub type Params = CurveParams<Inserting>;

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
